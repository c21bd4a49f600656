"""Run untrusted Python against its unit tests, and return a verdict that the program cannot forge by exiting.

Used by the platform (feedback/coders/verdicts.py stores the outcome on each Completion) and by training (rewards,
pass@k), so it imports nothing from Django::

    from training.sandbox import SandboxJob, run_many, run_program
    result = run_program(SandboxJob(prompt=p, completion=c, tests=t, entry_point="add"))  # HumanEval: check(add)
    result = run_program(SandboxJob(prompt="", completion=c, tests=asserts, style="asserts"))  # MBPP asserts
    result.outcome  # "passed" | "failed" | "error" | "timeout"; result.isolation says what contained it
    result.verdict_strength  # "strong": judged here from the outputs; "weak": the in-process report
    results = run_many(jobs, workers=4)  # in the order of the jobs

Modules: ``job`` (SandboxJob, RunResult, SANDBOX_VERSION), ``run`` (one run, many runs), ``probe`` (the
isolation this host gives), ``isolation`` (bwrap's arguments, seccomp, killing leftovers), ``cold`` and
``warm`` (a sandbox per run, or a pool of sandboxes serving many), ``streams`` (reading a run's pipes),
``protocol`` (the job handed to the harness, the report read back), ``program`` (program and test chunks),
``limits``, ``cgroups`` (a cgroup per run or per warm sandbox), ``calls``, ``values`` and ``judge`` (the strong
verdict), and ``harness`` (the runner inside the sandbox).

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
    keyring, eBPF, perf, userfaultfd and io_uring, SysV IPC and memfd_create. The probe checks that a fork beyond
    the limit fails and that the program is not root.
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

Memory that ``RLIMIT_AS`` does not count (tmpfs, memfd, SysV shared memory: 2.5 GB each held under a 1 GB limit
before this) is closed two ways. The seccomp filter (bwrap's, or under setpriv and rlimits the harness's own,
installed after it dropped privileges) refuses SysV IPC and ``memfd_create``; and where the host lets us make
cgroups (``cgroups.py``: v2, else v1; probed once; ``CODEPREF_SANDBOX_CGROUP=0`` turns them off) a run is in a
cgroup limiting memory (``memory_mb``, everything charged), processes (which ``RLIMIT_NPROC`` does not hold
for root) and, where ``CODEPREF_SANDBOX_CGROUP_CPUS`` asks, CPU. A cold run gets a cgroup of its own, which
the harness joins through an inherited ``cgroup.procs`` descriptor before anything else; a warm sandbox lives
in one, set to each run's limits before the hand-over. A run that the memory limit killed is an error.
``RunResult.details["limits"]`` says which limits held (``{"memory": "cgroup v1 + RLIMIT_AS", ...,
"cgroup": "v1", "seccomp": ...}``, or ``"cgroup": "none: why"``) and ``details["cgroup_events"]`` what they
did (``oom_kills``, ``forks_refused``).

The verdict: strong where the tests allow it, weak where not
-------------------------------------------------------------
*Strong* (``calls.py``, ``values.py``, ``judge.py``): tests that can be expressed as calls of the function
with literal arguments and checks of the returned values against literals (HumanEval's ``check(candidate)``
and MBPP's asserts mostly are, as EvalPlus parses them) are split on the host into calls and checks. The
sandboxed process receives the calls only, computes the outputs and writes them back as tagged JSON (no
pickle); the host decodes them and evaluates each assert's expression itself. The expected values never enter
the sandbox, and a type of the program's own (an ``__eq__`` that always says yes) is not encoded at all, so
nothing the program does in its process (gc, frames, patched builtins, a forged report) makes a pass: only
returning the values the tests expect does. ``RunResult.verdict_strength == "strong"``.

*Weak*: the tests' code runs in the harness's process beside the program (loops, helpers, expected values
computed by code). The harness (harness.py here, read-only inside the sandbox) receives its job through an
inherited file descriptor that it closes before any untrusted code runs: the program, the test chunks, the
limits, and a per-run random nonce. It runs the program, then each test chunk (HumanEval: the test code, then
``check(entry_point)``; MBPP: every top-level assert separately, so the asserts executed are counted), and only
after the last chunk writes one line to a pipe whose number the program is not told:
``codepref-sandbox-report <nonce> <status> <phase> <asserts run>``. The host counts a pass only when that
pipe holds exactly that one line, with the right nonce, from the tests phase, with every expected assert
counted. The exit status and stdout are never read for the verdict. Hence, on both paths:

- ``os._exit(0)``, ``sys.exit(0)`` (caught as an error), a crash, ``kill(getppid())``: no report, not passed.
- printing "passed" or a fake report, on stdout or on any descriptor it finds: no nonce, not passed.
- forking: a forked copy of the harness carries the nonce, but the harness reports only from its original pid,
  and two report lines void the verdict.
- patching ``builtins.exec``/``compile``/``os.write`` or leaving a trace hook: the harness bound its own
  references before the program ran and clears trace and profile hooks before the tests.

What the weak path does not stop: code written against this harness can find its state in memory (a few
lines of ``gc.get_objects()`` swap the test chunks for ``pass``) and forge a pass. The isolation still
contains it; only the verdict is lost. So weak verdicts decide no pair (``decided_by_tests``), are no
online-RL reward, and are labelled in the evaluate stage's results. Tests are also only as strong as they
are: a hard-coded answer passes a test that checks one input, on either path.
"""

from training.sandbox.calls import verdict_strength
from training.sandbox.job import ISOLATIONS, OUTCOMES, SANDBOX_VERSION, RunResult, SandboxJob
from training.sandbox.probe import isolation_available
from training.sandbox.program import program_source, split_tests
from training.sandbox.runner import run_many, run_program

__all__ = [
    "ISOLATIONS",
    "OUTCOMES",
    "SANDBOX_VERSION",
    "RunResult",
    "SandboxJob",
    "isolation_available",
    "program_source",
    "run_many",
    "run_program",
    "split_tests",
    "verdict_strength",
]
