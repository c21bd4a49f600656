"""Dataset snapshots: votes in, a versioned, documented preference dataset out.

``snapshot_build`` claims a snapshot (claims), reads the votes (reader), labels, filters and masks them into
rows (rows, aggregation, privacy), streams the files into a temporary folder (writers), adds the card and the
manifest, then renames the folder to ``DATASETS_DIR/<version>/`` (files) and publishes the row. The layout
is training.dataset_format's.

Safe to run twice, and safe to kill:
- a schedule slot is claimed once, and the row being built is held by an advisory lock (claims); a task
  redelivered after its worker died takes the row over and builds it again into a fresh temporary folder;
- files appear only by an atomic rename of a complete, fsynced folder; if a worker died after the
  rename, the next attempt publishes what is there;
- a published snapshot is never written again;
- a scheduled build with no vote added or removed since the last published snapshot (same filters)
  builds nothing and returns that snapshot.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from feedback import dispatch
from feedback.errors import ServiceError
from feedback.models import DatasetSnapshot

from .card import card_write
from .claims import BuildLock, building_create, unchanged_since_last
from .files import folder_publish
from .manifest import build_id, manifest_make, manifest_read, manifest_write
from .options import SnapshotOptions, slot_for
from .rows import snapshot_files_write

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    snapshot: DatasetSnapshot | None
    built: bool = False
    skipped: bool = False
    reason: str = ""

    def as_dict(self) -> dict:
        snapshot = self.snapshot
        return {
            "version": snapshot.version if snapshot else None,
            "state": snapshot.state if snapshot else None,
            "built": self.built,
            "skipped": self.skipped,
            "reason": self.reason,
        }


NOT_QUEUED = "could not be queued"


def snapshot_request(*, filters: Mapping | None = None, requested_by=None) -> DatasetSnapshot:
    """A maintainer asks for a snapshot: the row (and its version) now, the build on a worker after commit."""
    options = SnapshotOptions.from_request(filters)
    snapshot = building_create(options=options, slot=None, task_id=str(uuid.uuid4()), requested_by=requested_by)

    def not_queued(exc: Exception) -> None:
        # The broker is down: say so on the row rather than leave it waiting forever.
        DatasetSnapshot.objects.filter(pk=snapshot.pk, state=DatasetSnapshot.State.BUILDING).update(
            state=DatasetSnapshot.State.FAILED,
            error=f"{NOT_QUEUED} ({type(exc).__name__}: {exc}); ask again",
        )

    dispatch.enqueue(
        "feedback.tasks.build_snapshot", snapshot_id=snapshot.pk, task_id=snapshot.task_id, on_error=not_queued
    )
    return snapshot


def snapshot_request_if_changed(*, filters: Mapping | None = None, requested_by=None) -> tuple[DatasetSnapshot, bool]:
    """``snapshot_request``, unless no vote was added or removed since the newest published snapshot with these
    filters: then that one, unchanged, and False (a new version would hold the same rows)."""
    previous = unchanged_since_last(SnapshotOptions.from_request(filters))
    if previous is not None:
        return previous, False
    return snapshot_request(filters=filters, requested_by=requested_by), True


def snapshot_requeue(*, snapshot: DatasetSnapshot) -> bool:
    """Queue a BUILDING snapshot again (its message was lost, say with a Redis that kept nothing on disk).

    Harmless if it is in fact being built: the second task finds the row locked and leaves it.
    """
    if snapshot.state != DatasetSnapshot.State.BUILDING:
        return False
    if not snapshot.task_id:
        snapshot.task_id = str(uuid.uuid4())
        DatasetSnapshot.objects.filter(pk=snapshot.pk).update(task_id=snapshot.task_id)
    dispatch.enqueue("feedback.tasks.build_snapshot", snapshot_id=snapshot.pk, task_id=snapshot.task_id)
    return True


def snapshot_build(
    *,
    slot: str | None = None,
    filters: Mapping | None = None,
    snapshot_id: int | None = None,
    task_id: str = "",
    requested_by=None,
    on_progress: Callable[[float, str], None] | None = None,
) -> BuildResult:
    """Claim a snapshot and build it; see the module docstring for the guarantees.

    ``snapshot_id``: build that (requested) row. ``slot``: the scheduled build of that slot, skipped when
    nothing changed. Neither: a fresh snapshot now (the export command).
    """
    claimed = _claim(slot=slot, filters=filters, snapshot_id=snapshot_id, task_id=task_id, requested_by=requested_by)
    if isinstance(claimed, BuildResult):
        return claimed
    snapshot = claimed
    if snapshot.state != DatasetSnapshot.State.BUILDING:
        return BuildResult(snapshot, reason=f"already {snapshot.state}")
    lock = BuildLock(snapshot.version)
    if not lock.acquire():
        return BuildResult(snapshot, reason="being built by another worker")
    try:
        snapshot.refresh_from_db()
        if snapshot.state != DatasetSnapshot.State.BUILDING:
            return BuildResult(snapshot, reason=f"already {snapshot.state}")
        if task_id and snapshot.task_id != task_id:
            DatasetSnapshot.objects.filter(pk=snapshot.pk).update(task_id=task_id)
            snapshot.task_id = task_id
        _build_locked(snapshot, on_progress=on_progress)
        snapshot.refresh_from_db()
        return BuildResult(snapshot, built=True)
    finally:
        lock.release()


def _claim(*, slot, filters, snapshot_id, task_id, requested_by) -> DatasetSnapshot | BuildResult:
    """The row to build: the requested one, the one a first delivery of this task claimed, the slot's, or a new
    one; a BuildResult instead when the slot's build is skipped."""
    if snapshot_id is not None:
        snapshot = DatasetSnapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            raise ServiceError(f"snapshot {snapshot_id} does not exist")
        return snapshot
    if task_id:
        # A redelivered or retried task finds the row its first delivery claimed.
        snapshot = DatasetSnapshot.objects.filter(task_id=task_id).first()
        if snapshot is not None:
            return snapshot
    options = SnapshotOptions.from_request(filters)
    if slot is None:
        return building_create(options=options, slot=None, task_id=task_id, requested_by=requested_by)
    slot = slot_for(slot)
    snapshot = DatasetSnapshot.objects.filter(slot=slot).first()
    if snapshot is not None:
        return snapshot
    previous = unchanged_since_last(options)
    if previous is not None:
        log.info("snapshot %s: no votes added or removed since v%s; not rebuilt", slot, previous.version)
        return BuildResult(previous, skipped=True, reason=f"no new votes since v{previous.version}")
    snapshot = building_create(options=options, slot=slot, task_id=task_id, requested_by=requested_by)
    # None: another beat or delivery claimed the slot first.
    return snapshot if snapshot is not None else DatasetSnapshot.objects.get(slot=slot)


class _Progress:
    """Writes progress to the row (at most every second) and to an optional callback."""

    def __init__(self, snapshot_id: int | None, callback: Callable[[float, str], None] | None) -> None:
        self.snapshot_id = snapshot_id
        self.callback = callback
        self.last = 0.0

    def __call__(self, fraction: float, stage: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        if self.snapshot_id is not None:
            DatasetSnapshot.objects.filter(pk=self.snapshot_id, state=DatasetSnapshot.State.BUILDING).update(
                progress=round(min(max(fraction, 0.0), 0.99), 4)
            )
        if self.callback is not None:
            self.callback(fraction, stage)


def _build_locked(snapshot: DatasetSnapshot, *, on_progress=None) -> None:
    root = Path(settings.CODEPREF["DATASETS_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    if _published_after_rename(snapshot, root):
        return
    for stale in root.glob(f".building-{snapshot.version}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a dead attempt's half folder (we hold the lock)
    options = SnapshotOptions.from_request(snapshot.filters)
    tmp = root / f".building-{snapshot.version}-{uuid.uuid4().hex[:8]}"
    try:
        stats = snapshot_files_write(
            folder=tmp,
            version=snapshot.version,
            options=options,
            last_vote_id=snapshot.last_vote_id,
            progress=_Progress(snapshot.pk, on_progress),
        )
        manifest = manifest_make(snapshot, options, stats)
        card_write(tmp, snapshot, options, stats, manifest)
        manifest_write(tmp, manifest, stats["hashes"])
        folder_publish(tmp, snapshot.path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_transient(exc):
            DatasetSnapshot.objects.filter(pk=snapshot.pk, state=DatasetSnapshot.State.BUILDING).update(
                state=DatasetSnapshot.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000]
            )
        raise
    _publish(snapshot, manifest)


def _published_after_rename(snapshot: DatasetSnapshot, root: Path) -> bool:
    """Publish the snapshot's folder if a worker died between its rename and the publish; a folder built for
    another row (a database restored or reset under an old folder) is kept, out of the way."""
    final = snapshot.path
    if not final.exists():
        return False
    manifest = manifest_read(final)
    if manifest is not None and manifest.get("build") == build_id(snapshot):
        _publish(snapshot, manifest)
        return True
    aside = root / f".orphan-{snapshot.version}-{uuid.uuid4().hex[:8]}"
    log.warning("snapshot folder %s does not belong to snapshot v%s; moved to %s", final, snapshot.version, aside)
    os.rename(final, aside)
    return False


def _is_transient(exc: BaseException) -> bool:
    # A lost database connection (the task retries), or the worker being stopped (the message is redelivered):
    # leave the row BUILDING for the next attempt. A soft time limit is not transient: a retry would hit it too.
    return isinstance(exc, (OperationalError, InterfaceError, KeyboardInterrupt, SystemExit))


def _publish(snapshot: DatasetSnapshot, manifest: dict) -> None:
    DatasetSnapshot.objects.filter(pk=snapshot.pk, state=DatasetSnapshot.State.BUILDING).update(
        state=DatasetSnapshot.State.PUBLISHED,
        counts=manifest["counts"],
        files=manifest["files"],
        agreement_alpha=manifest["agreement"]["krippendorff_alpha"],
        progress=1.0,
        error="",
        published_at=timezone.now(),
    )
