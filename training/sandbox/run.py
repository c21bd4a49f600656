"""One sandbox run under a given isolation, and its trusted outcome (``runner.py`` picks the isolation)."""

from __future__ import annotations

import os
import secrets
import signal
import time

from training.sandbox.cold import run_cold
from training.sandbox.isolation import draw_uid
from training.sandbox.job import SANDBOX_VERSION, RunResult, SandboxJob
from training.sandbox.limits import rlimits
from training.sandbox.program import program_source, split_tests
from training.sandbox.protocol import HarnessJob, read_report
from training.sandbox.streams import Ran
from training.sandbox.warm import run_warm, warm_wanted


def run_isolated(job: SandboxJob, isolation: str) -> RunResult:
    """Run ``prompt + completion`` and then its tests in a fresh sandbox, and return the trusted outcome."""
    started = time.monotonic()
    try:
        chunks = split_tests(tests=job.tests, style=job.style, entry_point=job.entry_point)
    except ValueError as exc:
        return RunResult("error", time.monotonic() - started, "", f"[sandbox] {exc}\n", isolation, SANDBOX_VERSION)
    orders = HarnessJob(
        program=program_source(prompt=job.prompt, completion=job.completion, style=job.style),
        tests=chunks,
        limits=rlimits(timeout=job.timeout, memory_mb=job.memory_mb, max_processes=job.max_processes),
        nonce=secrets.token_hex(16).encode(),
    )
    uid = draw_uid()
    ran = None
    if isolation == "bubblewrap" and os.geteuid() == 0 and (warm_wanted() if job.warm is None else job.warm):
        ran = run_warm(orders, uid=uid, timeout=job.timeout, output_limit=job.output_limit)
    if ran is None:
        ran = run_cold(
            orders, isolation=isolation, uid=uid, deadline=started + job.timeout, output_limit=job.output_limit
        )
    if isinstance(ran, str):
        return RunResult("error", time.monotonic() - started, "", ran, isolation, SANDBOX_VERSION)
    duration = time.monotonic() - started
    outcome, problem = _outcome(ran, orders, timeout=job.timeout)
    note = f"\n[sandbox] {problem}\n" if problem else ""
    return RunResult(outcome, duration, ran.stdout.text(), ran.stderr.text(note), isolation, SANDBOX_VERSION)


def _outcome(ran: Ran, orders: HarnessJob, *, timeout: float) -> tuple[str, str]:
    """The harness's report decides; without one, a kill for time is a timeout and anything else an error."""
    expected_asserts = sum(asserts for _, _, asserts in orders.tests)
    outcome, problem = read_report(bytes(ran.report.head), nonce=orders.nonce, expected_asserts=expected_asserts)
    if outcome is not None:
        return outcome, problem
    cpu_killed = ran.returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    if ran.timed_out or cpu_killed:
        return "timeout", f"killed after {'the CPU limit' if cpu_killed else f'{timeout:g} s'}"
    return "error", f"{problem} from the harness (exit status {ran.returncode}): not passed"
