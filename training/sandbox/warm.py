"""Warm sandboxes: one bwrap and interpreter serve many runs, each forked with its own namespaces and uid.

Start-up of bwrap and of the interpreter (some 15 ms of CPU, most of a run) is then paid once per sandbox,
not per run. Only as root: the harness in the sandbox must be root to give each runner its namespaces.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from training.sandbox.cgroups import RunCgroup, cgroup_support
from training.sandbox.isolation import HARNESS_INSIDE, SANDBOX_ENV, bwrap_launch, harness_argv, kill_bwrap
from training.sandbox.limits import cgroup_cpus
from training.sandbox.protocol import HarnessJob
from training.sandbox.streams import Ran, drain, supervise

WARM_START_SECONDS = 10.0
WARM_RUNS_PER_SANDBOX = 1000  # then a fresh one, so that nothing a run could leave behind accumulates
WARM_IDLE_MAX = 16


def warm_wanted() -> bool:
    return os.environ.get("CODEPREF_SANDBOX_WARM", "1").strip().lower() not in ("0", "false", "no", "off")


class WarmSandbox:
    """A bwrap sandbox whose pid 1 is the harness in ``--serve`` mode, and the socket that drives it.

    Where the host gives cgroups, the whole sandbox lives in one, which pid 1 joins before anything else, and
    whose limits are set to each run's before the hand-over: runs are one at a time, so this is a cgroup per
    run without a migration per run (on cgroup v1 a migration costs some 10 ms of RCU grace periods).
    """

    def __init__(self):
        self.cgroup = _sandbox_cgroup()
        self.limits: tuple[int, int] | None = None  # (memory bytes, processes) the cgroup is set to
        self.events: dict[str, int] = {}  # its counters after the last run
        prefix, extra_fds = bwrap_launch()
        argv = prefix + harness_argv(HARNESS_INSIDE)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            cgroup_fds = self.cgroup.procs_fds() if self.cgroup else []
        except OSError:
            self.cgroup.remove()
            self.cgroup, cgroup_fds = None, []
        extra_fds += cgroup_fds
        try:
            self.proc = subprocess.Popen(
                argv + ["--serve", str(theirs.fileno()), ",".join(map(str, cgroup_fds))],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(), *extra_fds),
                start_new_session=True,
                env=SANDBOX_ENV,
                cwd="/",
            )
        except OSError:
            ours.close()
            if self.cgroup:
                self.cgroup.remove()
            raise
        finally:
            theirs.close()
            for fd in extra_fds:
                os.close(fd)
        self.ctl = ours
        self.runs = 0
        ours.settimeout(WARM_START_SECONDS)
        try:
            hello = ours.recv(16)
        except OSError:
            hello = b""
        ours.settimeout(None)
        if hello != b"ready":
            self.close()
            raise OSError(f"the warm sandbox did not start (it said {hello!r})")

    def close(self) -> None:
        kill_bwrap(self.proc)
        self.ctl.close()
        if self.cgroup:
            self.cgroup.kill()
            self.cgroup.remove()


def _since(events: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v if k == "memory_peak" else v - before.get(k, 0) for k, v in events.items()}


def _sandbox_cgroup() -> RunCgroup | None:
    support = cgroup_support()
    if not support.version:
        return None
    try:  # room for pid 1 and its start-up probe until the first run's limits
        return RunCgroup.create(support, memory_bytes=256 << 20, max_processes=4, cpus=cgroup_cpus())
    except OSError:
        return None


class WarmPool:
    """Idle warm sandboxes of this process. They are started from one long-lived thread because bwrap's
    --die-with-parent follows the thread that started it: started from a run_many thread, a sandbox would die
    with that thread."""

    def __init__(self):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.idle: list[WarmSandbox] = []
        self.broken = ""
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        atexit.register(self.close_idle)  # bwrap dies with us anyway; this also removes their cgroups

    def close_idle(self) -> None:
        if os.getpid() != self.pid:
            return
        with self.lock:
            idle, self.idle = self.idle, []
        for box in idle:
            box.close()

    def checkout(self) -> WarmSandbox | None:
        with self.lock:
            if self.broken:
                return None
            if self.idle:
                return self.idle.pop()
        try:
            return self.spawner.submit(WarmSandbox).result()
        except OSError as exc:
            with self.lock:
                self.broken = str(exc)  # runs go on, one cold sandbox each
            return None

    def checkin(self, box: WarmSandbox) -> None:
        box.runs += 1
        with self.lock:
            if box.runs < WARM_RUNS_PER_SANDBOX and len(self.idle) < WARM_IDLE_MAX:
                self.idle.append(box)
                return
        box.close()

    def forget(self) -> None:
        """In a forked child: the sandboxes belong to the parent; drop our copies of their sockets only."""
        for box in self.idle:
            box.ctl.close()
        self.idle = []


_pool: WarmPool | None = None
_pool_lock = threading.Lock()


def current_pool() -> WarmPool:
    """This process's pool; a forked child starts its own."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            if _pool is not None:
                _pool.forget()
            _pool = WarmPool()
        return _pool


def run_warm(
    job: HarnessJob,
    *,
    uid: int,
    timeout: float,
    output_limit: int,
    report_limit: int,
    memory_bytes: int,
    max_processes: int,
) -> Ran | None:
    """Run in a warm sandbox; None when there is none to be had (the caller then starts a cold one)."""
    pool = current_pool()
    job = replace(job, uid=uid)  # the runner drops to it; the sandbox kills what is left of it after the run
    for _attempt in range(2):
        box = pool.checkout()
        if box is None:
            return None
        if box.cgroup and box.limits != (memory_bytes, max_processes):
            try:  # the program's processes, plus pid 1 and the killer it forks after the run
                box.cgroup.set_limits(memory_bytes=memory_bytes, max_processes=max_processes + 2, cpus=cgroup_cpus())
                box.limits, box.events = (memory_bytes, max_processes), box.cgroup.events()
            except OSError:
                box.close()
                continue
        pipes = _hand_over(box, job, uid)
        if pipes is None:  # the sandbox died while idle: another one
            box.close()
            continue
        # The deadline counts from the hand-over: starting a sandbox is not the run's time.
        deadline = time.monotonic() + timeout
        return _collect(pool, box, pipes, deadline=deadline, ran=Ran.start(output_limit, report_limit))
    return None


def _hand_over(box: WarmSandbox, job: HarnessJob, uid: int) -> tuple[int, int, int] | None:
    """Send the job with fresh stdout, stderr and report pipes; our read ends of them, or None when the sandbox
    is gone."""
    report_r, report_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    job_fd = job.fd()
    try:
        socket.send_fds(box.ctl, [b"run %d" % uid], [job_fd, out_w, err_w, report_w])
        sent = True
    except OSError:
        sent = False
    finally:
        for fd in (job_fd, out_w, err_w, report_w):
            os.close(fd)
    if not sent:
        for fd in (report_r, out_r, err_r):
            os.close(fd)
        return None
    return out_r, err_r, report_r


def _collect(pool: WarmPool, box: WarmSandbox, pipes: tuple[int, int, int], *, deadline: float, ran: Ran) -> Ran:
    """Read the run's output until the sandbox says it is done; a sandbox whose run did not end cleanly goes."""
    out_r, err_r, report_r = pipes
    streams = {out_r: ran.stdout, err_r: ran.stderr, report_r: ran.report}

    def on_done() -> None:
        try:
            message = box.ctl.recv(64)
        except OSError:
            message = b""  # the sandbox died: no exit status, and the sandbox is not reused
        if message.startswith(b"done "):
            ran.returncode = int(message[5:])

    try:
        ran.timed_out, still_open = supervise(streams, deadline, done_fd=box.ctl.fileno(), on_done=on_done)
        if box.cgroup:  # counters since the previous run's reading; v1's peak is reset for the next run
            events = box.cgroup.events()
            ran.cgroup_version, ran.cgroup_events = box.cgroup.version, _since(events, box.events)
            box.events = events
            box.cgroup.reset_peak()
        if ran.timed_out or still_open or ran.returncode is None:
            box.close()  # the whole sandbox goes, and whatever still runs in it
            drain(streams, still_open, 1.0)
        else:
            pool.checkin(box)
    finally:
        for fd in streams:
            os.close(fd)
    return ran
