"""The resource limits every run gets: the job's own (time, memory, processes) and fixed ones."""

from __future__ import annotations

import math
import os

MAX_PROCESSES = 16  # per run, threads included (RLIMIT_NPROC counts tasks)
FILE_SIZE_MB = 16
TMPFS_MB = 64
MAX_OPEN_FILES = 256
EXIT_GRACE_SECONDS = 0.5  # after the program's process exits, how long leftovers may hold its pipes


def cgroup_cpus() -> float:
    """CPUs a run may use at once through its cgroup (``CODEPREF_SANDBOX_CGROUP_CPUS``); 0, the default, leaves
    CPU to RLIMIT_CPU per process and the wall-clock timeout. The cpu controller groups every run into one
    scheduling entity: on a shared 2-core machine it halved the sandbox's throughput (bench/sandbox.py)."""
    try:
        return max(float(os.environ.get("CODEPREF_SANDBOX_CGROUP_CPUS", "0")), 0.0)
    except ValueError:
        return 0.0


OUTPUTS_BASE_BYTES = 1 << 20


def outputs_limit(tests: str) -> int:
    """Bytes of outputs the host reads back on the strong path: a correct answer encodes to about the size of
    the literal it is checked against, so a margin over the tests' own size."""
    return OUTPUTS_BASE_BYTES + 8 * len(tests)


def rlimits(*, timeout: float, memory_mb: int, max_processes: int) -> list[tuple[str, int, int]]:
    """(resource name, soft, hard) for the harness to set before the program runs; CPU seconds follow the
    wall-clock timeout, so that a busy loop ends as a timeout either way."""
    cpu = math.ceil(timeout) + 1
    return [
        ("RLIMIT_CPU", cpu, cpu + 1),
        ("RLIMIT_AS", memory_mb << 20, memory_mb << 20),
        ("RLIMIT_FSIZE", FILE_SIZE_MB << 20, FILE_SIZE_MB << 20),
        ("RLIMIT_NPROC", max_processes, max_processes),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_NOFILE", MAX_OPEN_FILES, MAX_OPEN_FILES),
    ]
