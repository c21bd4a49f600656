"""Training cycles: a dataset snapshot, the TRL pipeline as a subprocess, and the model version it produces.

A cycle is a ``TrainingRun`` with ``stage="cycle"``; each pipeline stage (sft, reward, dpo, online_rl,
evaluate) gets its own row pointing at it. Entry points:

    python manage.py train --recipe tiny [--force]      # one cycle now, in the foreground
    feedback.tasks.train_cycle(recipe=None, force=False) # the same on the "training" queue (beat: nightly)

How a cycle stays safe:

- **One at a time.** The partial unique constraint ``training_one_active_cycle`` allows one queued or
  running cycle; a second start is refused with ``Conflict("refused: cycle N is running")``.
- **The pipeline is a subprocess** in its own process group (``python -m training.pipeline``, or the
  launcher in ``CODEPREF["TRAINING_LAUNCHER"]`` such as ``accelerate launch``), so a crash or an
  out-of-memory kill ends the pipeline, not the worker. Output goes to ``TRAINING_DIR/run-<id>/pipeline.log``.
- **A watcher** (the task, or ``manage.py train``) polls the process: it bumps ``heartbeat_at``, copies the
  log's tail into the row, records stages as their folders appear, kills the process group when
  ``cancel_requested`` is set or the timeout passes, and reads ``summary.json`` at the end.
- **Re-delivery.** A task re-delivered after its worker died finds the cycle running with a stale
  heartbeat. It finishes that cycle instead of starting another: it re-attaches to the pipeline when
  the process still lives on this host, collects the ``summary.json`` a pipeline wrote while nobody
  watched, or marks the cycle failed with a message when the process is gone. The next scheduled
  task starts a fresh cycle.

On success the policy folder is registered as a ModelVersion (parent = the version trained from) and
becomes the active one when its pass@1 is not worse than the parent's; new completions from it are then
generated for prompts the parent answered, so that new-versus-old pairs reach volunteers (the arena loop).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Completion, DatasetSnapshot, ModelVersion, Prompt, TrainingRun
from .services import Conflict, ServiceError

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

ACTIVE = (TrainingRun.State.QUEUED, TrainingRun.State.RUNNING)
TERMINAL = (
    TrainingRun.State.SUCCEEDED,
    TrainingRun.State.FAILED,
    TrainingRun.State.SKIPPED,
    TrainingRun.State.CANCELLED,
)
STAGES = [s for s in TrainingRun.Stage.values if s != TrainingRun.Stage.CYCLE]
RECIPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOG_NAME = "pipeline.log"
STAGE_LOG = "stage.log"  # each stage's own console output, kept by the pipeline
LOG_TAIL_LINES = 60
LOG_TAIL_CHARS = 8000
KILL_GRACE_SECONDS = 10.0
ARENA_SAMPLES = 2  # completions per prompt from a new policy: one self pair, and arena pairs
# Environment the pipeline does not need: training/ never touches the database, the broker or users.
SECRET_ENV = (
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "GITHUB_CLIENT_SECRET",
    "CODEPREF_OPENAI_API_KEY",
    "CODEPREF_PSEUDONYM_SALT",
)


def _codepref(key: str):
    return settings.CODEPREF[key]


def _say(progress: Progress | None, message: str) -> None:
    logger.info(message)
    if progress is not None:
        progress(message)


# --- paths, processes, heartbeats -------------------------------------------------------------------


def recipe_config_path(recipe: str) -> Path:
    """``<TRAINING_RECIPES_DIR>/<recipe>/pipeline.yaml``, or a ServiceError naming what is missing."""
    if not RECIPE_NAME.match(recipe or ""):
        raise ServiceError(
            f"recipe must be a folder name under training/recipes/ (letters, digits, _ . -); got {recipe!r}"
        )
    path = Path(_codepref("TRAINING_RECIPES_DIR")) / recipe / "pipeline.yaml"
    if not path.is_file():
        raise ServiceError(f"recipe {recipe!r} has no pipeline config: {path} does not exist")
    return path


def training_root() -> Path:
    return Path(_codepref("TRAINING_DIR"))


def run_dir_for(run: TrainingRun) -> Path:
    """The folder of a cycle's files: its log, summary.json and one folder per stage."""
    cycle_id = run.cycle_id or run.pk
    return training_root() / f"run-{cycle_id}"


def heartbeat_stale_after() -> timedelta:
    # Generous: a watcher only stops bumping when it is gone, and a false "gone" would double-watch.
    return timedelta(seconds=max(120.0, 30 * float(_codepref("TRAINING_POLL_SECONDS"))))


def is_watched(run: TrainingRun) -> bool:
    """Whether a live watcher (task or command) bumped this cycle's heartbeat recently."""
    return run.heartbeat_at is not None and timezone.now() - run.heartbeat_at < heartbeat_stale_after()


def _pid_state(pid: int) -> str | None:
    """The process state letter from /proc (R, S, Z, ...), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"
    return stat.rsplit(")", 1)[-1].split()[0]


def process_alive(run: TrainingRun) -> bool:
    """Whether this run's pipeline process lives on this host (and is that pipeline, not a reused pid)."""
    if not run.pid or run.host != socket.gethostname():
        return False
    state = _pid_state(run.pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        cmdline = Path(f"/proc/{run.pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc to check the command line against: trust the pid
    return str(run_dir_for(run)) in cmdline


def _kill_group(pid: int, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM the pipeline's process group, then SIGKILL what is left after a grace period."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    break
            elif _pid_state(pid) in (None, "Z", "X"):
                break
            time.sleep(0.05)
        else:
            continue
        # The leader has ended; stragglers in its group (data loaders, launcher children) go too.
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return


def read_log_tail(path: Path, *, lines: int = LOG_TAIL_LINES, chars: int = LOG_TAIL_CHARS) -> str:
    """The last lines of a log, with progress-bar redraws (carriage returns) reduced to their last state."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4 * chars))
            raw = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    out = [line.split("\r")[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r") for line in raw.split("\n")]
    text = "\n".join(out[-lines:]).strip("\n")
    return text[-chars:].replace("\x00", "\N{REPLACEMENT CHARACTER}")  # PostgreSQL text cannot hold NUL


def _read_json(path: Path) -> dict | None:
    """A JSON object from a file the pipeline wrote, or None; NUL characters (which PostgreSQL's jsonb refuses,
    and a sampled completion may contain) become U+FFFD."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        data = json.loads(text.replace("\\u0000", "\\ufffd"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- snapshot and base model ------------------------------------------------------------------------


def snapshot_builder() -> Callable[..., object] | None:
    """The data side's snapshot build service (feedback.datasets.services.snapshot_build), when installed."""
    try:
        from feedback.datasets import services as snapshots
    except ImportError:
        return None
    return getattr(snapshots, "snapshot_build", None)


def _snapshot_for_cycle(progress: Progress | None) -> DatasetSnapshot | None:
    """A snapshot of the votes as they are now, or the latest published one when that cannot be built.

    The build is skipped (and the last snapshot returned) when no vote was added or removed since it.
    """
    build = snapshot_builder()
    if build is not None:
        try:
            result = build(slot=f"training:{timezone.now():%Y-%m-%dT%H:%M:%S}")
        except Exception as exc:  # a failed build must not stop training on the last good snapshot
            logger.warning("snapshot build for a training cycle failed", exc_info=True)
            _say(progress, f"snapshot build failed ({exc!r}); using the latest published snapshot")
        else:
            snapshot = getattr(result, "snapshot", result)  # a BuildResult, or the snapshot itself
            if isinstance(snapshot, DatasetSnapshot) and snapshot.state == DatasetSnapshot.State.PUBLISHED:
                return snapshot
            reason = getattr(result, "reason", "") or "not published"
            _say(progress, f"snapshot build gave no published snapshot ({reason}); using the latest published one")
    return DatasetSnapshot.objects.filter(state=DatasetSnapshot.State.PUBLISHED).order_by("-version").first()


def preference_rows(snapshot: DatasetSnapshot | None) -> int:
    """How many preference (chosen/rejected) rows a snapshot holds, train and test, from its counts."""
    if snapshot is None:
        return 0
    counts = snapshot.counts or {}
    if "preference_train" in counts or "preference_test" in counts:
        return int(counts.get("preference_train") or 0) + int(counts.get("preference_test") or 0)
    value = counts.get("preference")
    return int(value) if isinstance(value, int) else 0


def last_successful_cycle() -> TrainingRun | None:
    return (
        TrainingRun.objects.filter(stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.SUCCEEDED)
        .select_related("snapshot")
        .order_by("-finished_at", "-pk")
        .first()
    )


def new_preferences(snapshot: DatasetSnapshot | None) -> tuple[int, TrainingRun | None]:
    """Preference rows in ``snapshot`` beyond those of the snapshot the last successful cycle trained on."""
    last = last_successful_cycle()
    if snapshot is None:
        return 0, last
    if last is None or last.snapshot is None:
        return preference_rows(snapshot), last
    if last.snapshot_id == snapshot.pk or snapshot.last_vote_id <= last.snapshot.last_vote_id:
        return 0, last
    return max(0, preference_rows(snapshot) - preference_rows(last.snapshot)), last


def base_model() -> tuple[ModelVersion | None, str]:
    """The version a cycle trains from and its folder: the active transformers version, else the bootstrap model."""
    active = (
        ModelVersion.objects.filter(is_active=True, backend=ModelVersion.Backend.TRANSFORMERS)
        .order_by("-created_at")
        .first()
    )
    if active is not None and active.target:
        return active, active.target
    bootstrap = str(_codepref("MODEL"))
    registered = (
        ModelVersion.objects.filter(backend=ModelVersion.Backend.TRANSFORMERS, target=bootstrap)
        .order_by("created_at")
        .first()
    )
    return registered, bootstrap


# --- starting -----------------------------------------------------------------------------------------


def _refused(run: TrainingRun | None) -> Conflict:
    if run is None:
        return Conflict("refused: another cycle is running")
    return Conflict(f"refused: cycle {run.pk} is {run.state}")


def training_cycle_start(*, recipe: str | None = None, force: bool = False) -> TrainingRun:
    """A cycle ready for ``training_cycle_run``: a new one (queued, or skipped for lack of new data), or the
    active cycle whose watcher was lost (so that a re-delivered task finishes it).

    Raises ``Conflict("refused: cycle N is running")`` while another cycle is watched, and ``ServiceError``
    for an unknown recipe.
    """
    recipe = recipe or _codepref("TRAINING_RECIPE")
    config_path = recipe_config_path(recipe)

    active = TrainingRun.objects.filter(stage=TrainingRun.Stage.CYCLE, state__in=ACTIVE).first()
    if active is not None:
        if is_watched(active):
            raise _refused(active)
        return active

    snapshot = _snapshot_for_cycle(None)
    fresh, last = new_preferences(snapshot)
    needed = int(_codepref("TRAINING_MIN_NEW_PREFERENCES"))
    now = timezone.now()
    fields = {
        "stage": TrainingRun.Stage.CYCLE,
        "recipe": recipe,
        "snapshot": snapshot,
        "config": {"recipe": recipe, "config_path": str(config_path), "force": force, "new_preferences": fresh},
    }
    if snapshot is None:
        skip = "no published dataset snapshot to train on"
    elif fresh < needed and not force:
        since = f"cycle {last.pk} (snapshot v{last.snapshot.version})" if last and last.snapshot else "the start"
        skip = (
            f"{fresh} new preference rows in snapshot v{snapshot.version} since {since}; "
            f"{needed} needed (TRAINING_MIN_NEW_PREFERENCES), or force"
        )
    else:
        skip = ""
    if skip:
        return TrainingRun.objects.create(
            **fields, state=TrainingRun.State.SKIPPED, message=skip, started_at=now, finished_at=now
        )
    try:
        with transaction.atomic():
            # A fresh heartbeat: the creator runs it next, so nobody else takes it over meanwhile.
            return TrainingRun.objects.create(**fields, state=TrainingRun.State.QUEUED, heartbeat_at=now)
    except IntegrityError:
        raise _refused(TrainingRun.objects.filter(stage=TrainingRun.Stage.CYCLE, state__in=ACTIVE).first())


# --- running ------------------------------------------------------------------------------------------


def pipeline_command(*, config_path: str, snapshot_dir: Path, output_dir: Path, model_path: str) -> list[str]:
    """``python -m training.pipeline ...``; the pipeline itself starts each training stage under the launcher."""
    command = [
        sys.executable,
        "-m",
        _codepref("TRAINING_PIPELINE_MODULE"),
        "--config",
        str(config_path),
        "--snapshot",
        str(snapshot_dir),
        "--output_dir",
        str(output_dir),
        "--model_name_or_path",
        str(model_path),
    ]
    launcher = (_codepref("TRAINING_LAUNCHER") or "").strip()
    if launcher:
        try:
            shlex.split(launcher)
        except ValueError as exc:
            raise ServiceError(f"TRAINING_LAUNCHER={launcher!r} is not a command line: {exc}")
        command += ["--launcher", launcher]
    return command


def _pipeline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.BASE_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def _finish(run: TrainingRun, state: str, message: str, **fields) -> TrainingRun:
    run.state = state
    run.message = message
    run.finished_at = timezone.now()
    for key, value in fields.items():
        setattr(run, key, value)
    run.save(update_fields=["state", "message", "finished_at", *fields])
    return run


def training_cycle_run(*, run_id: int, progress: Progress | None = None) -> TrainingRun:
    """Run (or, after a lost watcher, finish) one cycle and return it in its final state.

    Safe to call twice: a finished cycle is returned as it is, and a cycle another process is watching
    raises ``Conflict``.
    """
    run = TrainingRun.objects.filter(pk=run_id, stage=TrainingRun.Stage.CYCLE).first()
    if run is None:
        raise ServiceError(f"no training cycle with id {run_id}")
    if run.state in TERMINAL:
        return run
    now = timezone.now()

    if run.state == TrainingRun.State.QUEUED:
        claimed = TrainingRun.objects.filter(pk=run.pk, state=TrainingRun.State.QUEUED).update(
            state=TrainingRun.State.RUNNING, started_at=now, heartbeat_at=now, host=socket.gethostname()
        )
        run.refresh_from_db()
        if not claimed:
            if run.state in TERMINAL:
                return run
            raise _refused(run)
        return _launch_and_watch(run, progress)

    # Running: only a cycle whose watcher was lost may be taken over, and only by one taker.
    if is_watched(run):
        raise _refused(run)
    claimed = TrainingRun.objects.filter(pk=run.pk, state=TrainingRun.State.RUNNING, heartbeat_at=run.heartbeat_at)
    if not claimed.update(heartbeat_at=now):
        raise _refused(run)
    run.refresh_from_db()
    if process_alive(run):
        _say(progress, f"cycle {run.pk}: re-attached to pipeline pid {run.pid} (its watcher was lost)")
        return _watch(run, None, progress)
    if (run_dir_for(run) / "summary.json").is_file():
        _say(progress, f"cycle {run.pk}: the pipeline finished while nobody watched; collecting its summary")
        return _collect(run, rc=None, outcome=None, progress=progress)
    gone = f"pid {run.pid} on {run.host}" if run.pid else "no pipeline process started"
    _stages_sync(run, None)
    return _finish(
        run,
        TrainingRun.State.FAILED,
        f"the watcher of this cycle was lost (worker died or restarted) and the pipeline is gone ({gone}); "
        "marked failed by a re-delivered task",
        log_tail=read_log_tail(run_dir_for(run) / LOG_NAME),
    )


def _launch_and_watch(run: TrainingRun, progress: Progress | None) -> TrainingRun:
    snapshot = run.snapshot
    if snapshot is None or not snapshot.path.is_dir():
        where = f"snapshot v{snapshot.version} has no folder at {snapshot.path}" if snapshot else "no snapshot"
        return _finish(run, TrainingRun.State.FAILED, f"cannot train: {where}")
    try:
        config_path = recipe_config_path(run.recipe)
    except ServiceError as exc:
        return _finish(run, TrainingRun.State.FAILED, str(exc))

    out = run_dir_for(run)
    if out.exists() and any(out.iterdir()):
        # Left by an earlier database with the same ids: keep it, but never read its summary as ours.
        out.rename(out.with_name(f"{out.name}.old-{int(time.time())}"))
    out.mkdir(parents=True, exist_ok=True)
    version, model_path = base_model()
    try:
        command = pipeline_command(
            config_path=str(config_path), snapshot_dir=snapshot.path, output_dir=out, model_path=model_path
        )
    except ServiceError as exc:
        return _finish(run, TrainingRun.State.FAILED, str(exc))
    config = {**run.config, "command": command, "model_name_or_path": model_path, "snapshot_dir": str(snapshot.path)}
    _say(
        progress,
        f"cycle {run.pk}: snapshot v{snapshot.version}, base model {version or model_path}, recipe {run.recipe}",
    )
    log_path = out / LOG_NAME
    try:
        with open(log_path, "ab") as log:
            log.write(f"$ {shlex.join(command)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                command,
                cwd=str(settings.BASE_DIR),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_pipeline_env(),
                start_new_session=True,  # its own process group: cancel kills every process it started
            )
    except OSError as exc:
        return _finish(
            run,
            TrainingRun.State.FAILED,
            f"could not start the pipeline: {exc}",
            config=config,
            artefact_dir=str(out),
            base_model=version,
        )
    run.pid, run.host, run.artefact_dir, run.base_model, run.config = (
        proc.pid,
        socket.gethostname(),
        str(out),
        version,
        config,
    )
    run.save(update_fields=["pid", "host", "artefact_dir", "base_model", "config"])
    _say(progress, f"cycle {run.pk}: pipeline started (pid {proc.pid}), log {log_path}")
    return _watch(run, proc, progress)


def _watch(run: TrainingRun, proc: subprocess.Popen | None, progress: Progress | None) -> TrainingRun:
    """Poll the pipeline until it ends, is cancelled, or times out; then collect what it wrote."""
    poll = float(_codepref("TRAINING_POLL_SECONDS"))
    deadline = (run.started_at or timezone.now()) + timedelta(seconds=int(_codepref("TRAINING_TIMEOUT_SECONDS")))
    log_path = run_dir_for(run) / LOG_NAME
    seen: dict[str, str] = {}
    rc: int | None = None
    outcome: str | None = None
    try:
        while True:
            if proc is not None:
                rc = proc.poll()
                if rc is not None:
                    break
            elif not process_alive(run):
                break
            time.sleep(poll)
            cancel = _heartbeat(run, log_path)
            _stages_sync(run, _read_json(run_dir_for(run) / "summary.json"), live=True, seen=seen, progress=progress)
            if cancel:
                outcome = TrainingRun.State.CANCELLED
            elif timezone.now() > deadline:
                outcome = "timeout"
            if outcome:
                _say(
                    progress,
                    f"cycle {run.pk}: {'cancel requested' if cancel else 'timed out'}; stopping pid {run.pid}",
                )
                _kill_group(run.pid, proc)
                rc = proc.poll() if proc is not None else None
                break
    except BaseException as exc:
        # A Celery time limit, Ctrl-C on `manage.py train`, a bug here: the pipeline must not outlive us.
        _kill_group(run.pid, proc)
        interrupted = isinstance(exc, KeyboardInterrupt)
        unfinished = TrainingRun.State.CANCELLED if interrupted else TrainingRun.State.FAILED
        _stages_sync(run, _read_json(run_dir_for(run) / "summary.json"), unfinished=unfinished)
        _finish(
            run,
            TrainingRun.State.CANCELLED if interrupted else TrainingRun.State.FAILED,
            "interrupted (Ctrl-C); pipeline stopped" if interrupted else f"watcher stopped: {exc!r}; pipeline stopped",
            log_tail=read_log_tail(log_path),
        )
        raise
    return _collect(run, rc=rc, outcome=outcome, progress=progress, seen=seen)


def _heartbeat(run: TrainingRun, log_path: Path) -> bool:
    """Bump the heartbeat and the log tail; return whether a cancel was requested."""
    try:
        tail = read_log_tail(log_path)
        now = timezone.now()
        TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=now, log_tail=tail)
        run.heartbeat_at, run.log_tail = now, tail
        return TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()
    except DatabaseError:
        # A database blip must not kill hours of training: drop the connection and try on the next poll.
        logger.warning("training cycle %s: heartbeat failed; retrying", run.pk, exc_info=True)
        close_old_connections()
        return False


def _stage_dir(run: TrainingRun, raw: str | None, stage: str) -> Path:
    """A folder the summary names: absolute as given; relative, under the run folder or the project root."""
    root = run_dir_for(run)
    if not raw:
        return root / stage
    path = Path(raw)
    if path.is_absolute():
        return path
    in_project = Path(settings.BASE_DIR) / path
    return in_project if in_project.exists() and not (root / path).exists() else root / path


def _when(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) and value else None


def _stages_sync(
    run: TrainingRun,
    summary: dict | None,
    *,
    live: bool = False,
    unfinished: str = TrainingRun.State.FAILED,
    seen: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> list[TrainingRun]:
    """Make the stage rows match the pipeline's summary.json (rewritten as each stage starts and ends), or
    its stage folders when there is none.

    Without a summary, a stage's state is the one its run_info.json records (running / succeeded /
    failed; a result.json alone means succeeded). A stage still running counts as running while
    ``live``, and as ``unfinished`` (failed, or cancelled with the cycle) at the end.
    """
    root = run_dir_for(run)
    now = timezone.now()
    items: list[tuple[str, dict]] = []
    if summary is not None:
        for item in summary.get("stages") or []:
            if isinstance(item, dict) and item.get("stage") in STAGES:
                items.append((item["stage"], item))
    else:
        for stage in STAGES:
            folder = root / stage
            if folder.is_dir():
                info = _read_json(folder / "run_info.json") or {}
                result = _read_json(folder / "result.json")
                state = info.get("state") or (TrainingRun.State.SUCCEEDED if result else TrainingRun.State.RUNNING)
                items.append((stage, {"state": state, "result": result, "output_dir": str(folder)}))
    rows = []
    for stage, item in items:
        state = item.get("state")
        if state not in TrainingRun.State.values or (state == TrainingRun.State.RUNNING and not live):
            state = unfinished
        folder = _stage_dir(run, item.get("output_dir"), stage)
        info = _read_json(folder / "run_info.json") or {}
        row, _ = TrainingRun.objects.get_or_create(
            cycle=run, stage=stage, defaults={"snapshot": run.snapshot, "recipe": run.recipe, "started_at": now}
        )
        row.state = state
        row.artefact_dir = str(folder)
        row.config = info or row.config
        row.log_tail = read_log_tail(Path(item.get("log") or folder / STAGE_LOG)) or row.log_tail
        result = item.get("result")
        if isinstance(result, dict):
            row.metrics = result
        seconds = item.get("seconds", info.get("seconds"))
        if isinstance(seconds, (int, float)):
            row.metrics = {**row.metrics, "seconds": round(float(seconds), 2)}
        row.started_at = _when(info.get("started_at")) or row.started_at
        if state != TrainingRun.State.RUNNING:
            row.finished_at = _when(info.get("finished_at")) or row.finished_at or now
            if isinstance(seconds, (int, float)) and not info.get("started_at") and not seen:
                row.started_at = row.finished_at - timedelta(seconds=float(seconds))  # not watched: from its duration
        row.save()
        rows.append(row)
        if seen is not None and seen.get(stage) != state:
            seen[stage] = state
            detail = (
                f" {json.dumps(row.metrics, sort_keys=True)[:300]}" if state == TrainingRun.State.SUCCEEDED else ""
            )
            _say(progress, f"stage {stage}: {state}{detail}")
    return rows


def _collect(
    run: TrainingRun,
    *,
    rc: int | None,
    outcome: str | None,
    progress: Progress | None,
    seen: dict[str, str] | None = None,
) -> TrainingRun:
    """Record the stages and the outcome; on success register (and maybe activate) the new policy."""
    root = run_dir_for(run)
    summary = _read_json(root / "summary.json")
    finished_well = summary is not None and summary.get("state") == "succeeded" and rc in (0, None)
    if outcome is None and not finished_well and TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
        outcome = TrainingRun.State.CANCELLED  # killed by the cancel service before this watcher noticed
    unfinished = TrainingRun.State.CANCELLED if outcome == TrainingRun.State.CANCELLED else TrainingRun.State.FAILED
    _stages_sync(run, summary, unfinished=unfinished, seen=seen)
    tail = read_log_tail(root / LOG_NAME)
    stage_times = {
        s.get("stage"): s.get("seconds") for s in (summary or {}).get("stages") or [] if isinstance(s, dict)
    }
    metrics = {"evaluation": (summary or {}).get("evaluation") or {}, "stage_seconds": stage_times, "exit_code": rc}

    if outcome == TrainingRun.State.CANCELLED:
        run.cancel_requested = True
        run = _finish(
            run,
            TrainingRun.State.CANCELLED,
            "cancel requested: the pipeline's process group was killed",
            log_tail=tail,
            metrics=metrics,
        )
    elif outcome == "timeout":
        limit = int(_codepref("TRAINING_TIMEOUT_SECONDS"))
        run = _finish(
            run,
            TrainingRun.State.FAILED,
            f"timed out after {limit} s (TRAINING_TIMEOUT_SECONDS); the pipeline was killed",
            log_tail=tail,
            metrics=metrics,
        )
    elif summary is None:
        last = tail.strip().splitlines()[-1] if tail.strip() else "(empty log)"
        run = _finish(
            run,
            TrainingRun.State.FAILED,
            f"the pipeline exited with code {rc} without a summary.json; last log line: {last}",
            log_tail=tail,
            metrics=metrics,
        )
    elif summary.get("state") == "running":
        started = [s.get("stage") for s in summary.get("stages") or [] if isinstance(s, dict)]
        during = f" during stage {started[-1]}" if started else ""
        run = _finish(
            run,
            TrainingRun.State.FAILED,
            f"the pipeline stopped{during} without finishing its summary (exit code {rc}); see the log",
            log_tail=tail,
            metrics=metrics,
        )
    elif summary.get("state") == "cancelled":
        # Stopped by a SIGTERM that was not our cancel (a container shutdown, an operator's kill).
        why = f"the pipeline was stopped: {summary.get('message') or 'SIGTERM'}"
        run = _finish(run, TrainingRun.State.FAILED, why, log_tail=tail, metrics=metrics)
    elif summary.get("state") != "succeeded" or rc not in (0, None):
        why = summary.get("message") or f"exit code {rc}"
        stage = summary.get("failed_stage")
        message = why if stage and why.startswith(f"stage {stage}") else f"stage {stage or '?'} failed: {why}"
        run = _finish(run, TrainingRun.State.FAILED, message, log_tail=tail, metrics=metrics)
    else:
        run = _succeed(run, summary, metrics=metrics, tail=tail, progress=progress)
    _say(progress, f"cycle {run.pk}: {run.state}: {run.message}")
    return run


def _succeed(run: TrainingRun, summary: dict, *, metrics: dict, tail: str, progress: Progress | None) -> TrainingRun:
    policy_dir = _stage_dir(run, summary.get("policy_dir"), "") if summary.get("policy_dir") else None
    if policy_dir is None or not policy_dir.is_dir():
        return _finish(
            run,
            TrainingRun.State.FAILED,
            f"summary.json names no policy folder that exists: {summary.get('policy_dir')!r}",
            log_tail=tail,
            metrics=metrics,
        )
    with transaction.atomic():
        version = model_version_register_policy(
            cycle=run, policy_dir=str(policy_dir.resolve()), evaluation=metrics["evaluation"]
        )
        promoted, why = model_version_promote(version=version, evaluation=metrics["evaluation"])
        run = _finish(
            run,
            TrainingRun.State.SUCCEEDED,
            f"new policy {version.name}: {why}",
            log_tail=tail,
            metrics=metrics,
            model_version=version,
        )
        if promoted:
            # robust: the cycle is recorded either way; a broker outage only delays the new pairs (logged).
            transaction.on_commit(lambda: arena_generation_enqueue(version_id=version.pk), robust=True)
    return run


# --- model versions -------------------------------------------------------------------------------------


def model_version_register_policy(*, cycle: TrainingRun, policy_dir: str, evaluation: dict) -> ModelVersion:
    """The cycle's policy as a transformers ModelVersion (once: a re-run finds the same row)."""
    from .generation import model_version_register

    return model_version_register(
        name=f"cycle-{cycle.pk}",
        backend=ModelVersion.Backend.TRANSFORMERS,
        target=policy_dir,
        parent=cycle.base_model,
        training_run=cycle,
        metrics={"evaluation": evaluation},
    )


def _pass_at_1(evaluation: dict) -> tuple[float | None, float | None]:
    scores = evaluation.get("pass@1") if isinstance(evaluation, dict) else None
    if not isinstance(scores, dict):
        return None, None

    def number(value):
        return float(value) if isinstance(value, (int, float)) else None

    return number(scores.get("policy")), number(scores.get("parent"))


@transaction.atomic
def model_version_promote(*, version: ModelVersion, evaluation: dict) -> tuple[bool, str]:
    """Make ``version`` the active generator if its pass@1 is not worse than its parent's.

    Returns (activated, why). Without a pass@1 for the new policy nothing is activated: promotion needs
    evidence. Without one for the parent (no parent, or it was not evaluated) the policy's own counts.
    """
    policy, parent = _pass_at_1(evaluation)
    if policy is None:
        return False, "registered, not activated: the evaluation reported no pass@1 for it"
    if parent is not None and policy < parent:
        return False, f"registered, not activated: pass@1 {policy:.3f} is worse than the parent's {parent:.3f}"
    # One trained lineage generates: other local models step down; served endpoints are left as they are.
    others = ModelVersion.objects.filter(is_active=True, backend=ModelVersion.Backend.TRANSFORMERS)
    others.exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    against = f" (parent {parent:.3f})" if parent is not None else ""
    return True, f"activated: pass@1 {policy:.3f}{against}"


def arena_prompt_ids(*, version: ModelVersion, limit: int) -> list[int]:
    """Prompts for a new policy, newest first: those its parent answered (so new-vs-old pairs can form),
    then others; only prompts with room for two more pairs under MAX_PAIRS_PER_PROMPT."""
    room = Prompt.objects.annotate(pairs_count=Count("pairs")).filter(
        pairs_count__lte=int(settings.CODEPREF["MAX_PAIRS_PER_PROMPT"]) - ARENA_SAMPLES
    )
    ids: list[int] = []
    if version.parent_id:
        answered = Completion.objects.filter(model_version_id=version.parent_id).values("prompt_id")
        ids = list(room.filter(pk__in=answered).order_by("-pk").values_list("pk", flat=True)[:limit])
    if len(ids) < limit:
        ids.extend(room.exclude(pk__in=ids).order_by("-pk").values_list("pk", flat=True)[: limit - len(ids)])
    return ids


def arena_generation_enqueue(*, version_id: int) -> None:
    """Completions from the new policy on the generation queue, then pairs of it against its parent.

    ``completions_generate`` pairs by the PAIRING_POLICY setting; the follow-up task forms the arena
    (new-versus-parent) pairs whatever that setting says.
    """
    from . import dispatch

    version = ModelVersion.objects.get(pk=version_id)
    prompt_ids = arena_prompt_ids(version=version, limit=int(_codepref("TRAINING_ARENA_PROMPTS")))
    if not prompt_ids:
        return
    dispatch.enqueue(
        "feedback.tasks.train_arena_generation",
        model_version_id=version.pk,
        prompt_ids=prompt_ids,
        samples=ARENA_SAMPLES,
        on_commit=False,
    )


def arena_pairs_form(*, model_version_id: int, prompt_ids: list[int]) -> int:
    """Pairs of the version's completions against its parent's (and other active versions'); returns how many."""
    from .generation import pairs_form_for_model

    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        raise ServiceError(f"model version {model_version_id} does not exist")
    formed = 0
    for prompt in Prompt.objects.filter(pk__in=prompt_ids):
        formed += len(pairs_form_for_model(prompt=prompt, model_version=version, policy="arena"))
    return formed


# --- cancelling -------------------------------------------------------------------------------------------


def training_run_cancel(*, run_id: int, by: str = "") -> TrainingRun:
    """Cancel a queued or running cycle (or the cycle of a stage row).

    Sets ``cancel_requested`` and kills the pipeline's process group when it runs on this host; the watcher
    notices within one poll and marks the run cancelled. A cycle nobody watches is marked cancelled here.
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise ServiceError(f"no training run with id {run_id}")
        if run.cycle_id:
            run = TrainingRun.objects.select_for_update().get(pk=run.cycle_id)
        if run.state not in ACTIVE:
            raise Conflict(f"cycle {run.pk} is already {run.state}")
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
        watched = is_watched(run) and run.state == TrainingRun.State.RUNNING
        alive = process_alive(run)
    if alive:
        _kill_group(run.pid)
    if not watched:
        who = f" by {by}" if by else ""
        _stages_sync(run, None, unfinished=TrainingRun.State.CANCELLED)
        tail = read_log_tail(run_dir_for(run) / LOG_NAME) or run.log_tail
        run = _finish(
            run, TrainingRun.State.CANCELLED, f"cancelled{who}" + ("; pipeline killed" if alive else ""), log_tail=tail
        )
    return run


# --- the whole thing ----------------------------------------------------------------------------------------


def training_cycle_execute(
    *, recipe: str | None = None, force: bool = False, progress: Progress | None = None
) -> TrainingRun:
    """Start and run a cycle (what the task and `manage.py train` do). Raises Conflict when refused."""
    run = training_cycle_start(recipe=recipe, force=force)
    if run.state == TrainingRun.State.SKIPPED:
        _say(progress, f"cycle {run.pk}: skipped: {run.message}")
        return run
    return training_cycle_run(run_id=run.pk, progress=progress)
