"""A cgroup per run, where this host lets us make one: memory (tmpfs, memfd and SysV shared memory included,
which RLIMIT_AS does not count), processes (which RLIMIT_NPROC does not hold for root) and, where
``CODEPREF_SANDBOX_CGROUP_CPUS`` asks for it, CPU.

Probed once per process (``cgroup_support``): cgroup v2 when a writable v2 hierarchy can give its children
the memory and pids controllers (our own cgroup, or its parent when ours holds processes and the parent
already delegates them, as a container entry point that moved itself into a leaf does); else cgroup v1's
memory, pids and cpu hierarchies where they are writable; else none, and the run's ``limits`` say so.
The harness joins the run's cgroup through inherited ``cgroup.procs`` descriptors before any untrusted code
runs (the kernel checks a write against the opener's credentials), so the whole run is inside it.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field

from training.sandbox.limits import cgroup_cpus

V1_ROOT = "/sys/fs/cgroup"
GROUP = "codepref-sandbox"
CPU_PERIOD_US = 100_000


@dataclass
class Support:
    version: int  # 2, 1, or 0 (none)
    bases: dict[str, str] = field(default_factory=dict)  # controller -> the folder runs' cgroups go under
    why: str = ""


_lock = threading.Lock()
_support: Support | None = None


def cgroup_support() -> Support:
    """What this host gives (probed once; ``CODEPREF_SANDBOX_CGROUP=0`` turns cgroups off)."""
    global _support
    with _lock:
        if _support is None:
            if os.environ.get("CODEPREF_SANDBOX_CGROUP", "1").strip().lower() in ("0", "false", "no", "off"):
                _support = Support(0, why="turned off by CODEPREF_SANDBOX_CGROUP")
            elif os.geteuid() != 0:
                _support = Support(0, why="not root")
            else:
                _support = _probe_v2() or _probe_v1() or Support(0, why="no writable cgroup hierarchy")
                _sweep(_support)
        return _support


STALE_SECONDS = 600


def _sweep(support: Support) -> None:
    """Remove run cgroups that processes gone before us left (killed before they could): only empty ones
    can be removed at all, and only old ones are tried, so that one just made for a starting run is left."""
    now = time.time()
    for base in set(support.bases.values()):
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.name.startswith("run-") and now - entry.stat().st_mtime > STALE_SECONDS:
                    os.rmdir(entry.path)
            except OSError:
                pass


def _controllers() -> tuple[str, ...]:
    return ("memory", "pids", "cpu") if cgroup_cpus() > 0 else ("memory", "pids")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _v2_mount() -> str | None:
    try:
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                left, _, right = line.partition(" - ")
                if right.split(" ")[0] == "cgroup2":
                    return left.split(" ")[4]
    except OSError:
        pass
    return None


def _own_path(controller: str) -> str | None:
    """Our cgroup's path in a hierarchy: "" names v2's, else a v1 controller."""
    try:
        with open("/proc/self/cgroup") as handle:
            for line in handle:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controller in controllers.split(","):
                    return path
    except (OSError, ValueError):
        pass
    return None


def _probe_v2() -> Support | None:
    mount, own = _v2_mount(), _own_path("")
    if mount is None or own is None:
        return None
    own_dir = os.path.normpath(mount + own)
    for parent in (own_dir, os.path.dirname(own_dir)):
        if not parent.startswith(mount):
            break
        try:
            controllers = open(os.path.join(parent, "cgroup.controllers")).read().split()
            if not {"memory", "pids"} <= set(controllers):
                continue
            wanted = " ".join(f"+{c}" for c in _controllers() if c in controllers)
            if parent == own_dir:
                _write(os.path.join(parent, "cgroup.subtree_control"), wanted)
            elif not {"memory", "pids"} <= set(open(os.path.join(parent, "cgroup.subtree_control")).read().split()):
                continue
            base = os.path.join(parent, GROUP)
            os.makedirs(base, exist_ok=True)
            _write(os.path.join(base, "cgroup.subtree_control"), wanted)
            support = Support(2, {c: base for c in _controllers() if c in controllers})
            RunCgroup.create(support, memory_bytes=64 << 20, max_processes=4, cpus=1.0).remove()
            return support
        except OSError:
            continue
    return None


def _probe_v1() -> Support | None:
    bases = {}
    for controller in _controllers():
        own = _own_path(controller)
        root = os.path.join(V1_ROOT, controller)
        if own is None or not os.path.isdir(root):
            continue
        base = os.path.join(os.path.normpath(root + own), GROUP)
        try:
            os.makedirs(base, exist_ok=True)
        except OSError:
            continue
        bases[controller] = base
    if not {"memory", "pids"} <= set(bases):
        return None
    support = Support(1, bases)
    try:
        RunCgroup.create(support, memory_bytes=64 << 20, max_processes=4, cpus=1.0).remove()
    except OSError:
        return None
    return support


@dataclass
class RunCgroup:
    """One run's cgroup (one folder under v2, one per controller under v1)."""

    version: int
    dirs: dict[str, str]

    @classmethod
    def create(cls, support: Support, *, memory_bytes: int, max_processes: int, cpus: float) -> RunCgroup:
        name = f"run-{uuid.uuid4().hex[:16]}"
        dirs = {c: os.path.join(base, name) for c, base in support.bases.items()}
        made = cls(support.version, {})
        try:
            for controller, path in dirs.items():
                if path not in made.dirs.values():
                    os.mkdir(path)
                made.dirs[controller] = path
            made._limit(memory_bytes=memory_bytes, max_processes=max_processes, cpus=cpus)
        except OSError:
            made.remove()
            raise
        return made

    def set_limits(self, *, memory_bytes: int, max_processes: int, cpus: float) -> None:
        """Limits for the next run of a warm sandbox's cgroup (OSError when memory in use exceeds them)."""
        self._limit(memory_bytes=memory_bytes, max_processes=max_processes, cpus=cpus)

    def reset_peak(self) -> None:
        """v1's peak back to the current use, so that the next reading is the next run's (v2's stays the
        sandbox's)."""
        if self.version == 1 and "memory" in self.dirs:
            _try_write(os.path.join(self.dirs["memory"], "memory.max_usage_in_bytes"), "0")

    def _limit(self, *, memory_bytes: int, max_processes: int, cpus: float) -> None:
        quota = max(int(cpus * CPU_PERIOD_US), 1000)
        if self.version == 2:
            path = self.dirs["memory"]
            _write(os.path.join(path, "memory.max"), str(memory_bytes))
            _try_write(os.path.join(path, "memory.swap.max"), "0")
            _write(os.path.join(path, "pids.max"), str(max_processes))
            if "cpu" in self.dirs:
                _write(os.path.join(path, "cpu.max"), f"{quota} {CPU_PERIOD_US}")
            return
        if "memory" in self.dirs:  # memory <= memory+swap at every step: raising, the latter goes first
            memsw = os.path.join(self.dirs["memory"], "memory.memsw.limit_in_bytes")
            _try_write(memsw, str(memory_bytes))
            _write(os.path.join(self.dirs["memory"], "memory.limit_in_bytes"), str(memory_bytes))
            _try_write(memsw, str(memory_bytes))
        if "pids" in self.dirs:
            _write(os.path.join(self.dirs["pids"], "pids.max"), str(max_processes))
        if "cpu" in self.dirs:
            _write(os.path.join(self.dirs["cpu"], "cpu.cfs_period_us"), str(CPU_PERIOD_US))
            _write(os.path.join(self.dirs["cpu"], "cpu.cfs_quota_us"), str(quota))

    def held(self) -> dict[str, str]:
        return {c: f"cgroup v{self.version}" for c in ("memory", "pids", "cpu") if c in self.dirs}

    def procs_fds(self) -> list[int]:
        """Write-only descriptors of each distinct ``cgroup.procs``, for the harness to join (caller closes)."""
        return [os.open(os.path.join(p, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC) for p in self._distinct()]

    def _distinct(self) -> list[str]:
        return list(dict.fromkeys(self.dirs.values()))

    def events(self) -> dict[str, int]:
        """What the limits did: memory kills and peak, forks refused (counters since the cgroup was made)."""
        out: dict[str, int] = {}
        if self.version == 2:
            out["oom_kills"] = _key(os.path.join(self.dirs["memory"], "memory.events"), "oom_kill")
            out["memory_peak"] = _number(os.path.join(self.dirs["memory"], "memory.peak"))
            out["forks_refused"] = _key(os.path.join(self.dirs["pids"], "pids.events"), "max")
        else:
            out["oom_kills"] = _key(os.path.join(self.dirs["memory"], "memory.oom_control"), "oom_kill")
            out["memory_peak"] = _number(os.path.join(self.dirs["memory"], "memory.max_usage_in_bytes"))
            out["memory_limit_hits"] = _number(os.path.join(self.dirs["memory"], "memory.failcnt"))
            out["forks_refused"] = _key(os.path.join(self.dirs["pids"], "pids.events"), "max")
        return {k: v for k, v in out.items() if v >= 0}

    def kill(self) -> None:
        """Kill everything still in the cgroup (cgroup.kill where the kernel has it)."""
        if self.version == 2 and _try_write(os.path.join(self.dirs["memory"], "cgroup.kill"), "1"):
            return
        for _ in range(50):
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def _pids(self) -> list[int]:
        pids: set[int] = set()
        for path in self._distinct():
            try:
                pids |= {int(p) for p in open(os.path.join(path, "cgroup.procs")).read().split()}
            except (OSError, ValueError):
                pass
        return sorted(pids)

    def remove(self) -> None:
        """Remove the cgroup, once its processes are gone (a few tries: exiting tasks leave it late)."""
        for path in self._distinct():
            for attempt in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or attempt == 99:
                        break
                    if attempt == 10:
                        self.kill()
                    time.sleep(0.01)


def _try_write(path: str, text: str) -> bool:
    try:
        _write(path, text)
        return True
    except OSError:
        return False


def _number(path: str) -> int:
    try:
        return int(open(path).read().split()[0])
    except (OSError, ValueError, IndexError):
        return -1


def _key(path: str, key: str) -> int:
    try:
        for line in open(path):
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return -1
