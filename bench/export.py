"""The snapshot exporter against a raw PostgreSQL COPY of the same rows, on a database of N aggregated pairs.

    python bench/export.py                    # 1,000,000 pairs (3 votes each), a few minutes
    python bench/export.py --rows 100000      # quicker
    python bench/export.py --full             # also time a whole snapshot (all files, hf folders, card)

It creates its own database (``--db``, default codepref_bench_export on the local server), migrates it,
fills it with SQL ``generate_series`` (prompts of ~350 bytes, completions of ~0.5-1 KB each, 3 votes per
pair from 200 volunteers with mixed trust; indexes are built after the load), then times:

- ``COPY (SELECT json_build_object(...)) TO STDOUT``: PostgreSQL alone writing the preference rows as
  JSON lines to a file (votes aggregated by GROUP BY, the same rows the exporter keeps), once in any
  order (parallel hash joins, no sort) and once in the exporter's (prompt, pair) order; ratios are
  against the faster of the two;
- the exporter writing the same rows as JSONL, then as Parquet (``feedback.datasets.rows.snapshot_files_write``:
  aggregation with trust weights, filters, prompt split, secret masking, streaming writers), each in a
  child process whose own peak RSS is reported.

Targets: JSONL export >= 0.5 of the COPY rate; exporter peak RSS < 500 MB at any row count.
The database is dropped at the end (``--keep`` keeps it). On a shared machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOLUNTEERS = 200
MODELS = 4
PAIRS_PER_PROMPT = 4
TARGET_RATIO = 0.5
TARGET_RSS_MB = 500


def fill_sql(rows: int) -> list[str]:
    prompts = (rows + PAIRS_PER_PROMPT - 1) // PAIRS_PER_PROMPT
    return [
        f"""INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,
            is_active, date_joined)
        SELECT g, '!', false, 'bench' || g, '', '', 'bench' || g || '@example.org', false, true, now()
        FROM generate_series(1, {VOLUNTEERS}) g""",
        f"""INSERT INTO feedback_volunteer (user_id, languages, accepted_licence, trust, created_at, accepted_terms_at)
        SELECT g, '[]', 'CC-BY-4.0', 0.5 + (g % 11) / 10.0, now(), now() FROM generate_series(1, {VOLUNTEERS}) g""",
        f"""INSERT INTO feedback_modelversion (id, name, backend, target, base_url, is_active, metrics, created_at)
        SELECT g, 'bench-model-' || g, 'imported', '', '', false, '{{}}', now() FROM generate_series(1, {MODELS}) g""",
        f"""INSERT INTO feedback_prompt (id, text, language, tests, test_style, entry_point, reference_solution,
            source, external_id, content_hash, created_at)
        SELECT g,
            format(E'def task_%s(values: list[int], limit: int = %s) -> list[int]:\\n'
                   '    \"\"\"Return the values that satisfy rule %s, keeping their order.\\n\\n'
                   '    Duplicates are dropped and at most limit values are returned.\\n'
                   '    >>> task_%s([3, 1, 3, 2], 2)\\n    [3, 1]\\n    \"\"\"\\n',
                   g, g % 97, substr(md5(g::text), 1, 6), g),
            'python',
            format(E'def check(candidate):\\n    assert candidate([3, 1, 3, 2], 2) == [3, 1]\\n'
                   '    assert candidate([], %s) == []\\n', g % 7),
            'humaneval', 'task_' || g, '', 'bench', 'bench/' || g, md5('p' || g) || md5('q' || g), now()
        FROM generate_series(1, {prompts}) g""",
        f"""INSERT INTO feedback_completion (id, prompt_id, model_version_id, text, text_hash, params, outcome,
            test_stdout, test_stderr, isolation, sandbox_version, created_at)
        SELECT g, (g - 1) / {2 * PAIRS_PER_PROMPT} + 1, 1 + g % {MODELS},
            format(E'    seen_%1$s = set()\\n    result = []\\n', substr(md5(g::text), 1, 4))
            || repeat(format(E'    for index, value in enumerate(values):\\n'
                             '        if value in seen_%1$s or value %% %2$s == 0:\\n            continue\\n'
                             '        seen_%1$s.add(value)\\n        result.append(value)\\n',
                             substr(md5(g::text), 1, 4), 2 + g % 9), 2 + (hashtext(g::text) & 3))
            || format(E'    # keep at most limit values (%s)\\n    return result[:limit]\\n',
                      substr(md5((g * 7)::text), 1, 10)),
            md5('c' || g) || md5('d' || g), '{{}}', CASE WHEN g % 3 = 0 THEN 'failed' ELSE 'passed' END,
            '', '', '', '', now()
        FROM generate_series(1, {2 * rows}) g""",
        f"""INSERT INTO feedback_pair (id, prompt_id, language, completion_a_id, completion_b_id, votes_wanted,
            votes_count, claims_count, state, shuffle_key, decided_by_tests, gold_choice, last_vote_at, created_at)
        SELECT g, (g - 1) / {PAIRS_PER_PROMPT} + 1, 'python', 2 * g - 1, 2 * g, 3, 3, 3, 'complete',
            hashtext(g::text) & 1073741823, (2 * g) % 3 = 0 OR (2 * g - 1) % 3 = 0, '', now(), now()
        FROM generate_series(1, {rows}) g""",
        # Mostly agreeing votes with some conflicts, ties and both-bad; sides drawn at random.
        f"""INSERT INTO feedback_vote (id, pair_id, volunteer_id, choice, left_is_a, idempotency_key, rationale,
            time_taken_ms, created_at)
        SELECT 3 * (g - 1) + k + 1, g, ((g * 7 + k * 13) % {VOLUNTEERS}) + 1,
            CASE WHEN (hashtext(g || ':' || k) & 15) = 0 THEN 'tie'
                 WHEN (hashtext(g || ':' || k) & 15) = 1 THEN 'both_bad'
                 WHEN (hashtext(g || ':' || k) & 15) < 5 THEN (CASE WHEN g % 2 = 0 THEN 'b' ELSE 'a' END)
                 ELSE (CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END) END,
            (hashtext(g || '/' || k) & 1) = 0, 'bench-' || g || '-' || k, '', 1000 + g % 5000, now()
        FROM generate_series(1, {rows}) g, generate_series(0, 2) k""",
    ]


def copy_sql(*, ordered: bool = True) -> str:
    """PostgreSQL alone: the preference rows the exporter keeps, as JSON, one per line.

    ``ordered``: in the exporter's (prompt, pair) order; unordered lets the planner use parallel hash joins
    and skip the sort, which is the faster (stricter) baseline.
    """
    return """
    SELECT json_build_object(
        'prompt', pr.text,
        'chosen', CASE WHEN agg.w_b > agg.w_a THEN cb.text ELSE ca.text END,
        'rejected', CASE WHEN agg.w_b > agg.w_a THEN ca.text ELSE cb.text END,
        'pair_id', p.id, 'prompt_id', p.prompt_id, 'language', p.language, 'votes', agg.n,
        'margin', (greatest(agg.w_a, agg.w_b) - greatest(least(agg.w_a, agg.w_b), agg.w_tie, agg.w_bad)) / agg.w,
        'agreement', greatest(agg.w_a, agg.w_b) / agg.w,
        'chosen_outcome', CASE WHEN agg.w_b > agg.w_a THEN cb.outcome ELSE ca.outcome END,
        'rejected_outcome', CASE WHEN agg.w_b > agg.w_a THEN ca.outcome ELSE cb.outcome END,
        'chosen_model', CASE WHEN agg.w_b > agg.w_a THEN mb.name ELSE ma.name END,
        'rejected_model', CASE WHEN agg.w_b > agg.w_a THEN ma.name ELSE mb.name END,
        'snapshot_version', 1, 'label', 'preferred', 'decided_by_tests', p.decided_by_tests,
        'rationales', agg.rationales)
    FROM feedback_pair p
    JOIN (SELECT v.pair_id, count(*) AS n, sum(coalesce(vol.trust, 1.0)) AS w,
                 sum(CASE WHEN v.choice = 'a' THEN coalesce(vol.trust, 1.0) ELSE 0 END) AS w_a,
                 sum(CASE WHEN v.choice = 'b' THEN coalesce(vol.trust, 1.0) ELSE 0 END) AS w_b,
                 sum(CASE WHEN v.choice = 'tie' THEN coalesce(vol.trust, 1.0) ELSE 0 END) AS w_tie,
                 sum(CASE WHEN v.choice = 'both_bad' THEN coalesce(vol.trust, 1.0) ELSE 0 END) AS w_bad,
                 coalesce(array_agg(v.rationale ORDER BY v.id) FILTER (WHERE v.rationale <> ''), '{}') AS rationales
          FROM feedback_vote v LEFT JOIN feedback_volunteer vol ON vol.user_id = v.volunteer_id
          GROUP BY v.pair_id) agg ON agg.pair_id = p.id
    JOIN feedback_prompt pr ON pr.id = p.prompt_id
    JOIN feedback_completion ca ON ca.id = p.completion_a_id
    JOIN feedback_completion cb ON cb.id = p.completion_b_id
    JOIN feedback_modelversion ma ON ma.id = ca.model_version_id
    JOIN feedback_modelversion mb ON mb.id = cb.model_version_id
    WHERE greatest(agg.w_a, agg.w_b) > greatest(agg.w_tie, agg.w_bad) + 1e-9 * agg.w
      AND abs(agg.w_a - agg.w_b) > 1e-9 * agg.w
    """ + ("ORDER BY p.prompt_id, p.id" if ordered else "")


def _secondary_schema(conn, tables: list[str]) -> tuple[list[str], list[str]]:
    """Statements that drop and recreate the tables' indexes and constraints (other than primary keys)."""
    drops, creates = [], []
    for table in tables:
        for name, definition, kind in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f', 'c') ORDER BY contype DESC",
            [table],
        ):
            drops.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            suffix = " NOT VALID" if kind == "f" else ""  # the rows come from this script; skip the re-check
            creates.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}{suffix}')
        for name, definition in conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [table],
        ):
            drops.append(f'DROP INDEX "{name}"')
            creates.append(definition)
    return drops, creates


def build_database(admin_url: str, db_url: str, name: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": db_url}
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env=env, cwd=ROOT)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        big = ["feedback_vote", "feedback_pair", "feedback_completion", "feedback_prompt"]
        drops, creates = _secondary_schema(conn, big)
        for statement in drops:
            conn.execute(statement)
        started = time.perf_counter()
        for statement in fill_sql(rows):
            conn.execute(statement)
        loaded = time.perf_counter()
        for statement in creates:
            conn.execute(statement)
        indexed = time.perf_counter()
        for table in ["auth_user", "feedback_modelversion", *big]:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.execute("VACUUM ANALYZE")
        print(
            f"  rows {loaded - started:.0f} s, indexes and constraints {indexed - loaded:.0f} s, "
            f"vacuum {time.perf_counter() - indexed:.0f} s"
        )


def _pair_count(db_url: str) -> int | None:
    import psycopg

    try:
        with psycopg.connect(db_url) as conn:
            return conn.execute("SELECT count(*) FROM feedback_pair").fetchone()[0]
    except psycopg.Error:
        return None


def time_copy(db_url: str, out: Path, *, ordered: bool) -> tuple[float, int, int]:
    import psycopg

    rows = size = 0
    with psycopg.connect(db_url) as conn, open(out, "wb") as handle:
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY ({copy_sql(ordered=ordered)}) TO STDOUT") as copy:
            for chunk in copy:
                handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
        elapsed = time.perf_counter() - started
    with open(out, "rb") as handle:
        while block := handle.read(1 << 24):
            rows += block.count(b"\n")
            size += len(block)
    return elapsed, rows, size


def run_child(db_url: str, what: str, out: Path) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CODEPREF_DATASETS_DIR": str(out / "datasets"),
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    }
    result = subprocess.run(
        [sys.executable, __file__, "--child", what, "--out", str(out)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"the {what} child failed ({result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(what: str, out: Path) -> None:
    """Runs in its own process, so that ru_maxrss is the exporter's own peak."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback.settings")
    django.setup()
    from django.db.models import Max

    from feedback.datasets.options import SnapshotOptions
    from feedback.datasets.rows import snapshot_files_write
    from feedback.datasets.services import snapshot_build
    from feedback.models import Vote

    last_vote_id = Vote.objects.aggregate(top=Max("id"))["top"]
    started = time.perf_counter()
    if what == "snapshot":
        snapshot = snapshot_build().snapshot
        rows = snapshot.counts["preference_train"] + snapshot.counts["preference_test"]
        size = sum(item["bytes"] for item in snapshot.files.values())
    else:
        folder = out / what
        stats = snapshot_files_write(
            folder=folder,
            version=1,
            options=SnapshotOptions.defaults(),
            last_vote_id=last_vote_id,
            parts=("preference",),
            formats=(what,),
        )
        rows = stats["rows"]["preference_train"] + stats["rows"]["preference_test"]
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        print({key: round(value, 2) for key, value in stats["seconds"].items()}, file=sys.stderr)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "what": what,
                "seconds": elapsed,
                "rows": rows,
                "bytes": size,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="pairs to create (default 1,000,000)")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--db", default="codepref_bench_export", help="name of the database to create and drop")
    parser.add_argument("--full", action="store_true", help="also time a whole snapshot (all parts and formats)")
    parser.add_argument("--keep", action="store_true", help="keep the database and files afterwards")
    parser.add_argument("--reuse", action="store_true", help="use the database a --keep run left (same --rows)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, Path(args.out))
        return 0

    admin_url = f"{args.server}/postgres"
    db_url = f"{args.server}/{args.db}"
    work = Path(tempfile.mkdtemp(prefix="codepref-bench-export-"))
    try:
        started = time.perf_counter()
        if args.reuse and _pair_count(db_url) == args.rows:
            print(f"database: reusing {args.db} ({args.rows:,} pairs)")
        else:
            build_database(admin_url, db_url, args.db, args.rows)
            print(f"database: {args.rows:,} pairs, {3 * args.rows:,} votes in {time.perf_counter() - started:.0f} s")

        copies = {}
        for ordered in (False, True):
            copies[ordered] = time_copy(db_url, work / "copy.jsonl", ordered=ordered)
            (work / "copy.jsonl").unlink()
        results = [run_child(db_url, "jsonl", work), run_child(db_url, "parquet", work)]
        if args.full:
            results.append(run_child(db_url, "snapshot", work))

        # The reference is the faster COPY (normally the unordered one): the stricter target.
        copy_seconds, copy_rows, copy_bytes = min(copies.values())
        copy_rate = copy_rows / copy_seconds
        header = f"{'':26s} {'rows':>10s} {'seconds':>8s} {'rows/s':>9s} {'MB':>7s} {'ratio':>6s} {'peak RSS':>9s}"
        print(header + f" {'CPU s':>6s}")
        for ordered, (seconds, rows, size) in copies.items():
            label = "COPY, exporter's order" if ordered else "COPY, any order"
            print(
                f"{label:26s} {rows:>10,} {seconds:>8.1f} {rows / seconds:>9,.0f} {size / 1e6:>7.0f} "
                f"{(rows / seconds) / copy_rate:>6.2f} {'-':>9s}"
            )
        for result in results:
            rate = result["rows"] / result["seconds"]
            label = {"jsonl": "exporter JSONL", "parquet": "exporter Parquet", "snapshot": "whole snapshot"}
            print(
                f"{label[result['what']]:26s} {result['rows']:>10,} {result['seconds']:>8.1f} {rate:>9,.0f} "
                f"{result['bytes'] / 1e6:>7.0f} {rate / copy_rate:>6.2f} {result['peak_rss_mb']:>6.0f} MB"
                f" {result['cpu_seconds']:>6.1f}"
            )
        jsonl = results[0]
        ratio = (jsonl["rows"] / jsonl["seconds"]) / copy_rate
        peak = max(result["peak_rss_mb"] for result in results)
        same = jsonl["rows"] == copy_rows
        print(f"rows match COPY: {'yes' if same else 'NO'} ({jsonl['rows']:,} vs {copy_rows:,})")
        print(
            f"JSONL/COPY ratio {ratio:.2f} against the faster COPY (target >= {TARGET_RATIO}): "
            f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}; "
            f"peak RSS {peak:.0f} MB (target < {TARGET_RSS_MB}): {'PASS' if peak < TARGET_RSS_MB else 'FAIL'}"
        )
        return 0 if same and ratio >= TARGET_RATIO and peak < TARGET_RSS_MB else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        else:
            print(f"kept: database {args.db}, files in {work}")


if __name__ == "__main__":
    raise SystemExit(main())
