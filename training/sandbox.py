"""Run untrusted Python against its unit tests, and return a verdict that the program cannot forge by exiting.

Used by the platform (feedback/evaluation.py stores the outcome on each Completion) and by training (rewards,
pass@k), so it imports nothing from Django::

    from training.sandbox import run_program, run_many
    result = run_program(prompt=p, completion=c, tests=t, entry_point="add")   # HumanEval: check(add)
    result = run_program(prompt="", completion=c, tests=asserts, style="asserts")  # MBPP assert lines
    result.outcome  # "passed" | "failed" | "error" | "timeout"; result.isolation says what contained it

Isolation (the best this host allows, probed once per process by running real jobs; ``isolation_available``)
-------------------------------------------------------------------------------------------------------------
``bubblewrap``
    ``bwrap`` with new pid, network, mount, ipc and uts namespaces: no network (loopback only, nothing listening),
    a read-only view of ``/usr`` and of the interpreter's prefix and nothing else of the host (no ``/etc``,
    ``/home``, ``/root``, ``/work``), a fresh size-limited tmpfs as ``/tmp`` (the working directory) and as
    ``/dev/shm``. As root, bwrap runs without a user namespace and the program runs under a real unprivileged
    uid: ``RLIMIT_NPROC`` is ignored for root and for a uid mapped to root inside a user namespace (reproduced:
    20 of 20 forks got through), and holds for a real uid. Each run draws its own uid from a range no account
    uses, because ``RLIMIT_NPROC`` counts every process of a uid: concurrent runs do not share the budget, and
    "every process of this uid" is exactly what the run left behind. A seccomp filter refuses user namespaces
    (which would hand the program capabilities, and much more of the kernel to attack), joining namespaces, the
    keyring, eBPF, perf, userfaultfd and io_uring. The probe checks that a fork beyond the limit fails and that
    the program is not root.
``setpriv``
    no namespaces (bwrap unusable here) but root: ``setpriv`` to a random unprivileged uid, no new privileges,
    a fresh temporary directory. The program sees the host's files as any unprivileged user would, and the network.
``rlimits``
    neither: resource limits only, in a fresh temporary directory, behind a shim process so that
    ``kill(getppid())`` hits the shim. This is not a security boundary.

Under bubblewrap as root a run is *warm* by default: start-up of bwrap and of the interpreter (some 15 ms of
CPU, most of a run) is paid once per sandbox, not per run. The sandbox's pid 1 is the harness in serve mode,
root, never running untrusted code; per run it forks a runner that enters new mount and IPC namespaces (so a
fresh ``/tmp`` and ``/dev/shm``, no SysV objects of earlier runs), sets the limits, drops to the run's uid and
only then runs the program. When the runner exits, everything left under that uid is killed and reaped before
the sandbox takes the next run; a run that times out (or leaves output pipes open) takes its whole sandbox down
with it, and a sandbox is retired after 1000 runs. What runs share is the (empty) network namespace, the pid
namespace (never at the same time) and the interpreter's hash seed. ``CODEPREF_SANDBOX_WARM=0`` makes every run
*cold*: its own bwrap, whose pid 1 is the harness as a shim (``--as-pid-1``, so that no orphaned reaper is left
as a zombie under a container's init), and whose namespaces die with the run.

Every run: a process of its own, killed with everything it started at the wall-clock timeout (cold runs get
their own session and process group too);
limits on CPU seconds, address space (``memory_mb``), file size, processes and open files; no core dumps;
stdin is ``/dev/null``; stdout and stderr are captured up to ``output_limit`` (head and tail kept) while the
rest is drained and dropped, so a program that prints forever costs memory to nobody.

The verdict
-----------
The harness (training/_sandbox_harness.py, read-only inside the sandbox) receives its job through an inherited
file descriptor that it closes before any untrusted code runs: the program, the test chunks, the limits, and
a per-run random nonce. It runs the program, then each test chunk (HumanEval: the test code, then
``check(entry_point)``; MBPP: every top-level assert separately, so the asserts executed are counted), and only
after the last chunk writes one line to a pipe whose number the program is not told:
``codepref-sandbox-report <nonce> <status> <phase> <asserts run>``. The host counts a pass only when that
pipe holds exactly that one line, with the right nonce, from the tests phase, with every expected assert
counted. The exit status and stdout are never read for the verdict. Hence:

- ``os._exit(0)``, ``sys.exit(0)`` (caught as an error), a crash, ``kill(getppid())``: no report, not passed.
- printing "passed" or a fake report, on stdout or on any descriptor it finds: no nonce, not passed.
- forking: a forked copy of the harness carries the nonce, but the harness reports only from its original pid,
  and two report lines void the verdict.
- patching ``builtins.exec``/``compile``/``os.write`` or leaving a trace hook: the harness bound its own
  references before the program ran and clears trace and profile hooks before the tests.

What it does not stop: the program runs in the harness's own interpreter (as in every HumanEval-style harness,
so that tests can compare arbitrary return values), and code written to attack this harness specifically can
read the nonce from the harness's frames or memory and forge a pass. The isolation still contains it; only
the verdict is lost. Tests are also only as strong as they are: an object whose ``__eq__`` returns True
passes ``assert f(x) == y`` here as everywhere.
"""

from __future__ import annotations

import ast
import hmac
import marshal
import math
import os
import random
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

# Bump whenever the harness, the limits or the isolation could change a verdict: stored outcomes with another
# version are re-run by ``manage.py run_tests --all``.
SANDBOX_VERSION = "1.0"

OUTCOMES = ("passed", "failed", "error", "timeout")
ISOLATIONS = ("bubblewrap", "setpriv", "rlimits")

HARNESS = Path(__file__).with_name("_sandbox_harness.py")
HARNESS_INSIDE = "/codepref-harness.py"
BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"

# Uids handed to runs: high enough that no account or image user has them, wide enough that two concurrent
# runs almost never draw the same one (they would then share one RLIMIT_NPROC budget, nothing worse).
UID_BASE = 200_000
UID_COUNT = 100_000

MAX_PROCESSES = 16  # per run, threads included (RLIMIT_NPROC counts tasks)
FILE_SIZE_MB = 16
TMPFS_MB = 64
MAX_OPEN_FILES = 256
EXIT_GRACE_SECONDS = 0.5  # after the program's process exits, how long leftovers may hold its pipes
REPORT_TAG = b"codepref-sandbox-report"
WARM_START_SECONDS = 10.0
WARM_RUNS_PER_SANDBOX = 1000  # then a fresh one, so that nothing a run could leave behind accumulates
WARM_IDLE_MAX = 16
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True)
class RunResult:
    outcome: str  # "passed" | "failed" | "error" | "timeout"
    duration: float  # seconds, wall clock, start-up of the sandbox included
    stdout: str
    stderr: str
    isolation: str  # "bubblewrap" | "setpriv" | "rlimits"
    sandbox_version: str

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


# ---------------------------------------------------------------------------------------------------------------
# The program and its tests


def program_source(*, prompt: str, completion: str, style: str) -> str:
    """What runs before the tests: HumanEval's prompt + completion; for MBPP, the prompt only if it is code.

    MBPP prompts are often prose ("Write a function to ..."), and the completion is then the whole function;
    a prompt is code when it parses alone or as a stub header (``def f(x):`` waiting for its body).
    """
    if style == "asserts" and prompt.strip() and not _parses(prompt) and not _parses(prompt + "\n    pass\n"):
        return completion
    return prompt + completion


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def split_tests(*, tests: str, style: str, entry_point: str) -> list[tuple[str, int, int]]:
    """The tests as (source, first line, asserts in it) chunks that the harness runs and counts one by one."""
    if style == "humaneval":
        if not entry_point.isidentifier():
            raise ValueError(f"HumanEval-style tests need entry_point, a Python name; got {entry_point!r}")
        return [(tests, 1, 0), (f"check({entry_point})\n", tests.count("\n") + 2, 1)]
    if style != "asserts":
        raise ValueError(f"style must be 'humaneval' or 'asserts'; got {style!r}")
    try:
        body = ast.parse(tests).body
    except (SyntaxError, ValueError):
        return [(tests, 1, 0)]  # the harness reports the syntax error
    lines = tests.splitlines(True)
    chunks: list[list[int]] = []  # [first line, last line, asserts]
    for node in body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        asserts = 1 if isinstance(node, ast.Assert) else 0
        if chunks and first <= chunks[-1][1]:  # statements sharing a line ("a = 1; assert a") stay together
            chunks[-1][1] = max(chunks[-1][1], last)
            chunks[-1][2] += asserts
        else:
            chunks.append([first, last, asserts])
    return [("".join(lines[first - 1 : last]), first, asserts) for first, last, asserts in chunks]


# ---------------------------------------------------------------------------------------------------------------
# Isolation: what this host gives, probed once


def _python() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _interpreter_dirs() -> list[str]:
    """Folders outside /usr that the interpreter needs: its prefix (a pyenv or /opt build)."""
    python = _python()
    dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    if not any(python.startswith(d + os.sep) for d in dirs):
        dirs.add(os.path.dirname(python))
    return sorted(d for d in dirs if d != "/usr" and not d.startswith("/usr/"))


# Syscalls a test program has no use for, refused by a seccomp filter under bubblewrap: creating user namespaces
# (clone/unshare with CLONE_NEWUSER: a uid-less program would get capabilities in one, and with them much more
# of the kernel to attack), joining namespaces, the kernel keyring, eBPF, perf, userfaultfd and io_uring.
# clone3 answers ENOSYS, because its flags sit in a struct a filter cannot read; glibc then falls back to clone.
_SYSCALLS = {
    # machine: (audit arch, x32 bit or 0, clone, unshare, clone3, refused)
    "x86_64": (0xC000003E, 0x40000000, 56, 272, 435, (308, 248, 249, 250, 321, 298, 323, 425, 426, 427)),
    "aarch64": (0xC00000B7, 0, 220, 97, 435, (268, 217, 218, 219, 280, 241, 282, 425, 426, 427)),
}
_CLONE_NEWUSER = 0x10000000


def seccomp_filter() -> bytes | None:
    """The classic-BPF program for ``bwrap --seccomp``, or None on a machine without a table here."""
    table = _SYSCALLS.get(os.uname().machine)
    if table is None:
        return None
    arch, x32_bit, clone, unshare, clone3, refused = table
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    # (code, jump if true -> label, jump if false -> label, k); labels resolved below
    program: list[tuple[int, str | None, str | None, int]] = [(ld, None, None, 4), (jeq, None, "eperm", arch)]
    program.append((ld, None, None, 0))
    if x32_bit:
        program.append((jge, "eperm", None, x32_bit))
    program += [(jeq, "flags", None, clone), (jeq, "flags", None, unshare), (jeq, "enosys", None, clone3)]
    program += [(jeq, "eperm", None, number) for number in refused]
    program += [(ret, None, None, allow)]
    labels = {"flags": len(program)}
    program += [(ld, None, None, 16), (jset, "eperm", None, _CLONE_NEWUSER), (ret, None, None, allow)]
    labels["eperm"] = len(program)
    program.append((ret, None, None, eperm))
    labels["enosys"] = len(program)
    program.append((ret, None, None, enosys))
    code = b""
    for index, (op, if_true, if_false, k) in enumerate(program):
        true_offset = labels[if_true] - index - 1 if if_true else 0
        false_offset = labels[if_false] - index - 1 if if_false else 0
        code += struct.pack("<HBBI", op, true_offset, false_offset, k)
    return code


def _seccomp_fd() -> int | None:
    """A fresh readable fd holding the filter (bwrap reads it whole), or None without one."""
    program = seccomp_filter()
    if program is None:
        return None
    read_end, write_end = os.pipe()
    os.write(write_end, program)  # a few hundred bytes: fits any pipe buffer
    os.close(write_end)
    return read_end


def _bwrap_prefix(*, as_root: bool) -> list[str]:
    if as_root:
        # No user namespace: the harness then drops to a real uid, the only way RLIMIT_NPROC holds for root.
        args = [BWRAP, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        args = [BWRAP, "--unshare-all"]
    args += ["--as-pid-1", "--die-with-parent", "--new-session", "--clearenv"]
    for name, value in SANDBOX_ENV.items():
        args += ["--setenv", name, value]
    args += ["--ro-bind", "/usr", "/usr"]
    for path in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    made: set[str] = set()
    for folder in _interpreter_dirs():
        parent = os.path.dirname(folder)
        ancestors = []
        while parent not in ("/", "") and parent not in made:
            ancestors.append(parent)
            made.add(parent)
            parent = os.path.dirname(parent)
        for ancestor in reversed(ancestors):  # traversable by the unprivileged uid, whatever the host's modes
            args += ["--perms", "0755", "--dir", ancestor]
        args += ["--ro-bind", folder, folder]
    args += ["--ro-bind", str(HARNESS), HARNESS_INSIDE, "--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(TMPFS_MB << 20), "--perms", "1777", "--tmpfs", "/tmp"]
    args += ["--size", str(TMPFS_MB << 20), "--perms", "1777", "--tmpfs", "/dev/shm"]
    args += ["--chdir", "/tmp", "--"]
    return args


def _bwrap_launch() -> tuple[list[str], list[int]]:
    """bwrap's arguments up to the command, and the fds they name (the caller passes, then closes them)."""
    global _bwrap_args
    if _bwrap_args is None:
        _bwrap_args = _bwrap_prefix(as_root=os.geteuid() == 0)
    seccomp = _seccomp_fd()
    if seccomp is None:
        return _bwrap_args, []
    return _bwrap_args[:-1] + ["--seccomp", str(seccomp), "--"], [seccomp]


_probe_lock = threading.Lock()
_probed: str | None = None
_bwrap_args: list[str] | None = None

# The probe: a fork beyond RLIMIT_NPROC=1 must fail, and the program must not run as root.
_PROBE = {
    "prompt": "import os\n",
    "completion": "",
    "tests": (
        "try:\n    pid = os.fork()\nexcept OSError:\n    pid = -1\nif pid == 0:\n    os._exit(0)\n"
        "assert pid == -1, 'RLIMIT_NPROC is not enforced'\nassert os.getuid() != 0, 'the program runs as root'\n"
    ),
    "style": "asserts",
    "timeout": 10.0,
    "max_processes": 1,
}


def isolation_available() -> str:
    """The strongest isolation that works on this host: "bubblewrap", "setpriv" or "rlimits" (probed once).

    ``CODEPREF_SANDBOX_ISOLATION`` pins one (for tests, or to refuse to fall back: a pinned one that does not
    work makes every run an error saying why).
    """
    global _probed
    pinned = os.environ.get("CODEPREF_SANDBOX_ISOLATION", "").strip()
    if pinned:
        if pinned not in ISOLATIONS:
            raise ValueError(f"CODEPREF_SANDBOX_ISOLATION must be one of {', '.join(ISOLATIONS)}; got {pinned!r}")
        return pinned
    with _probe_lock:
        if _probed is None:
            _probed = "rlimits"
            for candidate in ("bubblewrap", "setpriv"):
                if _usable(candidate):
                    _probed = candidate
                    break
        return _probed


def _usable(isolation: str) -> bool:
    if isolation == "bubblewrap" and not os.access(BWRAP, os.X_OK):
        return False
    if isolation == "setpriv" and (os.geteuid() != 0 or not os.access(SETPRIV, os.X_OK)):
        return False
    try:
        if isolation == "bubblewrap":  # both ways of running under it: a warm sandbox and a cold one
            return all(run_program(**_PROBE, isolation=isolation, warm=warm).passed for warm in (True, False))
        return run_program(**_PROBE, isolation=isolation).passed
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------------
# One run


class _Capture:
    """The first and last ``limit`` bytes of a stream; the middle is counted and dropped."""

    def __init__(self, limit: int):
        self.limit = max(limit, 0)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]

    def text(self, note: str = "") -> str:
        """The capture decoded, at most ``limit`` bytes of it with ``note`` appended, the middle marked if cut."""
        note_bytes = note.encode()[: self.limit]
        budget = self.limit - len(note_bytes)
        if self.total <= budget:
            data = bytes(self.head) + bytes(self.tail)
        else:
            keep = max(budget - len(f"\n[... {self.total} bytes dropped ...]\n"), 0)
            head = bytes(self.head[: keep - keep // 2])
            rest = bytes(self.head[len(head) :]) + bytes(self.tail)  # a gap may sit inside; the end is exact
            tail = rest[len(rest) - keep // 2 :] if keep // 2 else b""
            data = head + f"\n[... {self.total - len(head) - len(tail)} bytes dropped ...]\n".encode() + tail
        # PostgreSQL text cannot hold NUL; the output is for people to read.
        return (data + note_bytes).decode("utf-8", "replace").replace("\x00", "\N{REPLACEMENT CHARACTER}")


def _job_fd(job: dict) -> int:
    blob = marshal.dumps(job)
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


def _limits(*, timeout: float, memory_mb: int, max_processes: int) -> list[tuple[str, int, int]]:
    cpu = math.ceil(timeout) + 1
    return [
        ("RLIMIT_CPU", cpu, cpu + 1),
        ("RLIMIT_AS", memory_mb << 20, memory_mb << 20),
        ("RLIMIT_FSIZE", FILE_SIZE_MB << 20, FILE_SIZE_MB << 20),
        ("RLIMIT_NPROC", max_processes, max_processes),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_NOFILE", MAX_OPEN_FILES, MAX_OPEN_FILES),
    ]


def _kill_uid(uid: int) -> None:
    """Kill every process of a run's uid, wherever it moved (setsid, double fork): only runs ever use it."""
    try:
        subprocess.run(
            [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "kill", "-KILL", "-1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        pass


def _kill_bwrap(proc: subprocess.Popen) -> None:
    """Kill a bubblewrap sandbox and reap it, pid 1 of its namespace first: bwrap then reaps its pid 1 (which
    takes the namespace down with it) and exits. Killing bwrap first would leave pid 1 an orphan, a zombie for
    the container's init to reap, and some inits (a Celery worker as pid 1) never do."""
    if proc.poll() is None:
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            children = []
        for child in children:
            try:
                os.kill(int(child), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        try:
            proc.wait(timeout=1.0 if children else 0)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # not reaped yet, so the group is still bwrap's
            except (ProcessLookupError, PermissionError):
                pass
    proc.wait()


def _exited(pid: int) -> bool:
    """Whether the child exited, without reaping it: its pid and group stay ours to signal."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _supervise(
    streams: dict[int, _Capture],
    deadline: float,
    *,
    done_fd: int,
    on_done: Callable[[], None],
    poll_done: Callable[[], bool] | None = None,
) -> tuple[bool, set[int]]:
    """Read the pipes until they close and the run is over, or the deadline. Returns (timed out, open fds).

    The run is over when ``done_fd`` turns readable (``on_done`` then reads it), or, where there is no such fd
    (a kernel without pidfd), when ``poll_done()`` says so.
    """
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    if done_fd >= 0:
        selector.register(done_fd, selectors.EVENT_READ)
    open_fds = set(streams)
    done_at: float | None = None
    timed_out = False
    try:
        while open_fds or done_at is None:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            wait = deadline - now
            if done_at is not None:
                if now >= done_at + EXIT_GRACE_SECONDS:
                    break  # something the program started still holds its output open
                wait = min(wait, done_at + EXIT_GRACE_SECONDS - now)
            if done_fd < 0:
                wait = min(wait, 0.02)
            for key, _ in selector.select(wait):
                if key.fd == done_fd:
                    selector.unregister(done_fd)
                    on_done()
                    done_at = time.monotonic()
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    streams[key.fd].add(chunk)
                else:
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
            if done_fd < 0 and done_at is None and poll_done is not None and poll_done():
                done_at = time.monotonic()
    finally:
        selector.close()
    return timed_out, open_fds


def _drain(streams: dict[int, _Capture], fds: set[int], seconds: float) -> None:
    """After the kill: what the dying processes still wrote, for a bounded time."""
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        end = time.monotonic() + seconds
        while selector.get_map() and time.monotonic() < end:
            for key, _ in selector.select(max(end - time.monotonic(), 0)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    streams[key.fd].add(chunk)
                else:
                    selector.unregister(key.fd)


def _verdict(report: bytes, *, nonce: bytes, expected_asserts: int) -> tuple[str | None, str]:
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


@dataclass
class _Ran:
    """What one launch left behind, for the verdict."""

    returncode: int | None
    timed_out: bool
    stdout: _Capture
    stderr: _Capture
    report: _Capture


def run_program(
    *,
    prompt: str,
    completion: str,
    tests: str,
    style: str = "humaneval",
    entry_point: str = "",
    timeout: float = 10.0,
    memory_mb: int = 1024,
    output_limit: int = 8192,
    max_processes: int = MAX_PROCESSES,
    isolation: str | None = None,
    warm: bool | None = None,
) -> RunResult:
    """Run ``prompt + completion`` and then its tests in a fresh sandbox, and return the trusted outcome.

    ``style="humaneval"``: ``tests`` defines ``check(candidate)``, called with ``entry_point``.
    ``style="asserts"``: ``tests`` is MBPP's assert lines (plus any setup statements), each counted.
    ``isolation`` and ``warm`` override what the host gives and ``CODEPREF_SANDBOX_WARM`` (for tests).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds; got {timeout}")
    isolation = isolation or isolation_available()
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}; got {isolation!r}")
    started = time.monotonic()
    try:
        chunks = split_tests(tests=tests, style=style, entry_point=entry_point)
    except ValueError as exc:
        return RunResult("error", time.monotonic() - started, "", f"[sandbox] {exc}\n", isolation, SANDBOX_VERSION)
    expected_asserts = sum(asserts for _, _, asserts in chunks)
    nonce = secrets.token_hex(16).encode()
    job = {
        "program": program_source(prompt=prompt, completion=completion, style=style),
        "tests": chunks,
        "limits": _limits(timeout=timeout, memory_mb=memory_mb, max_processes=max_processes),
        "nonce": nonce,
        "uid": None,
        "cwd": None,
        "shim": False,
        "report_fd": -1,
        "tmpfs_bytes": TMPFS_MB << 20,
    }
    uid = UID_BASE + random.randrange(UID_COUNT)
    ran = None
    if isolation == "bubblewrap" and os.geteuid() == 0 and (_warm_wanted() if warm is None else warm):
        ran = _run_warm(job, uid=uid, timeout=timeout, output_limit=output_limit)
    if ran is None:
        ran = _run_cold(job, isolation=isolation, uid=uid, deadline=started + timeout, output_limit=output_limit)
    if isinstance(ran, str):
        return RunResult("error", time.monotonic() - started, "", ran, isolation, SANDBOX_VERSION)
    duration = time.monotonic() - started

    outcome, problem = _verdict(bytes(ran.report.head), nonce=nonce, expected_asserts=expected_asserts)
    if outcome is None:
        cpu_killed = ran.returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
        if ran.timed_out or cpu_killed:
            outcome, problem = "timeout", f"killed after {'the CPU limit' if cpu_killed else f'{timeout:g} s'}"
        else:
            outcome, problem = "error", f"{problem} from the harness (exit status {ran.returncode}): not passed"
    note = f"\n[sandbox] {problem}\n" if problem else ""
    return RunResult(outcome, duration, ran.stdout.text(), ran.stderr.text(note), isolation, SANDBOX_VERSION)


def _run_cold(job: dict, *, isolation: str, uid: int, deadline: float, output_limit: int) -> _Ran | str:
    """A new sandbox for this one run: bwrap (or setpriv, or nothing) around a new interpreter."""
    python = [_python(), "-I", "-S", "-B"]
    workdir = None
    extra_fds: list[int] = []
    if isolation == "bubblewrap":
        prefix, extra_fds = _bwrap_launch()
        argv = prefix + python + [HARNESS_INSIDE]
        job["uid"] = uid if os.geteuid() == 0 else None
        job["shim"] = True  # pid 1 of the namespace
    else:
        workdir = tempfile.mkdtemp(prefix="codepref-sandbox-")
        job["cwd"] = workdir
        job["shim"] = isolation == "rlimits"
        argv = python + [str(HARNESS)]
        if isolation == "setpriv":
            os.chown(workdir, uid, uid)
            argv = [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"] + argv

    report_r, report_w = os.pipe()
    job["report_fd"] = report_w
    job_fd = _job_fd(job)
    proc = None
    try:
        try:
            proc = subprocess.Popen(
                argv + [str(job_fd)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(job_fd, report_w, *extra_fds),
                start_new_session=True,
                env=SANDBOX_ENV,
                cwd=workdir or "/",
            )
        except OSError as exc:
            return f"[sandbox] could not start the {isolation} sandbox: {exc}\n"
        finally:
            for fd in (job_fd, report_w, *extra_fds):
                os.close(fd)
        ran = _Ran(None, False, _Capture(output_limit), _Capture(output_limit), _Capture(4096))
        streams = {proc.stdout.fileno(): ran.stdout, proc.stderr.fileno(): ran.stderr, report_r: ran.report}
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            pidfd = -1
        try:
            ran.timed_out, still_open = _supervise(
                streams, deadline, done_fd=pidfd, on_done=lambda: None, poll_done=lambda: _exited(proc.pid)
            )
        finally:
            if pidfd >= 0:
                os.close(pidfd)
        if isolation == "bubblewrap":
            if ran.timed_out or still_open:
                _kill_bwrap(proc)
        else:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # not reaped yet, so the group is still this run's
            except (ProcessLookupError, PermissionError):
                pass
            if isolation == "setpriv":  # a daemon that left the group and closed its output is still this uid
                _kill_uid(uid)
        _drain(streams, still_open, 1.0)
        ran.returncode = proc.wait()
        return ran
    finally:
        os.close(report_r)
        if proc is not None:
            proc.stdout.close()
            proc.stderr.close()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Warm sandboxes: one bwrap + interpreter serves many runs, each forked with its own namespaces and uid


def _warm_wanted() -> bool:
    return os.environ.get("CODEPREF_SANDBOX_WARM", "1").strip().lower() not in ("0", "false", "no", "off")


class _WarmSandbox:
    """A bwrap sandbox whose pid 1 is the harness in ``--serve`` mode, and the socket that drives it."""

    def __init__(self):
        prefix, extra_fds = _bwrap_launch()
        argv = prefix + [_python(), "-I", "-S", "-B", HARNESS_INSIDE]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                argv + ["--serve", str(theirs.fileno())],
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
        _kill_bwrap(self.proc)
        self.ctl.close()


class _WarmPool:
    """Idle warm sandboxes of this process. They are started from one long-lived thread because bwrap's
    --die-with-parent follows the thread that started it: started from a run_many thread, a sandbox would die
    with that thread."""

    def __init__(self):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.idle: list[_WarmSandbox] = []
        self.broken = ""
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")

    def checkout(self) -> _WarmSandbox | None:
        with self.lock:
            if self.broken:
                return None
            if self.idle:
                return self.idle.pop()
        try:
            return self.spawner.submit(_WarmSandbox).result()
        except OSError as exc:
            with self.lock:
                self.broken = str(exc)  # runs go on, one cold sandbox each
            return None

    def checkin(self, box: _WarmSandbox) -> None:
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


_warm_pools: dict[str, _WarmPool] = {}
_warm_lock = threading.Lock()


def _warm_pool() -> _WarmPool:
    with _warm_lock:
        pool = _warm_pools.get("pool")
        if pool is None or pool.pid != os.getpid():
            if pool is not None:
                pool.forget()
            pool = _warm_pools["pool"] = _WarmPool()
        return pool


def _run_warm(job: dict, *, uid: int, timeout: float, output_limit: int) -> _Ran | None:
    """Run in a warm sandbox; None when there is none to be had (the caller then starts a cold one)."""
    pool = _warm_pool()
    job["uid"] = uid  # the runner drops to it; the sandbox kills what is left of it after the run
    for _attempt in range(2):
        box = pool.checkout()
        if box is None:
            return None
        report_r, report_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        job_fd = _job_fd(job)
        try:
            socket.send_fds(box.ctl, [b"run %d" % uid], [job_fd, out_w, err_w, report_w])
            sent = True
        except OSError:
            sent = False
        finally:
            for fd in (job_fd, out_w, err_w, report_w):
                os.close(fd)
        if not sent:  # the sandbox died while idle: another one
            for fd in (report_r, out_r, err_r):
                os.close(fd)
            box.close()
            continue
        deadline = time.monotonic() + timeout  # from the hand-over: starting a sandbox is not the run's time
        ran = _Ran(None, False, _Capture(output_limit), _Capture(output_limit), _Capture(4096))
        streams = {out_r: ran.stdout, err_r: ran.stderr, report_r: ran.report}

        def on_done(box: _WarmSandbox = box, ran: _Ran = ran) -> None:
            try:
                message = box.ctl.recv(64)
            except OSError:
                message = b""  # the sandbox died: no exit status, and the sandbox is not reused
            if message.startswith(b"done "):
                ran.returncode = int(message[5:])

        try:
            ran.timed_out, still_open = _supervise(streams, deadline, done_fd=box.ctl.fileno(), on_done=on_done)
            if ran.timed_out or still_open or ran.returncode is None:
                box.close()  # the whole sandbox goes, and whatever still runs in it
                _drain(streams, still_open, 1.0)
            else:
                pool.checkin(box)
        finally:
            for fd in streams:
                os.close(fd)
        return ran
    return None


def run_many(jobs: Iterable[dict], *, workers: int | None = None) -> list[RunResult]:
    """``run_program(**job)`` for every job, ``workers`` at a time (default: one per CPU); results in order."""
    jobs = list(jobs)
    if not jobs:
        return []
    workers = workers or len(os.sched_getaffinity(0))
    isolation_available()  # probe once, before the threads race to do it
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))), thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda job: run_program(**job), jobs))
