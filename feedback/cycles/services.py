"""Training cycles: a dataset snapshot, the TRL pipeline as a subprocess, and the model version it produces.

A cycle is a ``TrainingRun`` with ``stage="cycle"``; each pipeline stage (sft, reward, dpo, online_rl,
evaluate) gets its own row pointing at it (``runs``). Entry points:

    python manage.py train --recipe tiny [--force]      # one cycle now, in the foreground
    feedback.tasks.train_cycle(recipe=None, force=False) # the same on the "training" queue (beat: nightly)

How a cycle stays safe:

- **One at a time.** The partial unique constraint ``training_one_active_cycle`` allows one queued or
  running cycle; a second start is refused with ``Conflict("refused: cycle N is running")``.
- **The pipeline is a subprocess** in its own process group (``python -m training.pipeline``, or the
  launcher in ``CODEPREF["TRAINING_LAUNCHER"]`` such as ``accelerate launch``), so a crash or an
  out-of-memory kill ends the pipeline, not the worker (``supervision``).
- **A watcher** (the task, or ``manage.py train``) polls the process: it bumps ``heartbeat_at``, copies the
  log's tail into the row, records stages as their folders appear, kills the process group when
  ``cancel_requested`` is set or the timeout passes, and reads ``summary.json`` at the end.
- **Re-delivery.** A task re-delivered after its worker died finds the cycle running with a stale
  heartbeat. It finishes that cycle instead of starting another: it re-attaches to the pipeline when
  the process still lives on this host, collects the ``summary.json`` a pipeline wrote while nobody
  watched, or marks the cycle failed with a message when the process is gone. The next scheduled
  task starts a fresh cycle.

On success the policy folder is registered as a ModelVersion (parent = the version trained from) and
becomes the active one only when the promotion gate finds it better than its parent beyond noise, on enough
held-out completions, and not more degenerate (``promotion``; the decision and its evidence go in the cycle's
``metrics["promotion"]``); new completions from it are then generated for prompts the parent answered, so
that new-versus-old pairs reach volunteers (``arena``).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback.errors import Conflict, ServiceError
from feedback.models import DatasetSnapshot, TrainingRun

from .arena import arena_generation_enqueue
from .inputs import base_model, new_preferences, snapshot_for_cycle
from .promotion import model_version_promote, model_version_register_policy
from .runs import (
    ACTIVE,
    LOG_NAME,
    TERMINAL,
    Progress,
    is_watched,
    read_log_tail,
    read_summary,
    recipe_config_path,
    refused,
    run_dir_for,
    run_finish,
    say,
    stage_dir,
    stages_sync,
)
from .supervision import kill_group, pipeline_start, pipeline_watch, process_alive

OnStarted = Callable[[TrainingRun], None]

# --- starting -----------------------------------------------------------------------------------------


def training_cycle_start(*, recipe: str | None = None, force: bool = False) -> TrainingRun:
    """A cycle ready for ``training_cycle_run``: a new one (queued, or skipped for lack of new data), or the
    active cycle whose watcher was lost (so that a re-delivered task finishes it).

    Raises ``Conflict("refused: cycle N is running")`` while another cycle is watched, and ``ServiceError``
    for an unknown recipe.
    """
    recipe = recipe or settings.CODEPREF["TRAINING_RECIPE"]
    config_path = recipe_config_path(recipe)

    active = TrainingRun.objects.filter(stage=TrainingRun.Stage.CYCLE, state__in=ACTIVE).first()
    if active is not None:
        if is_watched(active):
            raise refused(active)
        return active

    snapshot = snapshot_for_cycle(None)
    fresh, last = new_preferences(snapshot)
    now = timezone.now()
    fields = {
        "stage": TrainingRun.Stage.CYCLE,
        "recipe": recipe,
        "snapshot": snapshot,
        "config": {"recipe": recipe, "config_path": str(config_path), "force": force, "new_preferences": fresh},
    }
    skip = _skip_reason(snapshot, fresh=fresh, last=last, force=force)
    if skip:
        return TrainingRun.objects.create(
            **fields, state=TrainingRun.State.SKIPPED, message=skip, started_at=now, finished_at=now
        )
    try:
        with transaction.atomic():
            # A fresh heartbeat: the creator runs it next, so nobody else takes it over meanwhile.
            return TrainingRun.objects.create(**fields, state=TrainingRun.State.QUEUED, heartbeat_at=now)
    except IntegrityError:
        raise refused(TrainingRun.objects.filter(stage=TrainingRun.Stage.CYCLE, state__in=ACTIVE).first())


def _skip_reason(snapshot: DatasetSnapshot | None, *, fresh: int, last: TrainingRun | None, force: bool) -> str:
    """Why a cycle has nothing to train on, or "" when it has."""
    needed = int(settings.CODEPREF["TRAINING_MIN_NEW_PREFERENCES"])
    if snapshot is None:
        return "no published dataset snapshot to train on"
    if fresh < needed and not force:
        since = f"cycle {last.pk} (snapshot v{last.snapshot.version})" if last and last.snapshot else "the start"
        return (
            f"{fresh} new preference rows in snapshot v{snapshot.version} since {since}; "
            f"{needed} needed (TRAINING_MIN_NEW_PREFERENCES), or force"
        )
    return ""


# --- running ------------------------------------------------------------------------------------------


def training_cycle_run(
    *, run_id: int, progress: Progress | None = None, on_started: OnStarted | None = None
) -> TrainingRun:
    """Run (or, after a lost watcher, finish) one cycle and return it in its final state.

    Safe to call twice: a finished cycle is returned as it is, and a cycle another process is watching
    raises ``Conflict``. ``on_started(run)`` is called once the pipeline process has started.
    """
    run = TrainingRun.objects.filter(pk=run_id, stage=TrainingRun.Stage.CYCLE).first()
    if run is None:
        raise ServiceError(f"no training cycle with id {run_id}")
    if run.state in TERMINAL:
        return run
    if run.state != TrainingRun.State.QUEUED:
        return _take_over(run, progress)
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run.pk, state=TrainingRun.State.QUEUED).update(
        state=TrainingRun.State.RUNNING, started_at=now, heartbeat_at=now, host=socket.gethostname()
    )
    run.refresh_from_db()
    if not claimed:
        if run.state in TERMINAL:
            return run
        raise refused(run)
    return _launch_and_watch(run, progress, on_started)


def _take_over(run: TrainingRun, progress: Progress | None) -> TrainingRun:
    """Finish a running cycle whose watcher was lost; only one taker gets it."""
    if is_watched(run):
        raise refused(run)
    claimed = TrainingRun.objects.filter(pk=run.pk, state=TrainingRun.State.RUNNING, heartbeat_at=run.heartbeat_at)
    if not claimed.update(heartbeat_at=timezone.now()):
        raise refused(run)
    run.refresh_from_db()
    if process_alive(run):
        say(progress, f"cycle {run.pk}: re-attached to pipeline pid {run.pid} (its watcher was lost)")
        return _watch_and_collect(run, None, progress)
    if (run_dir_for(run) / "summary.json").is_file():
        say(progress, f"cycle {run.pk}: the pipeline finished while nobody watched; collecting its summary")
        return _collect(run, rc=None, outcome=None, progress=progress)
    gone = f"pid {run.pid} on {run.host}" if run.pid else "no pipeline process started"
    stages_sync(run, None)
    return run_finish(
        run,
        TrainingRun.State.FAILED,
        f"the watcher of this cycle was lost (worker died or restarted) and the pipeline is gone ({gone}); "
        "marked failed by a re-delivered task",
        log_tail=read_log_tail(run_dir_for(run) / LOG_NAME),
    )


def _launch_and_watch(run: TrainingRun, progress: Progress | None, on_started: OnStarted | None) -> TrainingRun:
    snapshot = run.snapshot
    if snapshot is None or not snapshot.path.is_dir():
        where = f"snapshot v{snapshot.version} has no folder at {snapshot.path}" if snapshot else "no snapshot"
        return run_finish(run, TrainingRun.State.FAILED, f"cannot train: {where}")
    try:
        config_path = recipe_config_path(run.recipe)
    except ServiceError as exc:
        return run_finish(run, TrainingRun.State.FAILED, str(exc))
    try:
        base = base_model()
    except ServiceError as exc:
        return run_finish(run, TrainingRun.State.FAILED, str(exc))
    proc = pipeline_start(run, config_path=config_path, base=base, progress=progress)
    if proc is None:
        return run  # recorded as failed: it could not start
    if on_started is not None:
        on_started(run)
    return _watch_and_collect(run, proc, progress)


def _watch_and_collect(run: TrainingRun, proc: subprocess.Popen | None, progress: Progress | None) -> TrainingRun:
    rc, outcome, seen = pipeline_watch(run, proc, progress)
    return _collect(run, rc=rc, outcome=outcome, progress=progress, seen=seen)


# --- collecting -----------------------------------------------------------------------------------------


def _collect(
    run: TrainingRun,
    *,
    rc: int | None,
    outcome: str | None,
    progress: Progress | None,
    seen: dict[str, str] | None = None,
) -> TrainingRun:
    """Record the stages and the outcome; on success register (and maybe activate) the new policy."""
    summary = read_summary(run)
    finished_well = summary is not None and summary.get("state") == "succeeded" and rc in (0, None)
    if outcome is None and not finished_well and TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
        outcome = TrainingRun.State.CANCELLED  # killed by the cancel service before this watcher noticed
    unfinished = TrainingRun.State.CANCELLED if outcome == TrainingRun.State.CANCELLED else TrainingRun.State.FAILED
    stages_sync(run, summary, unfinished=unfinished, seen=seen)
    tail = read_log_tail(run_dir_for(run) / LOG_NAME)
    stage_times = {
        s.get("stage"): s.get("seconds") for s in (summary or {}).get("stages") or [] if isinstance(s, dict)
    }
    metrics = {"evaluation": (summary or {}).get("evaluation") or {}, "stage_seconds": stage_times, "exit_code": rc}
    failure = _failure(summary, rc=rc, outcome=outcome, tail=tail)
    if failure is None:
        run = _succeed(run, summary, metrics=metrics, tail=tail)
    else:
        state, message = failure
        if state == TrainingRun.State.CANCELLED:
            run.cancel_requested = True
        run = run_finish(run, state, message, log_tail=tail, metrics=metrics)
    say(progress, f"cycle {run.pk}: {run.state}: {run.message}")
    return run


def _failure(summary: dict | None, *, rc: int | None, outcome: str | None, tail: str) -> tuple[str, str] | None:
    """(state, message) of a cycle that did not succeed, or None when it did."""
    failed = TrainingRun.State.FAILED
    if outcome == TrainingRun.State.CANCELLED:
        return TrainingRun.State.CANCELLED, "cancel requested: the pipeline's process group was killed"
    if outcome == "timeout":
        limit = int(settings.CODEPREF["TRAINING_TIMEOUT_SECONDS"])
        return failed, f"timed out after {limit} s (TRAINING_TIMEOUT_SECONDS); the pipeline was killed"
    if summary is None:
        last = tail.strip().splitlines()[-1] if tail.strip() else "(empty log)"
        return failed, f"the pipeline exited with code {rc} without a summary.json; last log line: {last}"
    if summary.get("state") == "running":
        started = [s.get("stage") for s in summary.get("stages") or [] if isinstance(s, dict)]
        during = f" during stage {started[-1]}" if started else ""
        return failed, f"the pipeline stopped{during} without finishing its summary (exit code {rc}); see the log"
    if summary.get("state") == "cancelled":
        # Stopped by a SIGTERM that was not our cancel (a container shutdown, an operator's kill).
        return failed, f"the pipeline was stopped: {summary.get('message') or 'SIGTERM'}"
    if summary.get("state") != "succeeded" or rc not in (0, None):
        why = summary.get("message") or f"exit code {rc}"
        stage = summary.get("failed_stage")
        return failed, why if stage and why.startswith(f"stage {stage}") else f"stage {stage or '?'} failed: {why}"
    return None


def _succeed(run: TrainingRun, summary: dict, *, metrics: dict, tail: str) -> TrainingRun:
    policy_dir = stage_dir(run, summary.get("policy_dir"), "") if summary.get("policy_dir") else None
    if policy_dir is None or not policy_dir.is_dir():
        return run_finish(
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
        decision = model_version_promote(version=version, evaluation=metrics["evaluation"])
        run = run_finish(
            run,
            TrainingRun.State.SUCCEEDED,
            f"new policy {version.name}: {decision.summary}",
            log_tail=tail,
            metrics={**metrics, "promotion": decision.as_dict()},
            model_version=version,
        )
        if decision.promote:
            # robust: the cycle is recorded either way; a broker outage only delays the new pairs (logged).
            transaction.on_commit(lambda: arena_generation_enqueue(version_id=version.pk), robust=True)
    return run


# --- cancelling and the whole thing -----------------------------------------------------------------------


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
        kill_group(run.pid)
    if not watched:
        who = f" by {by}" if by else ""
        stages_sync(run, None, unfinished=TrainingRun.State.CANCELLED)
        tail = read_log_tail(run_dir_for(run) / LOG_NAME) or run.log_tail
        message = f"cancelled{who}" + ("; pipeline killed" if alive else "")
        run = run_finish(run, TrainingRun.State.CANCELLED, message, log_tail=tail)
    return run


def training_cycle_execute(
    *,
    recipe: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    on_started: OnStarted | None = None,
) -> TrainingRun:
    """Start and run a cycle (what the task and `manage.py train` do). Raises Conflict when refused.

    ``on_started(run)`` is called once the pipeline process has started (the command follows its log).
    """
    run = training_cycle_start(recipe=recipe, force=force)
    if run.state == TrainingRun.State.SKIPPED:
        say(progress, f"cycle {run.pk}: skipped: {run.message}")
        return run
    return training_cycle_run(run_id=run.pk, progress=progress, on_started=on_started)
