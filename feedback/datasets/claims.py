"""Claiming snapshot rows: creating them with the next version, and holding one while it is built.

- a schedule slot ("hourly:2026-11-27T14") is unique, so two beats or a double delivery claim one row;
- versions come from max + 1 under a transaction-level advisory lock;
- the row being built is held by a session-level advisory lock, which dies with its connection: a second
  worker that finds it held leaves it alone, and one whose worker died is taken over by the redelivered task.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Max

from feedback.models import DatasetSnapshot, Vote

from .options import SnapshotOptions

log = logging.getLogger(__name__)

ADVISORY_LOCK_CLASS = 0x5EED  # first key of every advisory lock taken here
_VERSION_LOCK = 0  # second key: allocating a version; snapshot versions are >= 1


def vote_watermark() -> tuple[int, int]:
    """(highest vote id, number of votes up to it): a snapshot with the same pair saw the same votes."""
    top = Vote.objects.aggregate(top=Max("id"))["top"] or 0
    return top, Vote.objects.filter(id__lte=top).count() if top else 0


def _next_version() -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_CLASS, _VERSION_LOCK])
    return (DatasetSnapshot.objects.aggregate(top=Max("version"))["top"] or 0) + 1


def building_create(
    *, options: SnapshotOptions, slot: str | None, task_id: str, requested_by=None
) -> DatasetSnapshot | None:
    """A new BUILDING row with the next version, or None if ``slot`` is already taken."""
    last_vote_id, vote_count = vote_watermark()
    try:
        with transaction.atomic():
            return DatasetSnapshot.objects.create(
                version=_next_version(),
                slot=slot,
                filters=options.as_dict(),
                counts={"source_votes": vote_count},
                last_vote_id=last_vote_id,
                task_id=task_id,
                requested_by=requested_by,
            )
    except IntegrityError:
        if slot and DatasetSnapshot.objects.filter(slot=slot).exists():
            return None
        raise


def unchanged_since_last(options: SnapshotOptions) -> DatasetSnapshot | None:
    """The newest published snapshot with these filters, if no vote was added or removed since it."""
    wanted = options.as_dict()
    published = DatasetSnapshot.objects.filter(state=DatasetSnapshot.State.PUBLISHED).order_by("-version")
    previous = next(
        (s for s in published.only("version", "filters", "last_vote_id", "counts")[:20] if s.filters == wanted), None
    )
    if previous is None:
        return None
    top, count = vote_watermark()
    if top == previous.last_vote_id and count == previous.counts.get("source_votes"):
        return DatasetSnapshot.objects.get(pk=previous.pk)
    return None


class BuildLock:
    """A session-level advisory lock on one snapshot version (PostgreSQL); it dies with the connection."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.held = False

    def acquire(self) -> bool:
        if connection.vendor != "postgresql":
            self.held = True  # SQLite (the demo) runs tasks inline, one at a time
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_CLASS, self.version])
            self.held = bool(cursor.fetchone()[0])
        return self.held

    def release(self) -> None:
        if self.held and connection.vendor == "postgresql" and connection.connection is not None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_CLASS, self.version])
            except DatabaseError:  # a broken connection took the lock with it
                log.warning("snapshot v%s: the lock's connection is gone", self.version)
        self.held = False
