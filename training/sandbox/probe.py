"""Which isolation this host gives: the strongest one under which a real probe job runs as it must."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

from training.sandbox.isolation import BWRAP, SETPRIV
from training.sandbox.job import ISOLATIONS, SandboxJob
from training.sandbox.run import run_isolated

_probe_lock = threading.Lock()
_probed: str | None = None

# A fork beyond RLIMIT_NPROC=1 must fail, and the program must not run as root.
_PROBE = SandboxJob(
    prompt="import os\n",
    completion="",
    tests=(
        "try:\n    pid = os.fork()\nexcept OSError:\n    pid = -1\nif pid == 0:\n    os._exit(0)\n"
        "assert pid == -1, 'RLIMIT_NPROC is not enforced'\nassert os.getuid() != 0, 'the program runs as root'\n"
    ),
    style="asserts",
    timeout=10.0,
    max_processes=1,
)


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
            return all(run_isolated(replace(_PROBE, warm=warm), isolation).passed for warm in (True, False))
        return run_isolated(_PROBE, isolation).passed
    except OSError:
        return False
