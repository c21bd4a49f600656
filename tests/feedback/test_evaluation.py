"""Storing sandbox outcomes on completions (feedback/coders/verdicts.py), the run_tests command and task."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from feedback.coders import tasks
from feedback.coders.verdicts import completions_run_tests
from feedback.models import Completion, Pair, Prompt
from tests import factories
from training.sandbox import SANDBOX_VERSION, isolation_available

pytestmark = pytest.mark.django_db

PROMPT = 'def double(x: int) -> int:\n    """Twice x."""\n'
TESTS = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(0) == 0\n"
RIGHT = "    return 2 * x\n"
WRONG = "    return x + 2\n"


@pytest.fixture
def prompt(db):
    return factories.PromptFactory(text=PROMPT, tests=TESTS, entry_point="double")


@pytest.fixture
def pair(prompt):
    return factories.PairFactory(
        prompt=prompt,
        completion_a=factories.CompletionFactory(prompt=prompt, text=RIGHT),
        completion_b=factories.CompletionFactory(prompt=prompt, text=WRONG),
    )


def test_outcomes_and_output_are_stored_on_the_completions(pair):
    counts = completions_run_tests(completion_ids=[pair.completion_a_id, pair.completion_b_id])
    right, wrong = Completion.objects.get(pk=pair.completion_a_id), Completion.objects.get(pk=pair.completion_b_id)
    assert (right.outcome, wrong.outcome) == ("passed", "failed")
    assert counts["passed"] == 1 and counts["failed"] == 1
    assert "AssertionError" in wrong.test_stderr
    assert right.test_stderr == "" and right.test_stdout == ""
    for completion in (right, wrong):
        assert completion.isolation == isolation_available()
        assert completion.sandbox_version == SANDBOX_VERSION
        assert completion.tested_at is not None
        assert 0 < completion.test_duration < 10


def test_a_pair_where_one_side_passes_and_the_other_fails_is_decided_by_tests(pair, prompt):
    both_right = factories.PairFactory(
        prompt=prompt,
        completion_a=factories.CompletionFactory(prompt=prompt, text="    return x * 2\n"),
        completion_b=factories.CompletionFactory(prompt=prompt, text="    return x + x\n"),
    )
    ids = [pair.completion_a_id, pair.completion_b_id, both_right.completion_a_id, both_right.completion_b_id]
    counts = completions_run_tests(completion_ids=ids)
    assert counts["pairs_decided"] == 1
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is True
    assert Pair.objects.get(pk=both_right.pk).decided_by_tests is False


def test_a_pair_is_decided_only_once_both_sides_ran(pair):
    completions_run_tests(completion_ids=[pair.completion_a_id])
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is False
    completions_run_tests(completion_ids=[pair.completion_b_id])
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is True


def test_a_timeout_and_an_error_count_as_not_passing_but_only_the_error_decides(prompt, settings):
    settings.CODEPREF = {**settings.CODEPREF, "SANDBOX_TIMEOUT_SECONDS": 1.0, "SANDBOX_OUTPUT_LIMIT": 300}
    right = factories.CompletionFactory(prompt=prompt, text=RIGHT)
    loop = factories.CompletionFactory(prompt=prompt, text=RIGHT + "while True:\n    print('spin' * 50)\n")
    crash = factories.CompletionFactory(prompt=prompt, text=RIGHT + "import os\nos._exit(0)\n")
    pairs = [factories.PairFactory(prompt=prompt, completion_a=right, completion_b=other) for other in (loop, crash)]
    completions_run_tests(completion_ids=[right.pk, loop.pk, crash.pk])
    loop.refresh_from_db()
    crash.refresh_from_db()
    assert (loop.outcome, crash.outcome) == ("timeout", "error")
    assert len(loop.test_stdout) <= 300 and "bytes dropped" in loop.test_stdout
    # A timeout may be a slow machine: it decides nothing (issue 12). A program that killed its harness failed.
    decided = [Pair.objects.get(pk=p.pk) for p in pairs]
    assert [p.decided_by_tests for p in decided] == [False, True]
    assert [(p.state, p.gold_choice, p.gold_source) for p in decided] == [("open", "", ""), ("gold", "a", "tests")]
    assert "passes the prompt's unit tests" in decided[1].gold_explanation


def test_completions_of_prompts_without_tests_stay_not_run(db):
    untested = factories.PromptFactory(tests="", test_style=Prompt.TestStyle.NONE)
    rust = factories.PromptFactory(language="rust")
    ids = [factories.CompletionFactory(prompt=p).pk for p in (untested, rust)]
    counts = completions_run_tests(completion_ids=ids)
    assert counts["skipped_no_tests"] == 2
    assert set(Completion.objects.filter(pk__in=ids).values_list("outcome", flat=True)) == {"not_run"}


def test_running_again_skips_what_this_sandbox_version_ran_and_force_reruns(pair):
    ids = [pair.completion_a_id, pair.completion_b_id]
    completions_run_tests(completion_ids=ids)
    first = Completion.objects.get(pk=pair.completion_a_id).tested_at
    again = completions_run_tests(completion_ids=ids)
    assert again["skipped_current"] == 2 and again["passed"] == again["failed"] == 0
    assert Completion.objects.get(pk=pair.completion_a_id).tested_at == first
    forced = completions_run_tests(completion_ids=ids, force=True)
    assert (forced["passed"], forced["failed"]) == (1, 1)
    rerun = Completion.objects.get(pk=pair.completion_a_id)
    assert rerun.tested_at > first and rerun.outcome == "passed"
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is True


def test_an_outcome_from_another_sandbox_version_is_run_again(pair):
    Completion.objects.filter(pk=pair.completion_a_id).update(outcome="failed", sandbox_version="0.old")
    counts = completions_run_tests(completion_ids=[pair.completion_a_id])
    assert counts["passed"] == 1
    assert Completion.objects.get(pk=pair.completion_a_id).sandbox_version == SANDBOX_VERSION


def test_unknown_ids_are_counted_not_fatal(pair):
    counts = completions_run_tests(completion_ids=[pair.completion_a_id, 10**9])
    assert counts["missing"] == 1 and counts["passed"] == 1


def test_the_celery_task_runs_the_tests_in_eager_mode_and_a_second_run_is_harmless(pair, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    ids = [pair.completion_a_id, pair.completion_b_id]
    first = tasks.run_tests.delay(ids).get()
    second = tasks.run_tests.delay(ids).get()
    assert (first["passed"], first["failed"]) == (1, 1)
    assert second["skipped_current"] == 2
    assert tasks.run_tests.name == "feedback.tasks.run_tests"
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is True


def test_the_command_runs_untested_then_all_then_given_ids(pair, prompt):
    out, err = io.StringIO(), io.StringIO()
    call_command("run_tests", "--untested", stdout=out, stderr=err)
    assert "2 completion(s) to test" in out.getvalue()
    assert "passed 1, failed 1" in out.getvalue()
    assert set(Completion.objects.values_list("outcome", flat=True)) == {"passed", "failed"}

    out = io.StringIO()
    call_command("run_tests", "--untested", stdout=out, stderr=io.StringIO())
    assert "0 completion(s) to test" in out.getvalue()

    Completion.objects.filter(pk=pair.completion_a_id).update(outcome="error")
    out = io.StringIO()
    call_command("run_tests", "--all", stdout=out, stderr=io.StringIO())
    assert "passed 1, failed 1" in out.getvalue()
    assert Completion.objects.get(pk=pair.completion_a_id).outcome == "passed"

    out = io.StringIO()
    call_command("run_tests", "--ids", f"{pair.completion_b_id}", stdout=out, stderr=io.StringIO())
    assert "1 completion(s) to test" in out.getvalue() and "failed 1" in out.getvalue()


@pytest.mark.parametrize(
    "ids, message",
    [("1,x", "'x' is not an id"), (",", "at least one"), ("999999999", "no completion with id 999999999")],
)
def test_the_command_names_bad_ids(db, ids, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_tests", "--ids", ids, stdout=io.StringIO(), stderr=io.StringIO())


def test_the_command_needs_to_be_told_which(db):
    with pytest.raises(CommandError, match="one of the arguments --all --untested --ids is required"):
        call_command("run_tests", stdout=io.StringIO(), stderr=io.StringIO())


# --- issue 11: only verdicts judged outside the sandbox decide pairs -----------------------------------------

# Wrong, then swaps the harness's test chunks for "pass" (and empties its calls) through gc: judged in process,
# this passed and its pairs were marked decided_by_tests.
GC_FORGERY = WRONG + (
    "import gc\nfor o in gc.get_objects():\n"
    "    if type(o) is list and o and all(type(t) is tuple and len(t) == 3 for t in o):\n"
    "        if all(type(t[0]) is str and type(t[2]) is int for t in o):\n"
    "            o[:] = [('pass\\n', 1, sum(t[2] for t in o))]\n"
    "        elif all(type(t[0]) is str and type(t[1]) is tuple for t in o):\n"
    "            o[:] = []\n"
)
WEAK_TESTS = "def check(candidate):\n    for x in (0, 2):\n        assert candidate(x) == 2 * x\n"


def test_verdicts_store_their_strength_and_the_limits_that_held(pair):
    completions_run_tests(completion_ids=[pair.completion_a_id, pair.completion_b_id])
    for completion in Completion.objects.filter(pk__in=[pair.completion_a_id, pair.completion_b_id]):
        assert completion.verdict_strength == "strong"
        assert {"memory", "pids", "cpu", "seccomp"} <= set(completion.test_details["limits"])
    assert "judged outside the sandbox" in Completion.objects.get(pk=pair.completion_b_id).test_stderr


def test_a_gc_forged_pass_is_not_stored_as_passed_and_decides_no_pair(prompt):
    forger = factories.CompletionFactory(prompt=prompt, text=GC_FORGERY)
    honest_wrong = factories.CompletionFactory(prompt=prompt, text="    return x\n")
    pair = factories.PairFactory(prompt=prompt, completion_a=forger, completion_b=honest_wrong)
    counts = completions_run_tests(completion_ids=[forger.pk, honest_wrong.pk])
    forger.refresh_from_db()
    assert forger.outcome in ("failed", "error") and forger.verdict_strength == "strong"
    assert counts["passed"] == 0 and counts["pairs_decided"] == 0
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is False


def test_weak_verdicts_decide_no_pair_even_when_one_side_passed(db):
    weak = factories.PromptFactory(text=PROMPT, tests=WEAK_TESTS, entry_point="double")
    right = factories.CompletionFactory(prompt=weak, text=RIGHT)
    forger = factories.CompletionFactory(prompt=weak, text=GC_FORGERY)
    wrong = factories.CompletionFactory(prompt=weak, text=WRONG)
    pairs = [factories.PairFactory(prompt=weak, completion_a=right, completion_b=other) for other in (forger, wrong)]
    counts = completions_run_tests(completion_ids=[right.pk, forger.pk, wrong.pk])
    stored = {c.pk: (c.outcome, c.verdict_strength) for c in Completion.objects.filter(prompt=weak)}
    assert stored[right.pk] == ("passed", "weak") and stored[wrong.pk] == ("failed", "weak")
    assert stored[forger.pk][1] == "weak"
    assert counts["pairs_decided"] == 0
    assert not any(Pair.objects.get(pk=p.pk).decided_by_tests for p in pairs)


def test_pairs_formed_after_the_tests_ran_are_decided_by_strong_verdicts_only(prompt):
    from feedback.coders.pairing import pairs_form

    def tested(text: str, outcome: str, strength: str) -> Completion:
        return factories.CompletionFactory(prompt=prompt, text=text, outcome=outcome, verdict_strength=strength)

    strong = pairs_form(completions=[tested("a\n", "passed", "strong"), tested("b\n", "failed", "strong")])
    weak = pairs_form(completions=[tested("c\n", "passed", "weak"), tested("d\n", "failed", "weak")])
    mixed = pairs_form(completions=[tested("e\n", "passed", "strong"), tested("f\n", "failed", "weak")])
    assert [p.decided_by_tests for p in strong + weak + mixed] == [True, False, False]


def test_the_migration_undecides_pairs_that_verdicts_of_unknown_strength_decided(pair):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("feedback.migrations.0007_sandbox_verdict_strength")
    Pair.objects.filter(pk=pair.pk).update(decided_by_tests=True)
    migration.forget_unproven_decisions(apps, None)
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is False
    completions_run_tests(completion_ids=[pair.completion_a_id, pair.completion_b_id])  # what run_tests does
    assert Pair.objects.get(pk=pair.pk).decided_by_tests is True
