"""Reading a snapshot's rows: its own database connection, server-side cursors, a prefetch thread, and the SQL.

Memory stays flat however many pairs there are: rows stream through a server-side cursor (PostgreSQL) in
(prompt, pair) order, a chunk at a time, while a thread fetches the next chunk; the kept pairs' labels go to
a temporary table that the prompts and votes queries join.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

from feedback.models import Completion, Flag, Pair, Prompt, Volunteer, Vote

from .options import SnapshotOptions

FETCH_ROWS = 2000


class Reader:
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

    def __enter__(self) -> Reader:
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

    def stream_in_index_order(self) -> None:
        """Plan the pairs query as index lookups in (prompt, pair) order (PostgreSQL).

        The planner would hash-join and sort ~2 KB rows (spilling to disk on a big snapshot); index lookups in
        (prompt, pair) order stream with constant memory and hand over the first row at once.
        """
        if self.postgres:
            for setting in ("enable_hashjoin", "enable_mergejoin", "enable_material", "jit"):
                self.execute(f"SET LOCAL {setting} = off")

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

    def put(item) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for batch in batches:
                put(batch)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer
            failure.append(exc)
        finally:
            batches.close()
            put(end)

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


def vote_weight_sql(options: SnapshotOptions) -> tuple[str, str]:
    """(a vote's weight, the condition for a vote to count) as SQL over ``v`` (vote) and ``vol`` (volunteer).

    With quality control (the default) a vote weighs what quality control set on it (``qc_weight``: the voter's
    trust in the pair's language, down-weighted for anomaly flags, 0 while onboarding), or the voter's trust
    while not yet assessed; votes of volunteers whose trust is below ``QC_TRUST_THRESHOLD`` are left out.
    Without it every vote weighs 1. A suspended volunteer's votes are left out either way (nothing is deleted).
    """
    counts = "vol.suspended_at IS NULL"
    if not options.quality_control:
        return "CAST(1.0 AS DOUBLE PRECISION)", counts  # a float, as the trust column is (not a numeric)
    threshold = float(settings.CODEPREF["QC_TRUST_THRESHOLD"])  # a number from settings, not input
    return "COALESCE(v.qc_weight, vol.trust, 1.0)", f"{counts} AND COALESCE(vol.trust, 1.0) >= {threshold!r}"


def pairs_sql(options: SnapshotOptions, *, postgres: bool) -> tuple[str, list]:
    """Every pair with votes (up to the watermark, the first parameter) or a known answer (gold) that passes the
    database-side filters, with its texts and per-choice vote weights and counts, in (prompt, pair) order."""
    t = _tables()
    where, params = _pair_filters(options, t)
    weight, counts = vote_weight_sql(options)
    sums = f"""COUNT(*) AS n,
            SUM(CASE WHEN v.choice = 'a' THEN {weight} ELSE 0.0 END) AS w_a,
            SUM(CASE WHEN v.choice = 'b' THEN {weight} ELSE 0.0 END) AS w_b,
            SUM(CASE WHEN v.choice = 'tie' THEN {weight} ELSE 0.0 END) AS w_tie,
            SUM(CASE WHEN v.choice = 'both_bad' THEN {weight} ELSE 0.0 END) AS w_bad,
            SUM(CASE WHEN v.choice = 'a' THEN 1 ELSE 0 END) AS n_a,
            SUM(CASE WHEN v.choice = 'b' THEN 1 ELSE 0 END) AS n_b,
            SUM(CASE WHEN v.choice = 'tie' THEN 1 ELSE 0 END) AS n_tie,
            SUM(CASE WHEN v.choice = 'both_bad' THEN 1 ELSE 0 END) AS n_bad,
            {_rationales(postgres)} AS rationales"""
    votes = f"{t['vote']} v LEFT JOIN {t['volunteer']} vol ON vol.user_id = v.volunteer_id"
    if postgres:
        # Per pair, its few votes through the vote(pair_id) index: rows stream in order from the first one.
        aggregate = f"""LEFT JOIN LATERAL (SELECT {sums} FROM {votes} WHERE v.pair_id = p.id AND v.id <= %s
            AND {counts} GROUP BY v.pair_id) agg ON true"""
    else:
        aggregate = f"""LEFT JOIN (SELECT v.pair_id, {sums} FROM {votes} WHERE v.id <= %s AND {counts}
            GROUP BY v.pair_id) agg ON agg.pair_id = p.id"""
    # A gold pair is labelled by its known answer, with or without votes.
    where.append("(agg.n IS NOT NULL OR p.gold_choice <> '')")
    sql = f"""
        SELECT p.id, p.prompt_id, pr.text, pr.language, pr.content_hash, p.completion_a_id, p.completion_b_id,
            p.decided_by_tests, ca.text, cb.text, ca.outcome, cb.outcome, ca.model_version_id, cb.model_version_id,
            COALESCE(agg.n, 0), agg.w_a, agg.w_b, agg.w_tie, agg.w_bad, agg.n_a, agg.n_b, agg.n_tie, agg.n_bad,
            agg.rationales, p.gold_choice, p.gold_source, pr.suffix
        FROM {t["pair"]} p
        JOIN {t["prompt"]} pr ON pr.id = p.prompt_id
        JOIN {t["completion"]} ca ON ca.id = p.completion_a_id
        JOIN {t["completion"]} cb ON cb.id = p.completion_b_id
        {aggregate}
        WHERE {" AND ".join(where)}
        ORDER BY p.prompt_id, p.id
    """
    return sql, params


def _rationales(postgres: bool) -> str:
    """The pair's non-empty rationales in vote order: an array on PostgreSQL, a JSON array's text on SQLite."""
    if postgres:
        return "COALESCE(array_agg(v.rationale ORDER BY v.id) FILTER (WHERE v.rationale <> ''), '{}')"
    return "json_group_array(v.rationale) FILTER (WHERE v.rationale <> '')"


def _pair_filters(options: SnapshotOptions, t: dict[str, str]) -> tuple[list[str], list]:
    """The pairs query's WHERE terms and their parameters: not retired, no upheld (or, on request, open)
    report on the pair, its prompt or either completion, and decided by tests or by people if asked."""
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
    return where, params


def prompts_sql(pairs_table: str) -> str:
    """The prompts of the kept pairs (in the reader's temporary table), by id."""
    t = _tables()
    return f"""
        SELECT pr.id, pr.text, pr.language, pr.tests, pr.test_style, pr.entry_point, pr.reference_solution,
            pr.content_hash, pr.suffix
        FROM {t["prompt"]} pr
        WHERE pr.id IN (SELECT DISTINCT prompt_id FROM {pairs_table})
        ORDER BY pr.id
    """


def votes_sql(pairs_table: str, options: SnapshotOptions) -> str:
    """Every vote that counts (up to the watermark, the one parameter) on the kept pairs, with its weight."""
    t = _tables()
    weight, counts = vote_weight_sql(options)
    return f"""
        SELECT s.pair_id, s.prompt_id, s.label, v.volunteer_id, v.choice, v.left_is_a, v.time_taken_ms,
            {weight}, pr.content_hash, v.rationale
        FROM {pairs_table} s
        JOIN {t["vote"]} v ON v.pair_id = s.pair_id
        JOIN {t["prompt"]} pr ON pr.id = s.prompt_id
        LEFT JOIN {t["volunteer"]} vol ON vol.user_id = v.volunteer_id
        WHERE v.id <= %s AND {counts}
        ORDER BY s.prompt_id, s.pair_id, v.id
    """
