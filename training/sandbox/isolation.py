"""How each isolation is built on this host: bubblewrap's arguments and seccomp filter, the interpreter it
needs, and killing what a run leaves behind (a bwrap, or every process of a run's uid)."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from training.sandbox.limits import TMPFS_MB

HARNESS = Path(__file__).with_name("harness.py")
HARNESS_INSIDE = "/codepref-harness.py"
BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


# Uids handed to runs: high enough that no account or image user has them. Two runs must never hold one at the
# same time: under setpriv a run's clean-up kills every process of its uid on the host, a concurrent run's too
# (which then ends with "no report from the harness (exit status -9)"), and the two would share one
# RLIMIT_NPROC budget. So a run leases its uid (``leased_uid``), drawn from the OS's randomness: the module
# ``random`` is seeded alike by every evaluation (transformers.set_seed(42)), and two evaluations on one host
# drew the same uids in the same order (bench/README.md, "The sandbox's uids").
UID_BASE = 200_000
UID_COUNT = 100_000
UID_LEASE_TRIES = 64
_uid_source = random.SystemRandom()


class NoFreeUid(OSError):
    pass


def draw_uid() -> int:
    return UID_BASE + _uid_source.randrange(UID_COUNT)


@contextlib.contextmanager
def leased_uid() -> Iterator[int]:
    """A run's uid, held by no other run on this host until the block ends: the lease is an abstract unix
    socket named for the uid (one network namespace, the host's: every sandbox of this machine is started from
    it), which the kernel frees when its holder closes it or dies, so a crashed host process leaks nothing.
    Elsewhere than Linux (no abstract sockets; no uid is dropped to there either) the uid is only drawn."""
    if not sys.platform.startswith("linux"):
        yield draw_uid()
        return
    for _ in range(UID_LEASE_TRIES):
        uid = draw_uid()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as holder:
            try:
                holder.bind(f"\0codepref-sandbox-uid-{uid}")
            except OSError:  # another run holds it
                continue
            yield uid
            return
    raise NoFreeUid(errno.EAGAIN, f"no free sandbox uid in {UID_LEASE_TRIES} draws")


def interpreter() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def harness_argv(harness: str) -> list[str]:
    """The interpreter on the harness, isolated from the environment and site-packages, writing no bytecode."""
    return [interpreter(), "-I", "-S", "-B", harness]


def _interpreter_dirs() -> list[str]:
    """Folders outside /usr that the interpreter needs: its prefix (a pyenv or /opt build)."""
    python = interpreter()
    dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    if not any(python.startswith(d + os.sep) for d in dirs):
        dirs.add(os.path.dirname(python))
    return sorted(d for d in dirs if d != "/usr" and not d.startswith("/usr/"))


# Syscalls a test program has no use for, refused by a seccomp filter (bwrap's under bubblewrap, the harness's
# own under setpriv and rlimits): creating user namespaces (clone/unshare with CLONE_NEWUSER: a uid-less program
# would get capabilities in one, and with them much more of the kernel to attack), joining namespaces, the
# kernel keyring, eBPF, perf, userfaultfd and io_uring; and memory that RLIMIT_AS does not count: SysV shared
# memory, semaphores and message queues, memfd_create and memfd_secret (2.5 GB held through each under a 1 GB
# limit, before this filter). clone3 answers ENOSYS, because its flags sit in a struct a filter cannot read;
# glibc then falls back to clone.
_SYSCALLS = {
    # machine: (audit arch, x32 bit or 0, clone, unshare, clone3, refused, refused as memory outside RLIMIT_AS)
    "x86_64": (
        0xC000003E,
        0x40000000,
        56,
        272,
        435,
        (308, 248, 249, 250, 321, 298, 323, 425, 426, 427),  # setns, keyring, bpf, perf, userfaultfd, io_uring
        (29, 30, 31, 67, 64, 65, 66, 220, 68, 69, 70, 71)  # shm{get,at,ctl,dt}, sem{get,op,ctl,timedop}, msg*
        + (319, 447),  # memfd_create, memfd_secret
    ),
    "aarch64": (
        0xC00000B7,
        0,
        220,
        97,
        435,
        (268, 217, 218, 219, 280, 241, 282, 425, 426, 427),
        (194, 195, 196, 197, 190, 191, 192, 193, 186, 187, 188, 189) + (279, 447),
    ),
}
_CLONE_NEWUSER = 0x10000000


def seccomp_filter(*, refuse_memory: bool = True) -> bytes | None:
    """The classic-BPF program for ``bwrap --seccomp`` and the harness, or None on a machine without a table
    here. ``refuse_memory=False`` lets SysV IPC and memfd through (for tests of the cgroup behind it)."""
    table = _SYSCALLS.get(os.uname().machine)
    if table is None:
        return None
    arch, x32_bit, clone, unshare, clone3, refused, memory = table
    refused = refused + memory if refuse_memory else refused
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


_bwrap_args: list[str] | None = None  # built once per process


def bwrap_launch() -> tuple[list[str], list[int]]:
    """bwrap's arguments up to the command, and the fds they name (the caller passes, then closes them)."""
    global _bwrap_args
    if _bwrap_args is None:
        _bwrap_args = _bwrap_prefix(as_root=os.geteuid() == 0)
    seccomp = _seccomp_fd()
    if seccomp is None:
        return _bwrap_args, []
    return _bwrap_args[:-1] + ["--seccomp", str(seccomp), "--"], [seccomp]


def kill_uid(uid: int) -> None:
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


def kill_bwrap(proc: subprocess.Popen) -> None:
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
