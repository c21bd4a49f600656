"""The run record: a cycle's ``TrainingRun`` row and its stage rows, its folder, heartbeat, and what the pipeline
wrote there (log tail, summary.json, each stage's run_info.json and result.json).

A cycle is a ``TrainingRun`` with ``stage="cycle"``; each pipeline stage (sft, reward, dpo, online_rl, evaluate)
gets its own row pointing at it. Files live in ``TRAINING_DIR/run-<cycle id>/``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from feedback import metrics
from feedback.errors import Conflict, ServiceError
from feedback.models import TrainingRun

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


def say(progress: Progress | None, message: str) -> None:
    """Tell whoever follows the cycle: its progress callback (``manage.py train`` prints it), else the log. Not
    both: the command's terminal shows the log too, and every line came out twice."""
    if progress is not None:
        progress(message)
    else:
        logger.info(message)


def refused(run: TrainingRun | None) -> Conflict:
    if run is None:
        return Conflict("refused: another cycle is running")
    return Conflict(f"refused: cycle {run.pk} is {run.state}")


# --- paths and heartbeats -----------------------------------------------------------------------------


def recipe_config_path(recipe: str) -> Path:
    """``<TRAINING_RECIPES_DIR>/<recipe>/pipeline.yaml``, or a ServiceError naming what is missing."""
    if not RECIPE_NAME.match(recipe or ""):
        raise ServiceError(
            f"recipe must be a folder name under training/recipes/ (letters, digits, _ . -); got {recipe!r}"
        )
    path = Path(settings.CODEPREF["TRAINING_RECIPES_DIR"]) / recipe / "pipeline.yaml"
    if not path.is_file():
        raise ServiceError(f"recipe {recipe!r} has no pipeline config: {path} does not exist")
    return path


def run_dir_for(run: TrainingRun) -> Path:
    """The folder of a cycle's files: its log, summary.json and one folder per stage."""
    cycle_id = run.cycle_id or run.pk
    return Path(settings.CODEPREF["TRAINING_DIR"]) / f"run-{cycle_id}"


def heartbeat_stale_after() -> timedelta:
    # Generous: a watcher only stops bumping when it is gone, and a false "gone" would double-watch.
    return timedelta(seconds=max(120.0, 30 * float(settings.CODEPREF["TRAINING_POLL_SECONDS"])))


def is_watched(run: TrainingRun) -> bool:
    """Whether a live watcher (task or command) bumped this cycle's heartbeat recently."""
    return run.heartbeat_at is not None and timezone.now() - run.heartbeat_at < heartbeat_stale_after()


def run_heartbeat(run: TrainingRun, log_path: Path) -> bool:
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


def run_finish(run: TrainingRun, state: str, message: str, **fields) -> TrainingRun:
    run.state = state
    run.message = message
    run.finished_at = timezone.now()
    for key, value in fields.items():
        setattr(run, key, value)
    run.save(update_fields=["state", "message", "finished_at", *fields])
    metrics.training_run_counted(state)
    return run


# --- what the pipeline wrote ----------------------------------------------------------------------------


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


def read_json(path: Path) -> dict | None:
    """A JSON object from a file the pipeline wrote, or None; NUL characters (which PostgreSQL's jsonb refuses,
    and a sampled completion may contain) become U+FFFD."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        data = json.loads(text.replace("\\u0000", "\\ufffd"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_summary(run: TrainingRun) -> dict | None:
    return read_json(run_dir_for(run) / "summary.json")


def stage_dir(run: TrainingRun, raw: str | None, stage: str) -> Path:
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


# --- stage rows -----------------------------------------------------------------------------------------


def stages_sync(
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
    now = timezone.now()
    rows = []
    for stage, item in _stage_items(run, summary):
        state = item.get("state")
        if state not in TrainingRun.State.values or (state == TrainingRun.State.RUNNING and not live):
            state = unfinished
        row = _stage_row_save(run, stage, item, state=state, now=now, watched=bool(seen))
        rows.append(row)
        if seen is not None and seen.get(stage) != state:
            seen[stage] = state
            detail = (
                f" {json.dumps(row.metrics, sort_keys=True)[:300]}" if state == TrainingRun.State.SUCCEEDED else ""
            )
            say(progress, f"stage {stage}: {state}{detail}")
    return rows


def _stage_items(run: TrainingRun, summary: dict | None) -> list[tuple[str, dict]]:
    """(stage, what is known of it) from the summary, or from the stage folders when there is none."""
    if summary is not None:
        return [
            (item["stage"], item)
            for item in summary.get("stages") or []
            if isinstance(item, dict) and item.get("stage") in STAGES
        ]
    items = []
    for stage in STAGES:
        folder = run_dir_for(run) / stage
        if folder.is_dir():
            info = read_json(folder / "run_info.json") or {}
            result = read_json(folder / "result.json")
            state = info.get("state") or (TrainingRun.State.SUCCEEDED if result else TrainingRun.State.RUNNING)
            items.append((stage, {"state": state, "result": result, "output_dir": str(folder)}))
    return items


def _stage_row_save(run: TrainingRun, stage: str, item: dict, *, state: str, now, watched: bool) -> TrainingRun:
    folder = stage_dir(run, item.get("output_dir"), stage)
    info = read_json(folder / "run_info.json") or {}
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
        if isinstance(seconds, (int, float)) and not info.get("started_at") and not watched:
            row.started_at = row.finished_at - timedelta(seconds=float(seconds))  # not watched: from its duration
    row.save()
    return row
