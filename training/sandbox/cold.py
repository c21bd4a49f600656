"""A cold run: a sandbox of its own for one job (bwrap, setpriv or bare rlimits around a new interpreter)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import replace

from training.sandbox.isolation import (
    HARNESS,
    HARNESS_INSIDE,
    SANDBOX_ENV,
    SETPRIV,
    bwrap_launch,
    harness_argv,
    kill_bwrap,
    kill_uid,
)
from training.sandbox.protocol import HarnessJob
from training.sandbox.streams import Capture, Ran, drain, exited, supervise


def run_cold(
    job: HarnessJob,
    *,
    isolation: str,
    uid: int,
    deadline: float,
    output_limit: int,
    report_limit: int,
    cgroup_fds: list[int],
) -> Ran | str:
    """What the run left behind, or a message saying why the sandbox did not start. ``cgroup_fds`` (the
    caller's to close) are the run's cgroup.procs, which the harness joins first."""
    workdir = None if isolation == "bubblewrap" else tempfile.mkdtemp(prefix="codepref-sandbox-")
    try:
        argv, job, extra_fds = _command(job, isolation=isolation, uid=uid, workdir=workdir)
        return _launch(
            argv,
            job,
            extra_fds,
            isolation=isolation,
            uid=uid,
            workdir=workdir,
            deadline=deadline,
            output_limit=output_limit,
            report_limit=report_limit,
            cgroup_fds=cgroup_fds,
        )
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def _command(
    job: HarnessJob, *, isolation: str, uid: int, workdir: str | None
) -> tuple[list[str], HarnessJob, list[int]]:
    """The command line, the job as this isolation needs it, and the fds that the command line names."""
    if isolation == "bubblewrap":
        prefix, extra_fds = bwrap_launch()
        # The harness runs as pid 1 of the namespace: a shim between bwrap and the program.
        return (
            prefix + harness_argv(HARNESS_INSIDE),
            replace(job, uid=uid if os.geteuid() == 0 else None, shim=True),
            extra_fds,
        )
    argv = harness_argv(str(HARNESS))
    if isolation == "setpriv":
        os.chown(workdir, uid, uid)
        argv = [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"] + argv
    return argv, replace(job, cwd=workdir, shim=isolation == "rlimits"), []


def _launch(
    argv: list[str],
    job: HarnessJob,
    extra_fds: list[int],
    *,
    isolation: str,
    uid: int,
    workdir: str | None,
    deadline: float,
    output_limit: int,
    report_limit: int,
    cgroup_fds: list[int],
) -> Ran | str:
    report_r, report_w = os.pipe()
    job_fd = replace(job, report_fd=report_w, cgroup_fds=list(cgroup_fds)).fd()
    proc = None
    try:
        try:
            proc = subprocess.Popen(
                argv + [str(job_fd)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(job_fd, report_w, *extra_fds, *cgroup_fds),
                start_new_session=True,
                env=SANDBOX_ENV,
                cwd=workdir or "/",
            )
        except OSError as exc:
            return f"[sandbox] could not start the {isolation} sandbox: {exc}\n"
        finally:
            for fd in (job_fd, report_w, *extra_fds):
                os.close(fd)
        ran = Ran.start(output_limit, report_limit)
        streams = {proc.stdout.fileno(): ran.stdout, proc.stderr.fileno(): ran.stderr, report_r: ran.report}
        ran.timed_out, still_open = _watch(proc, streams, deadline)
        _stop(proc, isolation=isolation, uid=uid, leftovers=ran.timed_out or bool(still_open))
        drain(streams, still_open, 1.0)
        ran.returncode = proc.wait()
        return ran
    finally:
        os.close(report_r)
        if proc is not None:
            proc.stdout.close()
            proc.stderr.close()


def _watch(proc: subprocess.Popen, streams: dict[int, Capture], deadline: float) -> tuple[bool, set[int]]:
    """Read the output until the harness's process exits (seen through a pidfd where the kernel has them)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1
    try:
        return supervise(streams, deadline, done_fd=pidfd, on_done=lambda: None, poll_done=lambda: exited(proc.pid))
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _stop(proc: subprocess.Popen, *, isolation: str, uid: int, leftovers: bool) -> None:
    """Kill what the run left: under bubblewrap the whole sandbox, if anything still holds its output; else
    the process group, and under setpriv every process of the run's uid (a daemon that left the group and
    closed its output is still this uid)."""
    if isolation == "bubblewrap":
        if leftovers:
            kill_bwrap(proc)
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # not reaped yet, so the group is still this run's
    except (ProcessLookupError, PermissionError):
        pass
    if isolation == "setpriv":
        kill_uid(uid)
