"""Faults under load, full form: volunteers vote through gunicorn while parts of the stack fail.

    python bench/fault_drill.py                      # 8 volunteers, 10 s per phase, 3 rounds
    python bench/fault_drill.py --volunteers 16 --phase-seconds 20 --rounds 1

Each round starts a stack of its own on loopback (tests/drill_stack.py: a PostgreSQL cluster from initdb on a
free port, redis-server on a free port with AOF, gunicorn gthread 2 x 4, a Celery worker whose builds pause
mid-way) and runs tests/fault_drill.py's phases: steady, a gunicorn worker SIGKILLed, PostgreSQL backends
terminated, PostgreSQL restarted, Redis stopped during a snapshot request, the Celery pool process killed
mid-build, recovered. Targets: every acknowledged vote stored exactly once, only 2xx/4xx/503 JSON answers, no
request past the client timeout, only 2xx after recovery, every accepted snapshot published. It prints the
figures of each round and the rules that did not hold.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import fault_drill  # noqa: E402
from tests.drill_stack import Stack  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volunteers", type=int, default=8)
    parser.add_argument("--phase-seconds", type=float, default=10.0)
    parser.add_argument("--postgres-down", type=float, default=5.0, help="Seconds PostgreSQL stays stopped.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--think", type=float, default=0.02, help="Seconds each volunteer waits between votes.")
    args = parser.parse_args(argv)
    failed = False
    for round_no in range(1, args.rounds + 1):
        workdir = Path(tempfile.mkdtemp(prefix="fault-drill-"))
        try:
            started = time.perf_counter()
            with Stack(workdir, pairs=args.pairs) as stack:
                up = time.perf_counter() - started
                report = fault_drill.run(
                    stack, volunteers=args.volunteers, phase_seconds=args.phase_seconds,
                    postgres_down=args.postgres_down, think=args.think,
                )  # fmt: skip
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        problems = fault_drill.verdict(report)
        figures = fault_drill.summary(report)
        print(f"round {round_no} (stack up in {up:.0f} s): {json.dumps(figures)}", flush=True)
        print(f"round {round_no}: " + ("all rules held" if not problems else "BROKEN: " + "; ".join(problems)))
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
