"""Running jobs: each under the job's isolation or the strongest this host gives (probed once), many at once."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from training.sandbox.job import RunResult, SandboxJob
from training.sandbox.probe import isolation_available
from training.sandbox.run import run_isolated


def run_program(job: SandboxJob) -> RunResult:
    """Run ``prompt + completion`` and then its tests in a fresh sandbox, and return the trusted outcome."""
    return run_isolated(job, job.isolation or isolation_available())


def run_many(jobs: Iterable[SandboxJob], *, workers: int | None = None) -> list[RunResult]:
    """``run_program(job)`` for every job, ``workers`` at a time (default: one per CPU); results in order."""
    jobs = list(jobs)
    if not jobs:
        return []
    workers = workers or len(os.sched_getaffinity(0))
    isolation_available()  # probe once, before the threads race to do it
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))), thread_name_prefix="sandbox") as pool:
        return list(pool.map(run_program, jobs))
