"""Schemathesis against the live API: every check, every phase, a volunteer's token and a maintainer's.

    python bench/schema_fuzz.py                      # 200 examples per operation and token
    python bench/schema_fuzz.py --max-examples 1000 --seed 7

It starts a stack of its own on loopback (tests/drill_stack.py: a PostgreSQL cluster by initdb on a free
port, redis-server on a free port, gunicorn; no Celery worker, so requested builds only queue), seeds 400
pairs, 8 volunteers and a maintainer with tokens, and runs ``schemathesis run <url>/api/v1/schema/ --checks
all`` once per token with ``bench/schemathesis.toml``. Target: zero failures and zero errors for both. It
prints each run's summary line; the JUnit reports are left in ``--report-dir`` (default var/schema-fuzz).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.drill_stack import Stack, schemathesis_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=200, help="Examples per operation and phase.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report-dir", type=Path, default=ROOT / "var" / "schema-fuzz")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="schema-fuzz-"))
    failed = False
    try:
        started = time.perf_counter()
        with Stack(workdir, worker=False) as stack:
            print(f"stack up in {time.perf_counter() - started:.1f} s at {stack.base_url}", flush=True)
            tokens = {"volunteer": stack.seed["volunteers"][0][1], "maintainer": stack.seed["maintainer"]}
            for who, token in tokens.items():
                began = time.perf_counter()
                result = schemathesis_run(
                    stack.base_url, token, max_examples=args.max_examples, seed=args.seed,
                    workdir=args.report_dir / who,
                )  # fmt: skip
                print(
                    f"{who}: exit {result['returncode']}, {result['generated']}; {result['summary']} "
                    f"({time.perf_counter() - began:.0f} s wall)",
                    flush=True,
                )
                if result["returncode"] != 0:
                    failed = True
                    print(result["output"][-6000:])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("target: zero failures for both tokens:", "MISSED" if failed else "met")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
