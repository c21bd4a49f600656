"""Dataset snapshots: votes in, a versioned, documented preference dataset out.

``snapshot_build`` claims a snapshot, aggregates each pair's votes (feedback.aggregation), filters,
splits by prompt, masks secrets (feedback.privacy), streams the files into a temporary folder, then
renames it to ``DATASETS_DIR/<version>/`` and publishes the row. The layout, which the training
pipeline reads:

    preference/{train,test}.jsonl, .parquet   prompt, chosen, rejected + metadata (PREFERENCE_COLUMNS)
    unpaired/{train,test}.jsonl, .parquet     prompt, completion, label (KTO) + metadata
    prompts/{train,test}.jsonl                one row per prompt of the split (tests for rewards, pass@k)
    votes/{train,test}.jsonl                  every vote, volunteers as salted pseudonyms
    hf/preference, hf/unpaired                DatasetDict(train, test).save_to_disk
    README.md                                 a Hugging Face dataset card
    manifest.json                             counts, sha256 and size of each file, filters, code version

Safe to run twice, and safe to kill:
- a schedule slot ("hourly:2026-11-27T14") is unique, so two beats or a double delivery claim one row;
- the row being built is held by a PostgreSQL advisory lock for the whole build; a second worker that
  finds it held leaves it alone, and one whose worker died (the lock goes with its connection) is
  taken over by the redelivered task and built again from scratch into a fresh temporary folder;
- files appear only by an atomic rename of a complete, fsynced folder; if a worker died after the
  rename, the next attempt publishes what is there;
- versions come from max + 1 under a lock and a published snapshot is never written again;
- a scheduled build with no vote added or removed since the last published snapshot (same filters)
  builds nothing and returns that snapshot.

Memory stays flat however many pairs there are: rows are read through a server-side cursor (PostgreSQL)
in prompt order and written in fixed-size chunks; the per-pair labels live in a temporary table.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import Count, Max
from django.utils import timezone

from . import dispatch
from .aggregation import AgreementCounter, label_pair
from .errors import ServiceError
from .models import Completion, DatasetSnapshot, Flag, ModelVersion, Pair, Prompt, Volunteer, Vote
from .privacy import Masker, pseudonym

log = logging.getLogger(__name__)

PARTS = ("preference", "unpaired", "prompts", "votes")
FORMATS = ("jsonl", "parquet", "hf")
SPLITS = ("train", "test")

PREFERENCE_COLUMNS = (
    "prompt",
    "chosen",
    "rejected",
    "pair_id",
    "prompt_id",
    "language",
    "votes",
    "margin",
    "agreement",
    "chosen_outcome",
    "rejected_outcome",
    "chosen_model",
    "rejected_model",
    "snapshot_version",
    "label",
    "decided_by_tests",
)
UNPAIRED_COLUMNS = (
    "prompt",
    "completion",
    "label",
    "pair_id",
    "prompt_id",
    "language",
    "outcome",
    "model",
    "snapshot_version",
)
PROMPT_COLUMNS = ("prompt_id", "prompt", "language", "tests", "test_style", "entry_point", "reference_solution")
VOTE_COLUMNS = ("pair_id", "prompt_id", "annotator", "choice", "shown_left", "weight", "time_taken_ms")

ROW_GROUP_ROWS = 8192
JSONL_FLUSH_BYTES = 4 << 20
FETCH_ROWS = 2000
ADVISORY_LOCK_CLASS = 0x5EED  # first key of every advisory lock taken here
_VERSION_LOCK = 0  # second key: allocating a version; snapshot versions are >= 1


def _schemas():
    import pyarrow as pa

    text, integer, real = pa.string(), pa.int64(), pa.float64()
    preference = pa.schema(
        [
            ("prompt", text),
            ("chosen", text),
            ("rejected", text),
            ("pair_id", integer),
            ("prompt_id", integer),
            ("language", text),
            ("votes", pa.int32()),
            ("margin", real),
            ("agreement", real),
            ("chosen_outcome", text),
            ("rejected_outcome", text),
            ("chosen_model", text),
            ("rejected_model", text),
            ("snapshot_version", pa.int32()),
            ("label", text),
            ("decided_by_tests", pa.bool_()),
        ]
    )
    unpaired = pa.schema(
        [
            ("prompt", text),
            ("completion", text),
            ("label", pa.bool_()),
            ("pair_id", integer),
            ("prompt_id", integer),
            ("language", text),
            ("outcome", text),
            ("model", text),
            ("snapshot_version", pa.int32()),
        ]
    )
    assert tuple(preference.names) == PREFERENCE_COLUMNS and tuple(unpaired.names) == UNPAIRED_COLUMNS
    return {"preference": preference, "unpaired": unpaired}


# --- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotOptions:
    """What goes into a snapshot. Defaults come from settings.CODEPREF["SNAPSHOT_*"]."""

    min_votes: int
    min_agreement: float
    drop_ties: bool
    exclude_open_flags: bool
    only_decided_by_tests: bool
    only_human_decided: bool
    test_fraction: float

    @classmethod
    def defaults(cls) -> SnapshotOptions:
        conf = settings.CODEPREF
        return cls(
            min_votes=int(conf.get("SNAPSHOT_MIN_VOTES", 1)),
            min_agreement=float(conf.get("SNAPSHOT_MIN_AGREEMENT", 0.0)),
            drop_ties=bool(conf.get("SNAPSHOT_DROP_TIES", True)),
            exclude_open_flags=bool(conf.get("SNAPSHOT_EXCLUDE_OPEN_FLAGS", False)),
            only_decided_by_tests=False,
            only_human_decided=False,
            test_fraction=float(conf.get("SNAPSHOT_TEST_FRACTION", 0.1)),
        )

    @classmethod
    def from_request(cls, data: Mapping | None) -> SnapshotOptions:
        """Defaults overridden by ``data``; raises ServiceError naming the bad option."""
        values = asdict(cls.defaults())
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ServiceError("filters must be an object")
        unknown = sorted(set(data) - set(values))
        if unknown:
            raise ServiceError(f"unknown filter {unknown[0]!r}; known: {', '.join(sorted(values))}")
        for name, raw in data.items():
            if raw is None:
                continue
            default = values[name]
            if isinstance(default, bool):
                if not isinstance(raw, bool):
                    raise ServiceError(f"{name} must be true or false")
                values[name] = raw
            elif isinstance(default, int):
                if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                    raise ServiceError(f"{name} must be a whole number >= 0")
                values[name] = raw
            else:
                if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0.0 <= float(raw) <= 1.0:
                    raise ServiceError(f"{name} must be a number from 0 to 1")
                values[name] = float(raw)
        options = cls(**values)
        if options.only_decided_by_tests and options.only_human_decided:
            raise ServiceError("only_decided_by_tests and only_human_decided exclude each other")
        return options

    def as_dict(self) -> dict:
        return asdict(self)


def split_of(content_hash: str, *, test_fraction: float, salt: str | None = None) -> str:
    """ "train" or "test" for a prompt, from its content hash: stable across snapshots and machines."""
    salt = settings.CODEPREF.get("SNAPSHOT_SPLIT_SALT", "codepref-split-v1") if salt is None else salt
    digest = hashlib.sha256(f"{salt}:{content_hash}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") < test_fraction * 2.0**64 else "train"


def slot_for(kind: str, now: datetime | None = None) -> str:
    """The schedule slot a beat run belongs to: "hourly" -> "hourly:2026-11-27T14"; a full slot stays as is."""
    if ":" in kind:
        return kind
    now = timezone.now() if now is None else now
    if kind == "hourly":
        return f"hourly:{now:%Y-%m-%dT%H}"
    if kind == "daily":
        return f"daily:{now:%Y-%m-%d}"
    raise ServiceError(f"slot must be 'hourly', 'daily' or 'kind:key'; got {kind!r}")


# --- claiming -----------------------------------------------------------------------------------


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


def _vote_watermark() -> tuple[int, int]:
    """(highest vote id, number of votes up to it): a snapshot with the same pair saw the same votes."""
    top = Vote.objects.aggregate(top=Max("id"))["top"] or 0
    return top, Vote.objects.filter(id__lte=top).count() if top else 0


def _next_version() -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_CLASS, _VERSION_LOCK])
    return (DatasetSnapshot.objects.aggregate(top=Max("version"))["top"] or 0) + 1


def _create(*, options: SnapshotOptions, slot: str | None, task_id: str, requested_by=None) -> DatasetSnapshot | None:
    """A new BUILDING row with the next version, or None if ``slot`` is already taken."""
    last_vote_id, vote_count = _vote_watermark()
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


def snapshot_request(*, filters: Mapping | None = None, requested_by=None) -> DatasetSnapshot:
    """A maintainer asks for a snapshot: the row (and its version) now, the build on a worker after commit."""
    options = SnapshotOptions.from_request(filters)
    snapshot = _create(options=options, slot=None, task_id=str(uuid.uuid4()), requested_by=requested_by)

    def not_queued(exc: Exception) -> None:
        # The broker is down: say so on the row rather than leave it waiting forever.
        DatasetSnapshot.objects.filter(pk=snapshot.pk, state=DatasetSnapshot.State.BUILDING).update(
            state=DatasetSnapshot.State.FAILED,
            error=f"could not be queued ({type(exc).__name__}: {exc}); ask again",
        )

    dispatch.enqueue(
        "feedback.tasks.build_snapshot", snapshot_id=snapshot.pk, task_id=snapshot.task_id, on_error=not_queued
    )
    return snapshot


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


def _unchanged_since_last(options: SnapshotOptions) -> DatasetSnapshot | None:
    """The newest published snapshot with these filters, if no vote was added or removed since it."""
    wanted = options.as_dict()
    published = DatasetSnapshot.objects.filter(state=DatasetSnapshot.State.PUBLISHED).order_by("-version")
    previous = next(
        (s for s in published.only("version", "filters", "last_vote_id", "counts")[:20] if s.filters == wanted), None
    )
    if previous is None:
        return None
    top, count = _vote_watermark()
    if top == previous.last_vote_id and count == previous.counts.get("source_votes"):
        return DatasetSnapshot.objects.get(pk=previous.pk)
    return None


class _Lock:
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
    snapshot = None
    if snapshot_id is not None:
        snapshot = DatasetSnapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            raise ServiceError(f"snapshot {snapshot_id} does not exist")
    elif task_id:
        # A redelivered or retried task finds the row its first delivery claimed.
        snapshot = DatasetSnapshot.objects.filter(task_id=task_id).first()
    if snapshot is None:
        options = SnapshotOptions.from_request(filters)
        if slot is not None:
            slot = slot_for(slot)
            snapshot = DatasetSnapshot.objects.filter(slot=slot).first()
            if snapshot is None:
                previous = _unchanged_since_last(options)
                if previous is not None:
                    log.info("snapshot %s: no votes added or removed since v%s; not rebuilt", slot, previous.version)
                    return BuildResult(previous, skipped=True, reason=f"no new votes since v{previous.version}")
                snapshot = _create(options=options, slot=slot, task_id=task_id, requested_by=requested_by)
                if snapshot is None:  # another beat or delivery claimed the slot first
                    snapshot = DatasetSnapshot.objects.get(slot=slot)
        else:
            snapshot = _create(options=options, slot=None, task_id=task_id, requested_by=requested_by)

    if snapshot.state != DatasetSnapshot.State.BUILDING:
        return BuildResult(snapshot, reason=f"already {snapshot.state}")
    lock = _Lock(snapshot.version)
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


# --- building -----------------------------------------------------------------------------------


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
    final = snapshot.path
    if final.exists():
        manifest = _read_manifest(final)
        if manifest is not None and manifest.get("build") == _build_id(snapshot):
            # A worker died between the rename and the publish: what is there is complete.
            _publish(snapshot, manifest)
            return
        # Not this row's build (a database restored or reset under an old folder): keep it, out of the way.
        aside = root / f".orphan-{snapshot.version}-{uuid.uuid4().hex[:8]}"
        log.warning("snapshot folder %s does not belong to snapshot v%s; moved to %s", final, snapshot.version, aside)
        os.rename(final, aside)
    for stale in root.glob(f".building-{snapshot.version}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a dead attempt's half folder (we hold the lock)
    options = SnapshotOptions.from_request(snapshot.filters)
    progress = _Progress(snapshot.pk, on_progress)
    tmp = root / f".building-{snapshot.version}-{uuid.uuid4().hex[:8]}"
    try:
        stats = snapshot_files_write(
            folder=tmp,
            version=snapshot.version,
            options=options,
            last_vote_id=snapshot.last_vote_id,
            progress=progress,
        )
        manifest = _manifest(tmp, snapshot, options, stats)
        _card(tmp, snapshot, options, stats, manifest)
        manifest["files"] = _file_list(tmp, stats["hashes"])
        _write_bytes(tmp / "manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        _fsync_tree(tmp)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_transient(exc):
            DatasetSnapshot.objects.filter(pk=snapshot.pk, state=DatasetSnapshot.State.BUILDING).update(
                state=DatasetSnapshot.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000]
            )
        raise
    _publish(snapshot, manifest)


def _build_id(snapshot: DatasetSnapshot) -> str:
    """Names the row a folder was built for: its version alone is not enough if the database was reset."""
    return f"{snapshot.pk}:{snapshot.created_at.isoformat()}"


def _read_manifest(folder: Path) -> dict | None:
    try:
        return orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def _is_transient(exc: BaseException) -> bool:
    from django.db import InterfaceError, OperationalError

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


# --- reading ------------------------------------------------------------------------------------


class _Reader:
    """A database connection for the long read, apart from the one that reports progress.

    Inside an outer transaction (a test without ``transaction=True``) it reads through that one instead,
    since a second connection would not see its rows.
    """

    def __init__(self) -> None:
        self.owned = not connection.in_atomic_block
        # The wrapper object itself, not the thread-local proxy: the prefetch thread reads through it too.
        self.db = connections.create_connection(DEFAULT_DB_ALIAS) if self.owned else connections[DEFAULT_DB_ALIAS]
        self.postgres = self.db.vendor == "postgresql"
        self.table = f"snapshot_pairs_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> _Reader:
        self.db.ensure_connection()
        if self.owned:
            self.db.set_autocommit(False)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            with self.db.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            if self.owned:
                self.db.rollback()  # nothing here is meant to be kept
        finally:
            if self.owned:
                self.db.close()

    def execute(self, sql: str, params=()) -> None:
        with self.db.cursor() as cursor:
            cursor.execute(sql, params)

    def batches(self, sql: str, params=(), *, name: str = "snapshot_rows") -> Iterator[list[tuple]]:
        """Stream a query's rows in chunks: a server-side cursor on PostgreSQL, fetchmany elsewhere.

        On PostgreSQL a thread fetches the next chunk while the caller works on this one, so the database
        and Python work at once. Other statements may run on this connection between chunks.
        """
        if self.postgres:
            yield from _prefetched(self._server_batches(sql, params, name))
        else:
            with self.db.cursor() as cursor:
                cursor.execute(sql, params)
                while batch := cursor.fetchmany(FETCH_ROWS):
                    yield batch

    def _server_batches(self, sql: str, params, name: str) -> Iterator[list[tuple]]:
        with self.db.connection.cursor(name=f"{name}_{uuid.uuid4().hex[:8]}") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(FETCH_ROWS):
                yield batch

    def rows(self, sql: str, params=(), *, name: str = "snapshot_rows") -> Iterator[tuple]:
        for batch in self.batches(sql, params, name=name):
            yield from batch

    def create_pairs_table(self) -> None:
        self.execute(
            f"CREATE TEMPORARY TABLE {self.table} (pair_id bigint PRIMARY KEY, prompt_id bigint NOT NULL, "
            "label varchar(16) NOT NULL, votes integer NOT NULL, margin double precision NOT NULL, "
            "agreement double precision NOT NULL)"
        )

    def insert_pairs(self, rows: list[tuple]) -> None:
        """Add kept pairs to the temporary table (COPY on PostgreSQL)."""
        if not rows:
            return
        if self.postgres:
            # COPY's text format written directly: the values are numbers and fixed label names.
            data = "".join([f"{a}\t{b}\t{c}\t{d}\t{e!r}\t{f!r}\n" for a, b, c, d, e, f in rows]).encode()
            with self.db.connection.cursor() as cursor:
                with cursor.copy(
                    f"COPY {self.table} (pair_id, prompt_id, label, votes, margin, agreement) FROM STDIN"
                ) as copy:
                    copy.write(data)
        else:
            with self.db.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {self.table} VALUES (%s, %s, %s, %s, %s, %s)", rows)

    def index_pairs(self) -> None:
        self.execute(f"CREATE INDEX {self.table}_order ON {self.table} (prompt_id, pair_id)")
        if self.postgres:
            self.execute(f"ANALYZE {self.table}")


def _prefetched(batches: Iterator[list[tuple]], depth: int = 2) -> Iterator[list[tuple]]:
    """The same chunks, produced by a thread up to ``depth`` ahead of the consumer."""
    chunks: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        chunks.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer
            failure.append(exc)
        finally:
            batches.close()
            while not stop.is_set():
                try:
                    chunks.put(end, timeout=0.2)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=produce, name="snapshot-prefetch", daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not end:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        thread.join()


def _tables() -> dict[str, str]:
    return {
        "vote": Vote._meta.db_table,
        "pair": Pair._meta.db_table,
        "prompt": Prompt._meta.db_table,
        "completion": Completion._meta.db_table,
        "volunteer": Volunteer._meta.db_table,
        "flag": Flag._meta.db_table,
    }


def _pairs_sql(options: SnapshotOptions, *, postgres: bool) -> tuple[str, list]:
    """Every pair with votes (up to the watermark) that passes the database-side filters, with its texts and
    per-choice vote weights and counts, in (prompt, pair) order."""
    t = _tables()
    flag_states = [Flag.State.UPHELD] + ([Flag.State.OPEN] if options.exclude_open_flags else [])
    states = ", ".join(f"'{state}'" for state in flag_states)  # fixed choice values, not input
    where = [
        f"p.state <> '{Pair.State.RETIRED}'",
        # A flag targets its pair if it names one, else its completion, else its prompt.
        f"p.id NOT IN (SELECT f.pair_id FROM {t['flag']} f WHERE f.pair_id IS NOT NULL AND f.state IN ({states}))",
        f"""p.prompt_id NOT IN (SELECT f.prompt_id FROM {t["flag"]} f WHERE f.pair_id IS NULL
            AND f.completion_id IS NULL AND f.prompt_id IS NOT NULL AND f.state IN ({states}))""",
        f"""p.completion_a_id NOT IN (SELECT f.completion_id FROM {t["flag"]} f WHERE f.pair_id IS NULL
            AND f.completion_id IS NOT NULL AND f.state IN ({states}))""",
        f"""p.completion_b_id NOT IN (SELECT f.completion_id FROM {t["flag"]} f WHERE f.pair_id IS NULL
            AND f.completion_id IS NOT NULL AND f.state IN ({states}))""",
    ]
    params: list = []
    if options.only_decided_by_tests:
        where.append("p.decided_by_tests = %s")
        params.append(True)
    if options.only_human_decided:
        where.append("p.decided_by_tests = %s")
        params.append(False)
    weight = "COALESCE(vol.trust, 1.0)"
    sums = f"""COUNT(*) AS n,
            SUM(CASE WHEN v.choice = 'a' THEN {weight} ELSE 0.0 END) AS w_a,
            SUM(CASE WHEN v.choice = 'b' THEN {weight} ELSE 0.0 END) AS w_b,
            SUM(CASE WHEN v.choice = 'tie' THEN {weight} ELSE 0.0 END) AS w_tie,
            SUM(CASE WHEN v.choice = 'both_bad' THEN {weight} ELSE 0.0 END) AS w_bad,
            SUM(CASE WHEN v.choice = 'a' THEN 1 ELSE 0 END) AS n_a,
            SUM(CASE WHEN v.choice = 'b' THEN 1 ELSE 0 END) AS n_b,
            SUM(CASE WHEN v.choice = 'tie' THEN 1 ELSE 0 END) AS n_tie,
            SUM(CASE WHEN v.choice = 'both_bad' THEN 1 ELSE 0 END) AS n_bad"""
    votes = f"{t['vote']} v LEFT JOIN {t['volunteer']} vol ON vol.user_id = v.volunteer_id"
    if postgres:
        # Per pair, its few votes through the vote(pair_id) index: rows stream in order from the first one.
        aggregate = f"""JOIN LATERAL (SELECT {sums} FROM {votes} WHERE v.pair_id = p.id AND v.id <= %s
            GROUP BY v.pair_id) agg ON true"""
    else:
        aggregate = f"""JOIN (SELECT v.pair_id, {sums} FROM {votes} WHERE v.id <= %s GROUP BY v.pair_id) agg
            ON agg.pair_id = p.id"""
    sql = f"""
        SELECT p.id, p.prompt_id, pr.text, pr.language, pr.content_hash, p.completion_a_id, p.completion_b_id,
            p.decided_by_tests, ca.text, cb.text, ca.outcome, cb.outcome, ca.model_version_id, cb.model_version_id,
            agg.n, agg.w_a, agg.w_b, agg.w_tie, agg.w_bad, agg.n_a, agg.n_b, agg.n_tie, agg.n_bad
        FROM {t["pair"]} p
        JOIN {t["prompt"]} pr ON pr.id = p.prompt_id
        JOIN {t["completion"]} ca ON ca.id = p.completion_a_id
        JOIN {t["completion"]} cb ON cb.id = p.completion_b_id
        {aggregate}
        WHERE {" AND ".join(where)}
        ORDER BY p.prompt_id, p.id
    """
    return sql, params


# --- writing ------------------------------------------------------------------------------------


class _JsonlWriter:
    """Lines appended to one growing buffer, written in chunks; its sha256 computed on the way out.

    Each line is copied into the buffer at once: orjson's result keeps a few KB of spare capacity, so
    holding thousands of short lines as separate objects would cost many times their length.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 (closed in close())
        self.digest = hashlib.sha256()
        self.buffer = bytearray()
        self.rows = 0

    def write(self, line: bytes) -> None:
        self.buffer += line
        self.rows += 1
        if len(self.buffer) >= JSONL_FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.file.write(self.buffer)
            self.digest.update(self.buffer)
            self.buffer.clear()

    def close(self) -> str:
        self.flush()
        self.file.close()
        return self.digest.hexdigest()


class _ParquetWriter:
    def __init__(self, path: Path, schema) -> None:
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        self.rows: list[tuple] = []
        self.count = 0

    def write(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        arrays = [pa.array(column, type=spec.type) for column, spec in zip(columns, self.schema, strict=True)]
        self.writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.count += len(self.rows)
        self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


@dataclass
class _Outputs:
    """The open files of one snapshot, by part and split."""

    folder: Path
    parts: tuple[str, ...]
    formats: tuple[str, ...]
    jsonl: dict = field(default_factory=dict)
    parquet: dict = field(default_factory=dict)
    hashes: dict = field(default_factory=dict)
    rows: Counter = field(default_factory=Counter)

    def open(self) -> _Outputs:
        schemas = _schemas() if "parquet" in self.formats or "hf" in self.formats else {}
        for part in self.parts:
            for split in SPLITS:
                if "jsonl" in self.formats or part in ("prompts", "votes"):
                    self.jsonl[part, split] = _JsonlWriter(self.folder / part / f"{split}.jsonl")
                if part in schemas:
                    self.parquet[part, split] = _ParquetWriter(self.folder / part / f"{split}.parquet", schemas[part])
        return self

    def close(self) -> None:
        for (part, split), writer in self.jsonl.items():
            self.hashes[f"{part}/{split}.jsonl"] = writer.close()
            self.rows[f"{part}_{split}"] = writer.rows
        for (part, split), writer in self.parquet.items():
            writer.close()
            self.rows[f"{part}_{split}"] = writer.count


def snapshot_files_write(
    *,
    folder: Path,
    version: int,
    options: SnapshotOptions,
    last_vote_id: int,
    parts: tuple[str, ...] = PARTS,
    formats: tuple[str, ...] = FORMATS,
    progress: Callable[..., None] | None = None,
) -> dict:
    """Write one snapshot's files into ``folder`` (which must not exist); returns counts and statistics.

    Reads only committed rows with vote ids up to ``last_vote_id``; the same database state and
    options give byte-identical JSONL files.
    """
    progress = progress or (lambda *args, **kwargs: None)
    folder.mkdir(parents=True)
    pause = float(settings.CODEPREF.get("SNAPSHOT_PAUSE_SECONDS", 0) or 0)
    stats: dict = {"dropped": Counter(), "labels": Counter()}
    outputs = _Outputs(folder, tuple(parts), tuple(formats))
    with _Reader() as reader, Masker() as masker:
        progress(0.01, "starting", force=True)
        timings = stats["seconds"] = {}
        outputs.open()
        try:
            started = time.perf_counter()
            _write_pairs(reader, outputs, masker, options, version, last_vote_id, stats, progress, pause)
            timings["pairs"] = time.perf_counter() - started
            if "prompts" in parts:
                progress(0.8, "prompts", force=True)
                started = time.perf_counter()
                _write_prompts(reader, outputs, masker, options)
                timings["prompts"] = time.perf_counter() - started
            if "votes" in parts:
                progress(0.85, "votes", force=True)
                started = time.perf_counter()
                _write_votes(reader, outputs, options, last_vote_id)
                timings["votes"] = time.perf_counter() - started
        finally:
            started = time.perf_counter()
            outputs.close()
            timings["close"] = time.perf_counter() - started
        stats["masking"] = masker.summary()
    if "hf" in formats:
        progress(0.9, "datasets", force=True)
        started = time.perf_counter()
        _write_hf(folder, [part for part in ("preference", "unpaired") if part in parts], version)
        stats["seconds"]["hf"] = time.perf_counter() - started
    stats["rows"] = dict(outputs.rows)
    stats["hashes"] = outputs.hashes
    stats["dropped"] = dict(stats["dropped"])
    stats["labels"] = dict(stats["labels"])
    return stats


def _write_pairs(reader, outputs: _Outputs, masker: Masker, options, version, last_vote_id, stats, progress, pause):
    """The hot loop of an export: one pass over the pairs in (prompt, pair) order, no per-row queries.

    Labels each pair (feedback.aggregation), applies the vote filters, counts agreement, and writes the
    preference and unpaired rows; the kept pairs go to the reader's temporary table for the later parts.
    """
    models = dict(ModelVersion.objects.values_list("id", "name"))
    total = Pair.objects.filter(votes_count__gt=0).count() or 1  # for progress only
    keep_table = "prompts" in outputs.parts or "votes" in outputs.parts
    if keep_table:
        reader.create_pairs_table()
    if reader.postgres:
        # The planner would hash-join and sort ~2 KB rows (spilling to disk on a big snapshot); index
        # lookups in (prompt, pair) order stream with constant memory and hand over the first row at once.
        for setting in ("enable_hashjoin", "enable_mergejoin", "enable_material", "jit"):
            reader.execute(f"SET LOCAL {setting} = off")
    sql, params = _pairs_sql(options, postgres=reader.postgres)
    counter = AgreementCounter()
    dropped, labels = stats["dropped"], stats["labels"]
    considered = 0
    agreement_sum = 0.0
    min_votes, min_agreement = options.min_votes, options.min_agreement - 1e-12
    preference = "preference" in outputs.parts
    unpaired = "unpaired" in outputs.parts
    pref_jsonl = {split: outputs.jsonl.get(("preference", split)) for split in SPLITS}
    pref_parquet = {split: outputs.parquet.get(("preference", split)) for split in SPLITS}
    unp_jsonl = {split: outputs.jsonl.get(("unpaired", split)) for split in SPLITS}
    unp_parquet = {split: outputs.parquet.get(("unpaired", split)) for split in SPLITS}
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    fraction, drop_ties, salt = options.test_fraction, options.drop_ties, settings.CODEPREF.get("SNAPSHOT_SPLIT_SALT")
    mask = masker.mask
    current_prompt = None
    prompt_text = split = ""
    p_jsonl = p_parquet = u_jsonl = u_parquet = None
    masked: dict[int, str] = {}  # completions of the current prompt (a completion is in several pairs)
    for batch in reader.batches(sql, [last_vote_id, *params], name="snapshot_pairs"):
        kept_rows = []
        for row in batch:
            (pair_id, prompt_id, raw_prompt, language, chash, a_id, b_id, by_tests, a_raw, b_raw, a_outcome,
             b_outcome, a_model, b_model, votes, w_a, w_b, w_tie, w_bad, n_a, n_b, n_tie, n_bad) = row  # fmt: skip
            considered += 1
            if votes < min_votes:
                dropped["min_votes"] += 1
                continue
            counter.add(n_a, n_b, n_tie, n_bad)
            result = label_pair(w_a, w_b, w_tie, w_bad, votes)
            if result is None:
                dropped["no_weight"] += 1
                continue
            label, margin, agreement = result.label, result.margin, result.agreement
            if agreement < min_agreement:
                dropped["min_agreement"] += 1
                continue
            labels[label] += 1
            agreement_sum += agreement
            if keep_table:
                kept_rows.append((pair_id, prompt_id, label, votes, margin, agreement))
            if prompt_id != current_prompt:
                current_prompt = prompt_id
                prompt_text = mask(raw_prompt)
                split = split_of(chash, test_fraction=fraction, salt=salt)
                p_jsonl, p_parquet = pref_jsonl[split], pref_parquet[split]
                u_jsonl, u_parquet = unp_jsonl[split], unp_parquet[split]
                masked.clear()
            a_text = masked.get(a_id)
            if a_text is None:
                a_text = masked[a_id] = mask(a_raw)
            b_text = masked.get(b_id)
            if b_text is None:
                b_text = masked[b_id] = mask(b_raw)
            a_model, b_model, by_tests = models.get(a_model, ""), models.get(b_model, ""), bool(by_tests)
            if label == "b":  # the chosen column holds the completion the majority preferred
                chosen, rejected, kind = b_text, a_text, "preferred"
                chosen_outcome, rejected_outcome, chosen_model, rejected_model = b_outcome, a_outcome, b_model, a_model
            else:
                chosen, rejected, kind = a_text, b_text, "preferred" if label == "a" else label
                chosen_outcome, rejected_outcome, chosen_model, rejected_model = a_outcome, b_outcome, a_model, b_model
            if preference and (kind == "preferred" or not drop_ties):
                if p_jsonl is not None:
                    p_jsonl.write(
                        dumps(
                            {
                                "prompt": prompt_text,
                                "chosen": chosen,
                                "rejected": rejected,
                                "pair_id": pair_id,
                                "prompt_id": prompt_id,
                                "language": language,
                                "votes": votes,
                                "margin": margin,
                                "agreement": agreement,
                                "chosen_outcome": chosen_outcome,
                                "rejected_outcome": rejected_outcome,
                                "chosen_model": chosen_model,
                                "rejected_model": rejected_model,
                                "snapshot_version": version,
                                "label": kind,
                                "decided_by_tests": by_tests,
                            },
                            option=newline,
                        )
                    )
                if p_parquet is not None:
                    p_parquet.write(
                        (prompt_text, chosen, rejected, pair_id, prompt_id, language, votes, margin, agreement,
                         chosen_outcome, rejected_outcome, chosen_model, rejected_model, version, kind, by_tests)
                    )  # fmt: skip
            if unpaired and label != "tie":
                # KTO: the preferred completion is desirable, the other not; both-bad gives two undesirable
                # examples; a tie says neither is better, not whether either is good, so it gives none.
                good = label != "both_bad"
                for completion, desirable, outcome, model in (
                    (chosen, good, chosen_outcome, chosen_model),
                    (rejected, False, rejected_outcome, rejected_model),
                ):
                    if u_jsonl is not None:
                        u_jsonl.write(
                            dumps(
                                {
                                    "prompt": prompt_text,
                                    "completion": completion,
                                    "label": desirable,
                                    "pair_id": pair_id,
                                    "prompt_id": prompt_id,
                                    "language": language,
                                    "outcome": outcome,
                                    "model": model,
                                    "snapshot_version": version,
                                },
                                option=newline,
                            )
                        )
                    if u_parquet is not None:
                        u_parquet.write(
                            (prompt_text, completion, desirable, pair_id, prompt_id, language, outcome, model, version)
                        )
        if kept_rows:
            reader.insert_pairs(kept_rows)
        if pause and considered:
            progress(0.8 * considered / total, "writing", force=True)
            time.sleep(pause)  # tests: a moment to kill the worker in the middle of a build
            pause = 0
        progress(0.8 * min(considered / total, 1.0), "writing")
    if keep_table:
        reader.index_pairs()
    kept = sum(labels.values())
    stats["pairs_considered"] = considered
    stats["pairs_kept"] = kept
    stats["agreement"] = {
        "krippendorff_alpha": counter.alpha(),
        "alpha_units": counter.pairable_units,
        "mean_pair_agreement": agreement_sum / kept if kept else None,
    }


def _write_prompts(reader, outputs: _Outputs, masker: Masker, options) -> None:
    t = _tables()
    writers = {split: outputs.jsonl[("prompts", split)] for split in SPLITS}
    salt = settings.CODEPREF.get("SNAPSHOT_SPLIT_SALT")
    sql = f"""
        SELECT pr.id, pr.text, pr.language, pr.tests, pr.test_style, pr.entry_point, pr.reference_solution,
            pr.content_hash
        FROM {t["prompt"]} pr
        WHERE pr.id IN (SELECT DISTINCT prompt_id FROM {reader.table})
        ORDER BY pr.id
    """
    for prompt_id, text, language, tests, style, entry_point, reference, chash in reader.rows(sql, name="prompts"):
        split = split_of(chash, test_fraction=options.test_fraction, salt=salt)
        # Tests stay verbatim: masking them would change what they check.
        # The prompt's text was masked (and counted) in the pairs pass already.
        values = (
            prompt_id,
            masker.mask(text, count=False),
            language,
            tests,
            style,
            entry_point,
            masker.mask(reference),
        )
        writers[split].write(
            orjson.dumps(dict(zip(PROMPT_COLUMNS, values, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
        )


def _write_votes(reader, outputs: _Outputs, options, last_vote_id: int) -> None:
    t = _tables()
    writers = {split: outputs.jsonl[("votes", split)] for split in SPLITS}
    salt = settings.CODEPREF.get("SNAPSHOT_SPLIT_SALT")
    sql = f"""
        SELECT s.pair_id, s.prompt_id, s.label, v.volunteer_id, v.choice, v.left_is_a, v.time_taken_ms,
            COALESCE(vol.trust, 1.0), pr.content_hash
        FROM {reader.table} s
        JOIN {t["vote"]} v ON v.pair_id = s.pair_id
        JOIN {t["prompt"]} pr ON pr.id = s.prompt_id
        LEFT JOIN {t["volunteer"]} vol ON vol.user_id = v.volunteer_id
        WHERE v.id <= %s
        ORDER BY s.prompt_id, s.pair_id, v.id
    """
    names: dict[int, str] = {}
    splits: dict[str, str] = {}
    for pair_id, prompt_id, label, user_id, choice, left_is_a, taken, weight, chash in reader.rows(
        sql, [last_vote_id], name="votes"
    ):
        annotator = names.get(user_id)
        if annotator is None:
            annotator = names[user_id] = pseudonym(user_id)
        split = splits.get(chash)
        if split is None:
            if len(splits) > 10_000:
                splits.clear()
            split = splits[chash] = split_of(chash, test_fraction=options.test_fraction, salt=salt)
        # In the exported pair's terms: "chosen" is the completion in its chosen column (A unless B won).
        a_role, b_role = ("rejected", "chosen") if label == "b" else ("chosen", "rejected")
        relative = {"a": a_role, "b": b_role}.get(choice, choice)
        values = (pair_id, prompt_id, annotator, relative, a_role if left_is_a else b_role, float(weight), taken)
        writers[split].write(
            orjson.dumps(dict(zip(VOTE_COLUMNS, values, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
        )


def _write_hf(folder: Path, parts: list[str], version: int) -> None:
    """``datasets`` folders (what ``DatasetDict.save_to_disk`` writes), streamed from the Parquet files.

    ``Dataset.from_parquet`` + ``save_to_disk`` would copy each table through a memory-mapped cache file, and
    every page it touches counts as resident: 2 GB at a million pairs. Here record batches go one at a time
    from the Parquet file into datasets' own ``ArrowWriter``, and the two small JSON files beside the data are
    those ``save_to_disk`` writes, so ``datasets.load_from_disk`` reads the result as its own.
    """
    from dataclasses import asdict as dataclass_fields

    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.arrow_writer import ArrowWriter

    for part in parts:
        root = folder / "hf" / part
        for split in SPLITS:
            target = root / split
            target.mkdir(parents=True)
            source = pq.ParquetFile(folder / part / f"{split}.parquet")
            features = datasets.Features.from_arrow_schema(source.schema_arrow)
            writer = ArrowWriter(features=features, path=str(target / "data-00000-of-00001.arrow"))
            try:
                for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
                    writer.write_table(pa.Table.from_batches([batch]))
                writer.finalize()
            finally:
                writer.close()
            state = {
                "_data_files": [{"filename": "data-00000-of-00001.arrow"}],
                "_fingerprint": hashlib.sha256(f"codepref:{version}:{part}:{split}".encode()).hexdigest()[:16],
                "_format_columns": None,
                "_format_kwargs": {},
                "_format_type": None,
                "_output_all_columns": False,
                "_split": split,
            }
            _write_bytes(target / "state.json", orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            info = dataclass_fields(datasets.DatasetInfo(features=features))
            _write_bytes(target / "dataset_info.json", orjson.dumps({key: info[key] for key in sorted(info)}))
        _write_bytes(root / "dataset_dict.json", orjson.dumps({"splits": list(SPLITS)}))


# --- the card and the manifest ------------------------------------------------------------------


def code_version() -> str:
    """The git revision of the code that built the snapshot, else the package version."""
    base = Path(settings.BASE_DIR)
    try:
        result = subprocess.run(
            ["git", "-C", str(base), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            return f"git:{result.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import tomllib

        return "codepref " + tomllib.loads((base / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "codepref (unknown version)"


def _manifest(folder: Path, snapshot: DatasetSnapshot, options: SnapshotOptions, stats: dict) -> dict:
    rows = stats["rows"]
    counts = {
        **{f"{key}": value for key, value in sorted(rows.items())},
        "pairs_considered": stats["pairs_considered"],
        "pairs_kept": stats["pairs_kept"],
        "labels": stats["labels"],
        "dropped": stats["dropped"],
        "source_votes": snapshot.counts.get("source_votes"),
    }
    return {
        "snapshot_version": snapshot.version,
        "build": _build_id(snapshot),
        "created_at": timezone.now().isoformat(),
        "code_version": code_version(),
        "last_vote_id": snapshot.last_vote_id,
        "filters": options.as_dict(),
        "split": {"by": "prompt content hash", "test_fraction": options.test_fraction},
        "counts": counts,
        "agreement": stats["agreement"],
        "secrets": stats["masking"],
        "licence": settings.CODEPREF["CONTRIBUTION_LICENCE"],
    }


def _file_list(folder: Path, hashes: dict[str, str]) -> dict:
    files = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == "manifest.json":
            continue
        name = path.relative_to(folder).as_posix()
        files[name] = {"bytes": path.stat().st_size, "sha256": hashes.get(name) or _sha256(path)}
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _card(folder: Path, snapshot: DatasetSnapshot, options: SnapshotOptions, stats: dict, manifest: dict) -> None:
    from django.template.loader import render_to_string

    rows = stats["rows"]
    licence = settings.CODEPREF["CONTRIBUTION_LICENCE"]
    configs = []
    for part in PARTS:
        # datasets refuses a config split whose file is empty: list only the splits that have rows.
        splits = [(split, f"{part}/{split}.jsonl") for split in SPLITS if rows.get(f"{part}_{split}")]
        if splits:
            configs.append({"name": part, "splits": splits})
    alpha = stats["agreement"]["krippendorff_alpha"]
    mean = stats["agreement"]["mean_pair_agreement"]
    total = rows.get("preference_train", 0) + rows.get("preference_test", 0)
    size_category = next(
        name
        for bound, name in (
            (1e3, "n<1K"),
            (1e4, "1K<n<10K"),
            (1e5, "10K<n<100K"),
            (1e6, "100K<n<1M"),
            (1e7, "1M<n<10M"),
        )
        + ((float("inf"), "n>10M"),)
        if total < bound
    )
    text = render_to_string(
        "feedback/dataset_card.md",
        {
            "version": snapshot.version,
            "size_category": size_category,
            "licence": licence.lower(),
            "licence_name": licence,
            "licence_url": settings.CODEPREF.get("CONTRIBUTION_LICENCE_URL", ""),
            "configs": configs,
            "rows": rows,
            "counts": manifest["counts"],
            "alpha": "n/a (undefined: fewer than two votes per pair, or every vote the same)"
            if alpha is None
            else f"{alpha:.3f}",
            "alpha_units": stats["agreement"]["alpha_units"],
            "mean_agreement": "n/a" if mean is None else f"{mean:.3f}",
            "filters": options.as_dict(),
            "masking": stats["masking"],
            "code_version": manifest["code_version"],
            "created_at": manifest["created_at"],
            "last_vote_id": snapshot.last_vote_id,
        },
    )
    _write_bytes(folder / "README.md", text.encode("utf-8"))


# --- files on disk ------------------------------------------------------------------------------


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def snapshot_file_path(snapshot: DatasetSnapshot, name: str) -> Path | None:
    """The file ``name`` of a published snapshot, only if its manifest lists it (no path tricks)."""
    if snapshot.state != DatasetSnapshot.State.PUBLISHED:
        return None
    if name != "manifest.json" and name not in (snapshot.files or {}):  # the manifest lists all but itself
        return None
    root = snapshot.path.resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def snapshot_summary(snapshot: DatasetSnapshot) -> dict:
    counts = snapshot.counts or {}
    return {key: counts.get(key, 0) for key in (f"{part}_{split}" for part in PARTS for split in SPLITS)}


def snapshots_stats() -> dict:
    return dict(DatasetSnapshot.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
