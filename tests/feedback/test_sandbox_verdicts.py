"""The strong path of the sandbox (training/sandbox/calls.py, values.py, judge.py): tests parsed into calls and
checks, outputs returned as tagged JSON, and the verdict reached outside the sandbox."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from training.sandbox import SandboxJob, run_many, run_program, verdict_strength
from training.sandbox.calls import call_plan
from training.sandbox.harness import _encode
from training.sandbox.judge import judge
from training.sandbox.values import BadValue, decode

ROOT = Path(__file__).resolve().parents[2]

HUMANEVAL = '''
METADATA = {"author": "jt", "dataset": "test"}


def check(candidate):
    """Some cases."""
    assert candidate(2, 3) == 5
    assert candidate(-1, b=1) == 0, "with a message"
    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-6
    assert candidate(1, 1)
    assert not candidate(0, 0)
    assert True, "This prints if this assert fails 1 (good for debugging!)"
'''

MBPP = (
    "import math\nassert similar((3, 4), (4, 5)) == (4,)\nassert set(similar((1,), (2,))) == set()\n"
    "assert math.isclose(area(2), 12.566, rel_tol=0.001)\n"
)


def test_humaneval_asserts_become_calls_with_literal_arguments():
    plan = call_plan(tests=HUMANEVAL, style="humaneval", entry_point="add")
    assert [(c.function, c.args, c.kwargs) for c in plan.calls] == [
        ("add", (2, 3), {}),
        ("add", (-1,), {"b": 1}),
        ("add", (0.1, 0.2), {}),
        ("add", (1, 1), {}),
        ("add", (0, 0), {}),
    ]
    assert len(plan.checks) == 5  # "assert True" decides nothing
    assert plan.checks[1].source == 'assert candidate(-1, b=1) == 0, "with a message"'


def test_mbpp_asserts_become_calls_of_each_named_function_and_keep_their_imports():
    plan = call_plan(tests=MBPP, style="asserts", entry_point="")
    calls = [(c.function, c.args) for c in plan.calls]
    assert calls == [("similar", ((3, 4), (4, 5))), ("similar", ((1,), (2,))), ("area", (2,))]
    assert plan.setup == "import math\n"


def test_arithmetic_on_literals_is_folded_and_outputs_can_be_indexed():
    tests = (
        "def check(candidate):\n    assert candidate(2 * 101) == [2, 101]\n    assert candidate(1024) == [2] * 10\n"
        "    assert candidate(10)[5] == 252\n    assert sum(candidate(20)) == 2 ** 20\n"
        "    assert candidate(300) % 1000 == 600\n    assert candidate(-3)[1:] == []\n"
    )
    plan = call_plan(tests=tests, style="humaneval", entry_point="f")
    assert [c.args for c in plan.calls] == [(202,), (1024,), (10,), (20,), (300,), (-3,)]
    outputs = [[2, 101], [2] * 10, [1, 10, 45, 120, 210, 252, 210, 120, 45, 10, 1], [1 << 19, 1 << 19], 1600, [7]]
    nonce = b"ab" * 16
    body = "[" + ",".join('["ok",' + _encode(v, 0) + "]" for v in outputs) + "]"
    assert judge(_report(nonce, 6, body), nonce=nonce, plan=plan) == ("passed", "")
    outputs[2] = [0]  # an index out of range fails the check, as the assert would have
    body = "[" + ",".join('["ok",' + _encode(v, 0) + "]" for v in outputs) + "]"
    assert judge(_report(nonce, 6, body), nonce=nonce, plan=plan)[0] == "failed"


@pytest.mark.parametrize(
    "tests",
    [
        "def check(candidate):\n    assert candidate(1) == [0] * 10 ** 6\n",  # too big to fold
        "def check(candidate):\n    assert candidate(2 ** 5000) == 1\n",
        "def check(candidate):\n    assert candidate(1) ** 2 == 4\n",  # a power of an output
        "def check(candidate):\n    for x in range(3):\n        assert candidate(x) == x\n",  # a loop
        "def check(candidate):\n    x = 3\n    assert candidate(x) == 3\n",  # a variable
        "def helper(x):\n    return x\n\ndef check(candidate):\n    assert candidate(1) == helper(1)\n",
        "def check(candidate):\n    assert candidate(1) == abs.__name__\n",  # expected computed by code
        "def check(candidate):\n    assert candidate(*[1, 2]) == 3\n",
        "def check(candidate):\n    assert candidate(1).real == 1\n",  # an attribute of the output
        "def check(candidate):\n    assert True\n",  # no call at all
        "def check(candidate):\n    import random\n    assert candidate(random.random()) < 2\n",
    ],
)
def test_tests_that_need_code_beside_the_program_stay_weak(tests):
    assert call_plan(tests=tests, style="humaneval", entry_point="f") is None
    assert verdict_strength(tests=tests, style="humaneval", entry_point="f") == "weak"


@pytest.mark.parametrize(
    "tests",
    [
        "assert f(1) == pow(2, 3)\n",  # a builtin would be computed in the sandbox, where it can be replaced
        "assert isinstance(f(1), int)\n",
        "x = 1\nassert f(x) == 1\n",
        "assert f(1) == 1\nprint('done')\n",
    ],
)
def test_mbpp_tests_that_need_code_stay_weak(tests):
    assert call_plan(tests=tests, style="asserts", entry_point="") is None


VALUES = [
    None,
    True,
    0,
    -(2**53) + 1,
    2**200,
    -(2**70),
    1.5,
    -0.0,
    float("inf"),
    1 + 2j,
    "",
    'quote " backslash \\ newline \n nul \x00 é 𝄞 \udc80',
    b"\x00\xff",
    [1, [2, (3, {4})]],
    (1,),
    frozenset({(1, 2), "a"}),
    {1: "int key", (1, 2): "tuple key", "s": [1.0], None: frozenset()},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_outputs_round_trip_with_their_types(value):
    back = decode(json.loads(_encode(value, 0)))
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, dict):
        assert [type(k) for k in back] == [type(k) for k in value]


def test_nan_round_trips_as_nan_and_tuples_do_not_become_lists():
    assert math.isnan(decode(json.loads(_encode(float("nan"), 0))))
    assert decode(json.loads(_encode((1, 2), 0))) != [1, 2]


def test_types_of_the_programs_own_are_not_encoded():
    class Always(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    cycle: list = []
    cycle.append(cycle)
    for value in (Always(1), object(), cycle, {"x": Always(2)}):
        with pytest.raises((TypeError, ValueError)):
            _encode(value, 0)


@pytest.mark.parametrize(
    "data",
    [{"pickle": "..."}, {"set": [[1]]}, 2**60, {"float": 1.5}, {"int": 5}, {"tuple": 3}, {"a": 1, "b": 2}, 1.5],
    ids=repr,
)
def test_decoding_refuses_what_the_encoder_never_writes(data):
    with pytest.raises(BadValue):
        decode(data)


def _report(nonce: bytes, calls: int, body: str) -> bytes:
    return b"codepref-sandbox-outputs %s %d\n%s\n" % (nonce, calls, body.encode())


def test_the_judge_passes_only_matching_outputs_of_every_call():
    plan = call_plan(tests=HUMANEVAL, style="humaneval", entry_point="add")
    nonce = b"ab" * 16
    right = '[["ok",5],["ok",0],["ok",{"float":"' + (0.1 + 0.2).hex() + '"}],["ok",2],["ok",0]]'
    assert judge(_report(nonce, 5, right), nonce=nonce, plan=plan) == ("passed", "")
    wrong = right.replace('["ok",5]', '["ok",6]')
    outcome, note = judge(_report(nonce, 5, wrong), nonce=nonce, plan=plan)
    assert outcome == "failed" and "assert candidate(2, 3) == 5" in note and "returned 6" in note
    raised = right.replace('["ok",0]', '["raise","TypeError: no"]', 1)
    assert judge(_report(nonce, 5, raised), nonce=nonce, plan=plan)[0] == "failed"
    custom = right.replace('["ok",5]', '["unencodable","TypeError: a Always"]')
    assert judge(_report(nonce, 5, custom), nonce=nonce, plan=plan)[0] == "failed"
    exited = right.replace('["ok",5]', '["exit","SystemExit: 0"]')
    assert judge(_report(nonce, 5, exited), nonce=nonce, plan=plan)[0] == "error"
    huge = right.replace('["ok",5]', '["ok",' + _encode(10**5000, 0) + "]")  # too long for repr() in a note
    outcome, note = judge(_report(nonce, 5, huge), nonce=nonce, plan=plan)
    assert outcome == "failed" and "too long to show" in note


def test_the_judge_refuses_reports_that_are_not_whole():
    plan = call_plan(tests=HUMANEVAL, style="humaneval", entry_point="add")
    nonce = b"ab" * 16
    body = '[["ok",5],["ok",0],["ok",0.3],["ok",2],["ok",0]]'
    assert judge(_report(nonce, 5, body), nonce=nonce, plan=plan)[0] is None  # an untagged float
    assert judge(b"", nonce=nonce, plan=plan) == (None, "no report")
    good = '[["ok",5],["ok",0],["ok",{"float":"' + (0.3).hex() + '"}],["ok",2],["ok",0]]'
    assert judge(_report(b"cd" * 16, 5, good), nonce=nonce, plan=plan)[0] is None  # another nonce
    assert judge(_report(nonce, 4, good), nonce=nonce, plan=plan)[0] is None  # another count
    assert judge(_report(nonce, 5, good) * 2, nonce=nonce, plan=plan)[0] is None  # twice
    assert judge(_report(nonce, 5, "[]"), nonce=nonce, plan=plan)[0] is None


# --- through the sandbox ---------------------------------------------------------------------------------------

ADD = 'def add(a, b=0):\n    """a + b"""\n'


def add_job(completion: str, tests: str = HUMANEVAL, **options) -> SandboxJob:
    return SandboxJob(prompt=ADD, completion=completion, tests=tests, entry_point="add", **options)


def test_a_run_is_judged_outside_the_sandbox_and_says_so():
    right, wrong = run_many([add_job("    return a + b\n"), add_job("    return a - b\n")], workers=2)
    assert (right.outcome, right.verdict_strength) == ("passed", "strong"), right.stderr
    assert (wrong.outcome, wrong.verdict_strength) == ("failed", "strong")
    assert "judged outside the sandbox" in wrong.stderr and "assert candidate(2, 3) == 5" in wrong.stderr
    assert right.details["calls"] == 5
    assert set(right.details["limits"]) >= {"memory", "pids", "cpu", "cgroup", "seccomp"}


def test_an_object_equal_to_everything_passes_no_strong_check():
    always = (
        "    class Always:\n        def __eq__(self, other):\n            return True\n"
        "        def __bool__(self):\n            return True\n"
        "        def __sub__(self, other):\n            return 0\n    return Always()\n"
    )
    strong, weak = run_many([add_job(always), add_job(always, strong=False)])
    assert (strong.outcome, strong.verdict_strength) == ("failed", "strong")
    assert "Always" in strong.stderr
    assert weak.verdict_strength == "weak"  # in process, such an object passes: why weak verdicts decide nothing


def test_outputs_keep_python_equality_and_their_types():
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(1, 1) == (1, 1)\n"
    as_float = "    return float(a + b) if a != b else (a, b)\n"
    as_list = "    return a + b if a != b else [a, b]\n"
    floats, lists = run_many([add_job(as_float, tests), add_job(as_list, tests)])
    assert floats.outcome == "passed"  # 5.0 == 5, as in Python
    assert lists.outcome == "failed"  # [1, 1] != (1, 1), as in Python


def test_weak_tests_still_run_in_process_and_are_labelled_weak():
    tests = "def check(candidate):\n    for x in range(3):\n        assert candidate(x, x) == 2 * x\n"
    right, wrong = run_many([add_job("    return a + b\n", tests), add_job("    return a * b\n", tests)])
    assert (right.outcome, right.verdict_strength) == ("passed", "weak")
    assert (wrong.outcome, wrong.verdict_strength) == ("failed", "weak")


def test_an_import_error_of_the_tests_and_a_crash_in_a_call_are_not_passes():
    tests = "import no_such_module\n" + HUMANEVAL
    missing, crash = run_many([add_job("    return a + b\n", tests), add_job("    raise TypeError('no')\n")])
    assert missing.outcome == "error" and "no_such_module" in missing.stderr
    assert crash.outcome == "failed" and "TypeError: no" in crash.stderr


def test_outputs_over_the_limit_are_not_judged():
    huge = "    return 'x' * (8 << 20) if a == 2 else a + b\n"
    result = run_program(add_job(huge, memory_mb=512))
    assert result.outcome == "error" and "outputs exceed" in result.stderr


def test_the_strong_path_agrees_with_the_in_process_one_on_every_demo_completion():
    """Every completion of the demo prompts whose tests are strong: same outcome both ways (167 of them)."""
    rows = [json.loads(line) for line in (ROOT / "feedback" / "fixtures" / "demo_prompts.jsonl").open()]
    jobs = [
        SandboxJob(prompt=r["prompt"], completion=c["text"], tests=r["tests"], entry_point=r["entry_point"], timeout=5)
        for r in rows
        if r.get("tests")
        and verdict_strength(tests=r["tests"], style="humaneval", entry_point=r["entry_point"]) == "strong"
        for c in r["completions"]
    ]
    assert len(jobs) >= 150
    strong = run_many(jobs, workers=2)
    weak = run_many([replace(job, strong=False) for job in jobs], workers=2)
    assert {r.verdict_strength for r in strong} == {"strong"} and {r.verdict_strength for r in weak} == {"weak"}
    assert [r.outcome for r in strong] == [r.outcome for r in weak]
    assert {r.outcome for r in strong} >= {"passed", "failed"}
