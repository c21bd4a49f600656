"""The sandbox (training/sandbox/): correct solutions pass, wrong ones fail, and the escape corpus neither
passes nor harms the host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from training import sandbox
from training.sandbox import SANDBOX_VERSION, SandboxJob, isolation_available, run_many, run_program
from training.sandbox import isolation as sandbox_isolation
from training.sandbox import run as sandbox_run
from training.sandbox.cgroups import cgroup_support
from training.sandbox.isolation import BWRAP, SETPRIV, UID_BASE
from training.sandbox.protocol import read_report
from training.sandbox.warm import current_pool

IN_CI = os.environ.get("CI", "").lower() == "true"

# --- prompts written for these tests: (prompt, tests, style, entry point, correct, wrong) ----------------------
PROMPTS = {
    "add": (
        'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
        "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
        "humaneval",
        "add",
        "    return a + b\n",
        "    return a - b\n",
    ),
    "vowels": (
        'def count_vowels(text: str) -> int:\n    """How many of a, e, i, o, u (any case) the text has."""\n',
        "def check(candidate):\n    assert candidate('Hello') == 2\n    assert candidate('') == 0\n"
        "    assert candidate('AEIOUxyz') == 5\n",
        "humaneval",
        "count_vowels",
        "    return sum(1 for c in text.lower() if c in 'aeiou')\n",
        "    return sum(1 for c in text if c in 'aeiou')\n",  # forgets upper case
    ),
    "flatten": (
        "from typing import List\n\n\ndef flatten(rows: List[List[int]]) -> List[int]:\n"
        '    """All elements of the rows, in order."""\n',
        "METADATA = {}\n\n\ndef check(candidate):\n    assert candidate([]) == []\n"
        "    assert candidate([[1, 2], [], [3]]) == [1, 2, 3]\n",
        "humaneval",
        "flatten",
        "    return [x for row in rows for x in row]\n",
        "    return [row[0] for row in rows if row]\n",
    ),
    "similar": (
        "Write a function to find the shared elements of two tuples, as a sorted tuple.",
        "assert similar_elements((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)\n"
        "assert similar_elements((1, 2, 3, 4), (5, 4, 3, 7)) == (3, 4)\n",
        "asserts",
        "",
        "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))\n",
        "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n",
    ),
    "square_sum": (
        "def square_sum(n):\n",
        "import math\nassert square_sum(2) == 5\nassert square_sum(3) == 14\nassert math.isclose(square_sum(0), 0)\n",
        "asserts",
        "",
        "    return sum(i * i for i in range(1, n + 1))\n",
        "    return sum(i for i in range(1, n + 1))\n",
    ),
    "first_repeated": (
        "Write a python function to find the first repeated character in a string, or 'None'.",
        "assert first_repeated_char('abcabc') == 'a'\nassert first_repeated_char('abc') == 'None'\n"
        "assert first_repeated_char('123123') == '1'\n",
        "asserts",
        "",
        "def first_repeated_char(s):\n    seen = set()\n    for c in s:\n        if c in seen:\n            return c\n"
        "        seen.add(c)\n    return 'None'\n",
        "def first_repeated_char(s):\n    return s[0] if s else 'None'\n",
    ),
}


CORRECT = PROMPTS["add"][4]
WRONG = PROMPTS["add"][5]

# Finds the harness's list of test chunks and replaces it with one "pass" chunk carrying the expected assert
# count; finds the list of calls (strong path) and empties it. Judged in process, this wrong solution passes.
GC_FORGERY = """import gc
for o in gc.get_objects():
    if type(o) is list and o and all(type(t) is tuple and len(t) == 3 for t in o):
        if all(type(t[0]) is str and type(t[2]) is int for t in o):
            o[:] = [("pass\\n", 1, sum(t[2] for t in o))]
        elif all(type(t[0]) is str and type(t[1]) is tuple for t in o):
            o[:] = []
"""
# 2.5 GB that RLIMIT_AS never sees: memfds written through write() (each under the 16 MB file size limit), and
# SysV segments attached, filled and detached 64 MB at a time.
MEMFD_HOG = """import os
fds = [os.memfd_create("hog") for _ in range(160)]
for fd in fds:
    os.write(fd, b"x" * (15 << 20))
"""
SHM_HOG = """import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
for _ in range(40):
    shmid = libc.shmget(0, 64 << 20, 0o1600)
    if shmid < 0:
        raise PermissionError(ctypes.get_errno(), "shmget")
    addr = libc.shmat(shmid, None, 0)
    ctypes.memset(addr, 1, 64 << 20)
    libc.shmdt(addr)
"""


def sysv_segments() -> int:
    """SysV shared memory segments in this (the host's) IPC namespace."""
    return len(Path("/proc/sysvipc/shm").read_text().splitlines()) - 1


def job(name: str, completion: str | None = None, **options) -> SandboxJob:
    prompt, tests, style, entry_point, correct, _ = PROMPTS[name]
    completion = correct if completion is None else completion
    base = SandboxJob(prompt=prompt, completion=completion, tests=tests, style=style, entry_point=entry_point)
    return replace(base, **options)


def run(name: str, completion: str | None = None, **options) -> sandbox.RunResult:
    return run_program(job(name, completion, **options))


def bwrap_works() -> bool:
    """Independently of the module: can bubblewrap make a network namespace here?"""
    if not os.access(BWRAP, os.X_OK):
        return False
    command = [BWRAP, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "/usr/bin/true"]
    if os.geteuid() != 0:
        command.insert(1, "--unshare-user")
    return subprocess.run(command, capture_output=True).returncode == 0


ISOLATION = isolation_available()
BUBBLEWRAP = ISOLATION == "bubblewrap"
needs_bubblewrap = pytest.mark.skipif(not BUBBLEWRAP, reason=f"needs bubblewrap; this host gives {ISOLATION}")
contained = pytest.mark.skipif(ISOLATION == "rlimits", reason="rlimits alone cannot keep the program off the host")


def uid_processes(uid: int) -> list[int]:
    """Live processes of a uid (zombies already killed, waiting for an init to reap them, do not count)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and f"\nUid:\t{uid}\t" in status and "\nState:\tZ" not in status:
            pids.append(int(entry.name))
    return pids


def no_processes_left(uid: int, within: float = 2.0) -> bool:
    end = time.monotonic() + within
    while uid_processes(uid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


# --- the verdict on honest programs ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROMPTS)
def test_a_correct_solution_passes_and_a_wrong_one_fails(name):
    right, wrong = run_many([job(name), job(name, PROMPTS[name][5])], workers=2)
    assert (right.outcome, wrong.outcome) == ("passed", "failed"), (right.stderr, wrong.stderr)
    assert right.passed and not wrong.passed
    assert right.isolation == ISOLATION
    assert right.sandbox_version == SANDBOX_VERSION
    assert "AssertionError" in wrong.stderr


def test_a_syntax_error_or_a_crash_at_import_is_an_error_not_a_failure():
    broken, crash = run_many([job("add", "    return a +\n"), job("add", "    return a + b\nraise ValueError('x')\n")])
    assert broken.outcome == "error" and "SyntaxError" in broken.stderr
    assert crash.outcome == "error" and "ValueError: x" in crash.stderr


def test_an_exception_inside_the_candidate_fails_the_tests():
    result = run("add", "    raise TypeError('no')\n")
    assert result.outcome == "failed"
    assert "TypeError: no" in result.stderr


def test_stdout_and_stderr_are_captured():
    result = run(
        "add", "    import sys\n    print('out', a)\n    print('err', b, file=sys.stderr)\n    return a + b\n"
    )
    assert result.passed
    assert result.stdout == "out 2\nout -1\n"
    assert result.stderr == "err 3\nerr 1\n"


def test_a_flood_of_output_is_truncated_to_the_limit_and_still_passes():
    completion = "    return a + b\nfor i in range(300000):\n    print('line', i)\n"
    result = run("add", completion, output_limit=1000)
    assert result.passed
    assert len(result.stdout.encode()) <= 1000
    assert result.stdout.startswith("line 0\nline 1\n")
    assert result.stdout.endswith("line 299999\n")
    assert "bytes dropped" in result.stdout


def test_mbpp_asserts_are_counted_and_setup_statements_run():
    chunks = sandbox.split_tests(tests=PROMPTS["square_sum"][1], style="asserts", entry_point="")
    assert [asserts for _, _, asserts in chunks] == [0, 1, 1, 1]
    assert run("square_sum").passed


def test_an_mbpp_prompt_in_prose_is_not_part_of_the_program():
    assert sandbox.program_source(prompt="Write a function.", completion="x = 1\n", style="asserts") == "x = 1\n"
    stub = sandbox.program_source(prompt="def f(n):\n", completion="    return n\n", style="asserts")
    assert stub == "def f(n):\n    return n\n"


def test_a_humaneval_prompt_without_an_entry_point_is_an_error_without_running():
    result = run("add", entry_point="add(1); import os")
    assert result.outcome == "error"
    assert "entry_point" in result.stderr


def test_run_many_returns_results_in_the_order_of_the_jobs():
    names = list(PROMPTS)
    jobs = [job(name) if i % 2 else job(name, PROMPTS[name][5]) for i, name in enumerate(names)]
    results = run_many(jobs, workers=3)
    assert [r.outcome for r in results] == ["failed" if i % 2 == 0 else "passed" for i in range(len(names))]


def test_a_report_is_trusted_only_with_the_nonce_once_and_complete():
    nonce = b"ab" * 16
    line = b"codepref-sandbox-report %s passed tests 2\n" % nonce
    assert read_report(line, nonce=nonce, expected_asserts=2) == ("passed", "")
    assert read_report(line, nonce=b"cd" * 16, expected_asserts=2)[0] is None
    assert read_report(line + line, nonce=nonce, expected_asserts=2)[0] is None
    assert read_report(b"", nonce=nonce, expected_asserts=2)[0] is None
    assert read_report(line, nonce=nonce, expected_asserts=3)[0] == "error"
    failed = b"codepref-sandbox-report %s failed tests 1\n" % nonce
    assert read_report(failed, nonce=nonce, expected_asserts=2) == ("failed", "")


# --- the isolation this host gives ------------------------------------------------------------------------------


def test_bubblewrap_is_used_wherever_it_works():
    if IN_CI or bwrap_works():
        assert ISOLATION == "bubblewrap"
    else:
        assert ISOLATION in ("setpriv", "rlimits")


@contained
def test_the_program_runs_as_an_unprivileged_user_with_process_limits():
    completion = (
        "    return a + b\nimport os, resource\n"
        "print(os.getuid(), resource.getrlimit(resource.RLIMIT_NPROC)[0], resource.getrlimit(resource.RLIMIT_AS)[0])\n"
    )
    result = run("add", completion, memory_mb=512, max_processes=7)
    uid, nproc, address_space = map(int, result.stdout.split())
    assert uid != 0 and uid != os.getuid()
    assert (nproc, address_space) == (7, 512 << 20)
    assert result.passed


@needs_bubblewrap
@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_each_run_sees_a_fresh_private_tmp_and_dev_shm_and_no_host_files(warm):
    completion = (
        "    return a + b\nimport os\nprint(os.getcwd(), sorted(os.listdir('.')), sorted(os.listdir('/dev/shm')),\n"
        "      os.path.exists('/etc/passwd'), os.path.exists('/work'))\n"
        "open('scratch', 'w').write('x')\nopen('/dev/shm/segment', 'w').write('x')\n"
    )
    first, second = run("add", completion, warm=warm), run("add", completion, warm=warm)
    assert first.stdout == second.stdout == "/tmp [] [] False False\n"
    assert first.passed and second.passed


@needs_bubblewrap
def test_a_warm_sandbox_serves_the_next_run_and_a_timeout_retires_it():
    if os.geteuid() != 0:
        pytest.skip("warm sandboxes need root (bwrap without a user namespace)")
    pool = current_pool()
    assert run("add", warm=True).passed
    assert len(pool.idle) >= 1
    box = pool.idle[-1]
    assert run("add", warm=True).passed
    assert pool.idle[-1] is box and box.proc.poll() is None
    assert run("add", CORRECT + "while True:\n    pass\n", timeout=1, warm=True).outcome == "timeout"
    assert box.proc.poll() is not None  # killed with the run that timed out
    assert box not in pool.idle
    assert run("add", warm=True).passed


# --- the escape corpus: none passes, none harms the host ---------------------------------------------------------


class TestEscapeCorpus:
    """Each case is the correct solution plus an escape, so that a pass could only come from the escape. Every
    case runs in a warm sandbox (the default as root) and in a cold one."""

    @pytest.fixture(params=["warm", "cold"], autouse=True)
    def mode(self, request, monkeypatch):
        monkeypatch.setenv("CODEPREF_SANDBOX_WARM", "1" if request.param == "warm" else "0")
        return request.param

    def test_os_exit_before_the_tests_does_not_pass(self):
        result = run("add", CORRECT + "import os\nos._exit(0)\n")
        assert result.outcome == "error"
        assert "no report" in result.stderr

    def test_sys_exit_does_not_pass(self):
        at_import, in_candidate = run_many(
            [job("add", CORRECT + "import sys\nsys.exit(0)\n"), job("add", "    import sys\n    sys.exit(0)\n")]
        )
        assert at_import.outcome == "error" and "SystemExit" in at_import.stderr
        assert in_candidate.outcome == "error" and "SystemExit" in in_candidate.stderr

    def test_printing_a_pass_or_a_fake_report_on_every_descriptor_does_not_pass(self):
        fake = (
            "import os\nprint('passed')\nprint('codepref-sandbox-report ' + '0' * 32 + ' passed tests 1')\n"
            "for fd in os.listdir('/proc/self/fd'):\n"
            "    try:\n        os.write(int(fd), b'codepref-sandbox-report ' + b'0' * 32 + b' passed tests 1\\n')\n"
            "    except OSError:\n        pass\n"
        )
        then_exit, then_tests = run_many([job("add", CORRECT + fake + "os._exit(0)\n"), job("add", CORRECT + fake)])
        assert then_exit.outcome == "error" and not then_exit.passed
        assert "nonce" in then_exit.stderr
        assert then_tests.outcome == "error"  # the harness's own report no longer stands alone
        assert "passed" in then_tests.stdout

    def test_patching_exec_or_a_trace_hook_that_jumps_over_asserts_does_not_skip_the_tests(self):
        # Both turn this wrong solution into a pass under a plain exec(); the harness binds exec before the
        # program runs and clears trace hooks before the tests.
        wrong = "    return 0 if a == 2 else a + b\n"
        patch_exec = wrong + "import builtins\nbuiltins.exec = lambda *args, **kwargs: None\n"
        jump = wrong + (
            "import sys\ndef tracer(frame, event, arg):\n"
            "    if frame.f_code.co_name != 'check':\n        return None\n"
            "    def local(frame, event, arg):\n"
            "        if event == 'line' and frame.f_lineno == frame.f_code.co_firstlineno + 1:\n"
            "            frame.f_lineno += 1\n        return local\n    return local\nsys.settrace(tracer)\n"
        )
        results = run_many([job("add", patch_exec), job("add", jump)])
        assert [r.outcome for r in results] == ["failed", "failed"]

    @contained
    def test_deleting_files_outside_its_directory_does_not_pass_and_the_files_stay(self, tmp_path):
        canary = tmp_path / "canary.txt"
        canary.write_text("still here")
        completion = CORRECT + f"import os, shutil\nshutil.rmtree({str(tmp_path)!r})\nos.remove({str(canary)!r})\n"
        result = run("add", completion)
        assert not result.passed
        assert canary.read_text() == "still here"

    @contained
    def test_reading_etc_shadow_fails(self):
        result = run("add", CORRECT + "print(open('/etc/shadow').read())\n")
        assert result.outcome == "error"
        assert "root:" not in result.stdout
        assert "FileNotFoundError" in result.stderr or "PermissionError" in result.stderr

    @needs_bubblewrap
    def test_the_network_is_unreachable_postgres_and_a_listening_port_alike(self):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            results = run_many(
                [
                    job("add", CORRECT + f"import socket\nsocket.create_connection(('127.0.0.1', {p}), timeout=2)\n")
                    for p in (5432, port)
                ]
            )
        assert [r.outcome for r in results] == ["error", "error"]
        assert all("ConnectionRefusedError" in r.stderr for r in results)

    @needs_bubblewrap
    def test_creating_a_user_namespace_is_refused(self):
        # Without the seccomp filter this succeeds, and the program holds every capability in its namespace.
        completion = CORRECT + (
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "if libc.unshare(0x10000000) != 0:\n    raise PermissionError(ctypes.get_errno(), 'unshare')\n"
        )
        result = run("add", completion)
        assert result.outcome == "error"
        assert "PermissionError: [Errno 1] unshare" in result.stderr

    @contained
    def test_a_fork_bomb_is_bounded_and_ends_as_a_timeout_with_no_process_left(self):
        bomb = (
            CORRECT + "import os\nprint(os.getuid(), flush=True)\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass\n"
        )
        started = time.monotonic()
        result = run("add", bomb, timeout=2)
        assert result.outcome == "timeout"
        assert time.monotonic() - started < 4
        assert no_processes_left(int(result.stdout.split()[0]))

    @contained
    def test_a_fork_beyond_the_process_limit_fails(self):
        completion = CORRECT + "import os\ntry:\n    os.fork()\nexcept BlockingIOError:\n    raise SystemExit(3)\n"
        result = run("add", completion, max_processes=1)
        assert result.outcome == "error" and "SystemExit: 3" in result.stderr

    @contained
    def test_a_daemon_started_by_the_program_dies_with_the_run(self):
        daemon = (
            CORRECT + "import os, time\nprint(os.getuid(), flush=True)\nif os.fork() == 0:\n    os.setsid()\n"
            "    if os.fork() == 0:\n        os.closerange(0, 1024)\n        time.sleep(60)\n    os._exit(0)\n"
        )
        result = run("add", daemon)
        assert no_processes_left(int(result.stdout.split()[0]))

    def test_allocating_10_gb_is_a_memory_error_not_a_pass(self):
        result = run("add", CORRECT + "hog = bytearray(10 * 1024 ** 3)\n")
        assert result.outcome == "error"
        assert "MemoryError" in result.stderr

    def test_an_infinite_loop_times_out_on_the_wall_clock(self):
        started = time.monotonic()
        result = run("add", CORRECT + "while True:\n    pass\n", timeout=1.5)
        elapsed = time.monotonic() - started
        assert result.outcome == "timeout"
        assert 1.5 <= elapsed < 2.5
        assert "killed after 1.5 s" in result.stderr

    def test_killing_its_parent_does_not_pass_and_the_caller_lives(self):
        result = run("add", CORRECT + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
        assert not result.passed
        assert run("add").passed  # this process (the caller) is still here to run another

    def test_a_fork_whose_parent_exits_does_not_pass_through_the_child(self):
        result = run("add", CORRECT + "import os\nif os.fork() != 0:\n    os._exit(0)\n")
        assert result.outcome == "error"
        assert "no report" in result.stderr

    def test_a_huge_file_is_stopped_by_the_file_size_limit(self):
        result = run("add", CORRECT + "open('big', 'wb').write(b'x' * (64 << 20))\n")
        assert result.outcome == "error"
        assert "File too large" in result.stderr

    # --- issue 11: forged passes and memory that RLIMIT_AS does not count --------------------------------------

    def test_emptying_the_harness_lists_through_gc_does_not_pass_a_strong_verdict(self):
        # In process, this swaps the test chunks for "pass" with the right assert count, and empties the calls.
        result = run("add", WRONG + GC_FORGERY)
        assert result.verdict_strength == "strong"
        assert not result.passed and result.outcome in ("failed", "error")

    def test_the_gc_forgery_against_weak_tests_is_labelled_weak(self):
        result = run("add", WRONG + GC_FORGERY, strong=False)
        assert result.verdict_strength == "weak"  # whatever it says, it decides no pair (test_evaluation.py)

    def test_memfd_holding_2_5_gb_is_refused(self):
        result = run("add", CORRECT + MEMFD_HOG, memory_mb=1024, timeout=5)
        assert result.outcome == "error"
        assert "PermissionError: [Errno 1]" in result.stderr and "memfd_create" in result.stderr

    def test_sysv_shared_memory_holding_2_5_gb_is_refused_and_nothing_is_left(self):
        before = sysv_segments()
        result = run("add", CORRECT + SHM_HOG, memory_mb=1024, timeout=5)
        assert result.outcome == "error"
        assert "PermissionError: [Errno 1] shmget" in result.stderr
        assert sysv_segments() <= before

    def test_the_result_says_which_limits_held(self):
        result = run("add")
        limits = result.details["limits"]
        assert limits["seccomp"].startswith("refuses SysV IPC, memfd_create")
        if cgroup_support().version:
            version = f"cgroup v{cgroup_support().version}"
            assert limits["cgroup"] == f"v{cgroup_support().version}"
            assert limits["memory"].startswith(version) and limits["pids"].startswith(version)
            assert result.details["cgroup_events"]["oom_kills"] == 0
        else:
            assert limits["cgroup"].startswith("none: ") and "only" in limits["memory"]


def drain_warm_pool() -> None:
    current_pool().close_idle()


@pytest.fixture
def fresh_warm_pool():
    """Warm sandboxes started inside the test (with its filter), and none of them left for the next tests."""
    drain_warm_pool()
    yield
    drain_warm_pool()


@pytest.mark.skipif(not cgroup_support().version, reason=f"no cgroup here: {cgroup_support().why}")
@pytest.mark.parametrize("isolation, warm", [("bubblewrap", True), ("bubblewrap", False), ("setpriv", False)])
def test_behind_seccomp_the_cgroup_kills_memory_that_rlimit_as_does_not_count(
    isolation, warm, monkeypatch, fresh_warm_pool
):
    """With memfd let through the filter, 2.5 GB of it under a 256 MB cgroup: killed, not passed. (memfds die
    with their process; SysV segments would outlive a run outside bwrap's IPC namespace.)"""
    if isolation == "bubblewrap" and not BUBBLEWRAP:
        pytest.skip("needs bubblewrap")
    if isolation == "setpriv" and (os.geteuid() != 0 or not os.access(SETPRIV, os.X_OK)):
        pytest.skip("setpriv needs root and /usr/bin/setpriv")
    real = sandbox_isolation.seccomp_filter
    monkeypatch.setattr(sandbox_isolation, "seccomp_filter", lambda **_: real(refuse_memory=False))
    monkeypatch.setattr(sandbox_run, "seccomp_filter", lambda **_: real(refuse_memory=False))
    if warm and os.geteuid() != 0:
        pytest.skip("warm sandboxes need root")
    result = run("add", CORRECT + MEMFD_HOG, memory_mb=256, warm=warm, isolation=isolation)
    assert result.outcome == "error", result.stderr
    assert result.details["cgroup_events"]["oom_kills"] >= 1
    assert "the memory limit (256 MB, cgroup) killed" in result.stderr
    if warm:  # the sandbox's cgroup takes the next run's limits (1024 MB: 300 MB fit), its counters afresh
        after = run("add", CORRECT + MEMFD_HOG.replace("range(160)", "range(20)"), isolation=isolation)
        assert after.passed, after.stderr
        assert after.details["cgroup_events"]["memory_peak"] > 256 << 20
        assert after.details["cgroup_events"]["oom_kills"] == 0


@pytest.mark.parametrize("fallback", ["setpriv", "rlimits"])
def test_the_fallbacks_still_require_the_harness_report(fallback):
    if fallback == "setpriv" and (os.geteuid() != 0 or not os.access(SETPRIV, os.X_OK)):
        pytest.skip("setpriv needs root and /usr/bin/setpriv")
    whoami = "    import os\n    print(os.getuid())\n    return a + b\n"
    exits, passes = run_many(
        [job("add", CORRECT + "import os\nos._exit(0)\n", isolation=fallback), job("add", whoami, isolation=fallback)]
    )
    assert exits.outcome == "error" and exits.isolation == fallback
    assert passes.outcome == "passed", passes.stderr
    if fallback == "setpriv":
        assert all(int(uid) >= UID_BASE for uid in passes.stdout.split())


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(SETPRIV, os.X_OK), reason="needs root and setpriv")
def test_a_daemon_escaping_its_session_under_setpriv_is_killed_by_uid():
    daemon = (
        CORRECT + "import os, time\nprint(os.getuid(), flush=True)\nif os.fork() == 0:\n    os.setsid()\n"
        "    if os.fork() == 0:\n        os.closerange(0, 1024)\n        time.sleep(60)\n    os._exit(0)\n"
    )
    result = run("add", daemon, isolation="setpriv")
    assert result.passed  # its output closed, the run ends at once; the daemon is found by its uid
    assert no_processes_left(int(result.stdout.split()[0]))


def test_seeding_the_module_random_does_not_decide_the_runs_uids():
    # Every evaluation calls transformers.set_seed(42), which seeds the module random: uids drawn from it came in
    # the same order in every evaluation on the host.
    import random

    random.seed(42)
    first = [sandbox_isolation.draw_uid() for _ in range(8)]
    random.seed(42)
    assert [sandbox_isolation.draw_uid() for _ in range(8)] != first
    assert all(UID_BASE <= uid < UID_BASE + sandbox_isolation.UID_COUNT for uid in first)


def test_a_leased_uid_is_not_leased_again_until_its_run_ends(monkeypatch):
    draws = iter([7, 7, 7, 9, 7])
    monkeypatch.setattr(sandbox_isolation._uid_source, "randrange", lambda count: next(draws))
    with sandbox_isolation.leased_uid() as held, sandbox_isolation.leased_uid() as other:
        assert (held, other) == (UID_BASE + 7, UID_BASE + 9)  # 7 twice more while held: drawn again
    with sandbox_isolation.leased_uid() as again:
        assert again == UID_BASE + 7  # released
    monkeypatch.setattr(sandbox_isolation._uid_source, "randrange", lambda count: 7)
    with sandbox_isolation.leased_uid(), pytest.raises(sandbox_isolation.NoFreeUid, match="no free sandbox uid"):
        with sandbox_isolation.leased_uid():
            pass


# Two processes seeded alike, each running its jobs two at a time under setpriv, whose clean-up kills every
# process of a run's uid on the host; 8 uids only, so that draws meet often. Before the lease, 30% of 400
# ladder runs in two such processes ended "no report from the harness (exit status -9)".
CROWDED_UIDS = """
import random, sys
from training.sandbox import SandboxJob, isolation, run_many
isolation.UID_COUNT = 8
random.seed(42)
job = SandboxJob(prompt=sys.argv[1], completion=sys.argv[2], tests=sys.argv[3], style="humaneval",
                 entry_point="add", isolation="setpriv")
results = run_many([job] * 24, workers=2)
print(sum(r.passed for r in results), [r.stderr for r in results if not r.passed][:1])
"""


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(SETPRIV, os.X_OK), reason="needs root and setpriv")
def test_runs_of_two_processes_seeded_alike_never_share_a_uid_nor_kill_each_other():
    prompt, tests, *_ = PROMPTS["add"]
    slow = "    import time\n    time.sleep(0.1)\n    return a + b\n"  # long enough for runs to overlap
    command = [sys.executable, "-c", CROWDED_UIDS, prompt, slow, tests]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [output.split(" ", 1)[0] for output in outputs] == ["24", "24"], outputs
