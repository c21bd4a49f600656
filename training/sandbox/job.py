"""One sandbox run, typed: the job (a program, its tests, its limits, where to run it) and its result."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.sandbox.limits import MAX_PROCESSES

# Bump whenever the harness, the limits or the isolation could change a verdict: stored outcomes with another
# version are re-run by ``manage.py run_tests --all``. 2.1: a run's uid is leased (training/sandbox/isolation.py);
# under setpriv, runs of two processes seeded alike had killed each other, stored as "error".
SANDBOX_VERSION = "2.1"

OUTCOMES = ("passed", "failed", "error", "timeout")
ISOLATIONS = ("bubblewrap", "setpriv", "rlimits")


@dataclass(frozen=True)
class SandboxJob:
    """``prompt + completion``, then its tests, in a fresh sandbox.

    ``style="humaneval"``: ``tests`` defines ``check(candidate)``, called with ``entry_point``.
    ``style="asserts"``: ``tests`` is MBPP's assert lines (plus any setup statements), each counted.
    A bad style or entry point is not refused here: the run reports it as an "error" outcome, like any other
    broken test data. ``isolation`` and ``warm`` override what the host gives and ``CODEPREF_SANDBOX_WARM``
    (for tests and benches), and ``strong=False`` the in-process verdict.
    """

    prompt: str
    completion: str
    tests: str
    style: str = "humaneval"
    entry_point: str = ""
    timeout: float = 10.0  # seconds of wall clock, from the hand-over to the sandbox
    memory_mb: int = 1024  # address space
    output_limit: int = 8192  # bytes kept of stdout and of stderr each, head and tail
    max_processes: int = MAX_PROCESSES
    isolation: str | None = None
    warm: bool | None = None
    strong: bool = True  # judge outside the sandbox where the tests allow it; False forces the weak path

    def __post_init__(self):
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive seconds; got {self.timeout}")
        if self.isolation is not None and self.isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}; got {self.isolation!r}")


@dataclass(frozen=True)
class RunResult:
    outcome: str  # "passed" | "failed" | "error" | "timeout"
    duration: float  # seconds, wall clock, start-up of the sandbox included
    stdout: str
    stderr: str
    isolation: str  # "bubblewrap" | "setpriv" | "rlimits"
    sandbox_version: str
    # "strong": the sandbox returned outputs and the host judged them (calls.py); "weak": the harness's
    # in-process report decided, which code written against the harness can forge.
    verdict_strength: str = "weak"
    details: dict = field(default_factory=dict)  # "limits": which limits held; "cgroup_events"; "calls"

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"
