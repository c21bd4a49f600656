"""The pipeline as a supervised subprocess: its command line and environment, starting it in its own process
group, watching it (heartbeat, stages, cancel, timeout), and killing the whole group.

A crash or an out-of-memory kill ends the pipeline, not the worker; output goes to
``TRAINING_DIR/run-<id>/pipeline.log``. Whether a recorded pid is still our pipeline is read from ``/proc``.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from feedback.errors import ServiceError
from feedback.models import ModelVersion, TrainingRun

from .runs import (
    LOG_NAME,
    Progress,
    read_log_tail,
    read_summary,
    run_dir_for,
    run_finish,
    run_heartbeat,
    say,
    stages_sync,
)

KILL_GRACE_SECONDS = 10.0
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


def kill_group(pid: int, proc: subprocess.Popen | None = None) -> None:
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


def pipeline_command(
    *,
    config_path: str,
    snapshot_dir: Path,
    output_dir: Path,
    model_path: str,
    version: ModelVersion | None = None,
) -> list[str]:
    """``python -m training.pipeline ...``; the pipeline itself starts each training stage under the launcher.
    The base version's loading settings (remote code, evaluation prompt prefix) travel with it."""
    command = [
        sys.executable,
        "-m",
        settings.CODEPREF["TRAINING_PIPELINE_MODULE"],
        "--config",
        str(config_path),
        "--snapshot",
        str(snapshot_dir),
        "--output_dir",
        str(output_dir),
        "--model_name_or_path",
        str(model_path),
    ]
    launcher = (settings.CODEPREF["TRAINING_LAUNCHER"] or "").strip()
    if launcher:
        try:
            shlex.split(launcher)
        except ValueError as exc:
            raise ServiceError(f"TRAINING_LAUNCHER={launcher!r} is not a command line: {exc}")
        command += ["--launcher", launcher]
    if version is not None and version.trust_remote_code:
        command += ["--trust_remote_code", "true"]
    if version is not None and version.prompt_prefix:
        command += ["--prompt_prefix", version.prompt_prefix]
    return command


def _pipeline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.BASE_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def pipeline_start(
    run: TrainingRun,
    *,
    config_path: Path,
    base: tuple[ModelVersion | None, str],
    progress: Progress | None,
) -> subprocess.Popen | None:
    """Start the pipeline for ``run`` and record its pid; None when it could not start (the run is then failed)."""
    snapshot = run.snapshot
    out = run_dir_for(run)
    if out.exists() and any(out.iterdir()):
        # Left by an earlier database with the same ids: keep it, but never read its summary as ours.
        out.rename(out.with_name(f"{out.name}.old-{int(time.time())}"))
    out.mkdir(parents=True, exist_ok=True)
    version, model_path = base
    try:
        command = pipeline_command(
            config_path=str(config_path),
            snapshot_dir=snapshot.path,
            output_dir=out,
            model_path=model_path,
            version=version,
        )
    except ServiceError as exc:
        run_finish(run, TrainingRun.State.FAILED, str(exc))
        return None
    config = {**run.config, "command": command, "model_name_or_path": model_path, "snapshot_dir": str(snapshot.path)}
    say(
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
        fields = {"config": config, "artefact_dir": str(out), "base_model": version}
        run_finish(run, TrainingRun.State.FAILED, f"could not start the pipeline: {exc}", **fields)
        return None
    run.pid, run.host, run.artefact_dir, run.base_model, run.config = (
        proc.pid,
        socket.gethostname(),
        str(out),
        version,
        config,
    )
    run.save(update_fields=["pid", "host", "artefact_dir", "base_model", "config"])
    say(progress, f"cycle {run.pk}: pipeline started (pid {proc.pid}), log {log_path}")
    return proc


def pipeline_watch(
    run: TrainingRun, proc: subprocess.Popen | None, progress: Progress | None
) -> tuple[int | None, str | None, dict[str, str]]:
    """Poll the pipeline until it ends, is cancelled, or times out; returns (exit code, outcome, stages seen).

    The outcome is None when the pipeline ended by itself, else "cancelled" or "timeout" (it was killed).
    """
    poll = float(settings.CODEPREF["TRAINING_POLL_SECONDS"])
    timeout = timedelta(seconds=int(settings.CODEPREF["TRAINING_TIMEOUT_SECONDS"]))
    deadline = (run.started_at or timezone.now()) + timeout
    log_path = run_dir_for(run) / LOG_NAME
    seen: dict[str, str] = {}
    try:
        while True:
            if proc is not None:
                rc = proc.poll()
                if rc is not None:
                    return rc, None, seen
            elif not process_alive(run):
                return None, None, seen
            time.sleep(poll)
            cancel = run_heartbeat(run, log_path)
            stages_sync(run, read_summary(run), live=True, seen=seen, progress=progress)
            if cancel or timezone.now() > deadline:
                say(
                    progress,
                    f"cycle {run.pk}: {'cancel requested' if cancel else 'timed out'}; stopping pid {run.pid}",
                )
                kill_group(run.pid, proc)
                rc = proc.poll() if proc is not None else None
                return rc, TrainingRun.State.CANCELLED if cancel else "timeout", seen
    except BaseException as exc:
        _stop_after_watcher_failed(run, proc, exc, log_path)
        raise


def _stop_after_watcher_failed(run: TrainingRun, proc: subprocess.Popen | None, exc: BaseException, log_path):
    # A Celery time limit, Ctrl-C on `manage.py train`, a bug here: the pipeline must not outlive us.
    kill_group(run.pid, proc)
    interrupted = isinstance(exc, KeyboardInterrupt)
    unfinished = TrainingRun.State.CANCELLED if interrupted else TrainingRun.State.FAILED
    stages_sync(run, read_summary(run), unfinished=unfinished)
    run_finish(
        run,
        unfinished,
        "interrupted (Ctrl-C); pipeline stopped" if interrupted else f"watcher stopped: {exc!r}; pipeline stopped",
        log_tail=read_log_tail(log_path),
    )
