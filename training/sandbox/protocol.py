"""What the host and the harness say to each other: the job, handed in through a file descriptor that the
harness closes before the program runs, and the one-line report handed back on a pipe of its own."""

from __future__ import annotations

import hmac
import marshal
import os
import tempfile
from dataclasses import dataclass, field

from training.sandbox.limits import TMPFS_MB

REPORT_TAG = b"codepref-sandbox-report"


@dataclass(frozen=True)
class HarnessJob:
    """The harness's orders for one run (training/sandbox/harness.py reads these fields by name)."""

    program: str
    tests: list[tuple[str, int, int]]  # (source, first line, asserts in it)
    limits: list[tuple[str, int, int]]  # (resource name, soft, hard)
    nonce: bytes
    uid: int | None = None  # the unprivileged uid to drop to (as root)
    cwd: str | None = None
    shim: bool = False  # fork a trusted parent for the program first
    report_fd: int = -1  # where the report goes, in a cold run (a warm run hands the pipe over with the job)
    tmpfs_bytes: int = TMPFS_MB << 20
    calls: list[tuple[str, tuple, dict]] | None = None  # the strong path: compute these, the host judges
    setup: str = ""  # the tests' imports, run before the calls
    cgroup_fds: list[int] = field(default_factory=list)  # cgroup.procs to join, in a cold run
    seccomp: bytes | None = None  # a filter for the harness to install (bwrap installs its own)

    def fd(self) -> int:
        """A fresh file descriptor holding the job, for the harness to inherit."""
        blob = marshal.dumps(vars(self))
        try:
            fd = os.memfd_create("codepref-sandbox-job")
        except (AttributeError, OSError):
            handle = tempfile.TemporaryFile()
            fd = os.dup(handle.fileno())
            handle.close()
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        return fd


def read_report(report: bytes, *, nonce: bytes, expected_asserts: int) -> tuple[str | None, str]:
    """The outcome the harness reported and a note, or (None, why) when there is no report of the harness's."""
    lines = [line for line in report.split(b"\n") if line]
    if len(lines) != 1:
        return None, f"{len(lines)} report lines where the harness writes one" if lines else "no report"
    parts = lines[0].split(b" ")
    if len(parts) != 5 or parts[0] != REPORT_TAG or not hmac.compare_digest(parts[1], nonce):
        return None, "a report without this run's nonce"
    status, phase, ran = parts[2].decode("ascii", "replace"), parts[3], parts[4]
    if status not in ("passed", "failed", "error"):
        return None, "a report with an unknown status"
    if status == "passed" and (phase != b"tests" or ran != str(expected_asserts).encode()):
        return "error", f"tests incomplete: {ran.decode('ascii', 'replace')} of {expected_asserts} asserts ran"
    return status, ""
