"""Screening the demo model's pairs: two degenerate completions never reach a volunteer."""

from __future__ import annotations

import pytest

from feedback.coders.screening import (
    completion_defect,
    failure_signature,
    pair_hold_back_reason,
    pairs_form_screened,
)
from feedback.models import Completion, ModelVersion, Pair
from feedback.ranking.claims import assignment_claim_next
from tests import factories

pytestmark = pytest.mark.django_db

TRACEBACK = 'Traceback (most recent call last):\n  File "<completion>", line 3, in f\n{}\n'


def completion(prompt, text, outcome=Completion.Outcome.NOT_RUN, error="", model=None):
    return factories.CompletionFactory(
        prompt=prompt,
        text=text,
        outcome=outcome,
        test_stderr=TRACEBACK.format(error) if error else "",
        model_version=model or factories.ModelVersionFactory(),
    )


@pytest.fixture
def prompt():
    return factories.PromptFactory(text='def inc(x):\n    """Return x plus one."""\n', entry_point="inc")


@pytest.mark.parametrize(
    ("text", "defect"),
    [
        ("   \n\n", "empty"),
        ("    return (x +\n", "no parseable code"),
        ("return x + 1\n", "no parseable code"),  # not indented: the body is missing
        ("    return x + 1\n", None),
        ("    return x - 1\n", None),  # wrong, but code
    ],
)
def test_a_completion_is_degenerate_when_empty_or_not_parseable(prompt, text, defect):
    assert completion_defect(completion(prompt, text)) == defect


@pytest.mark.parametrize(
    ("outcome", "error", "signature"),
    [
        (Completion.Outcome.PASSED, "", None),
        (Completion.Outcome.NOT_RUN, "", None),
        (Completion.Outcome.TIMEOUT, "", "timeout"),
        (Completion.Outcome.ERROR, "NameError: name 'y' is not defined", "NameError"),
        (Completion.Outcome.FAILED, "AssertionError", "AssertionError"),
        (Completion.Outcome.ERROR, "", "error"),
    ],
)
def test_the_failure_signature_is_the_exception_type_of_the_last_traceback_line(prompt, outcome, error, signature):
    assert failure_signature(completion(prompt, "    return y\n", outcome, error)) == signature


def test_pairs_are_held_back_only_when_both_sides_are_junk_or_fail_the_same_trivial_way(prompt):
    empty = completion(prompt, " ")
    broken = completion(prompt, "    return (x\n")
    good = completion(prompt, "    return x + 1\n", Completion.Outcome.PASSED)
    name_a = completion(prompt, "    return y\n", Completion.Outcome.ERROR, "NameError: name 'y' is not defined")
    name_b = completion(prompt, "    return z\n", Completion.Outcome.ERROR, "NameError: name 'z' is not defined")
    wrong_a = completion(prompt, "    return x\n", Completion.Outcome.FAILED, "AssertionError")
    wrong_b = completion(prompt, "    return x - 1\n", Completion.Outcome.FAILED, "AssertionError")
    type_error = completion(prompt, "    return x + 'a'\n", Completion.Outcome.ERROR, "TypeError: bad operand")

    assert pair_hold_back_reason(empty, broken) == "both degenerate: empty / no parseable code"
    assert pair_hold_back_reason(broken, broken) == "both degenerate: no parseable code"
    assert pair_hold_back_reason(name_a, name_b) == "both fail the same way: NameError"
    # One side worth reading, or two wrong answers that ran: a volunteer's comparison still means something.
    assert pair_hold_back_reason(empty, good) is None
    assert pair_hold_back_reason(wrong_a, wrong_b) is None
    assert pair_hold_back_reason(name_a, type_error) is None


def test_screened_pairs_of_junk_are_retired_at_once_and_never_handed_out(prompt, volunteer):
    model = ModelVersion.objects.create(name="bootstrap-x", backend=ModelVersion.Backend.TRANSFORMERS, target="/m")
    other = factories.PromptFactory()
    completion(prompt, "    return (x\n", model=model)
    completion(prompt, "", model=model)  # stored by hand here: generation drops empty samples
    completion(other, "    return x + 1\n", Completion.Outcome.PASSED, model=model)
    completion(other, "    return x\n", Completion.Outcome.FAILED, "AssertionError", model=model)

    joined, held = pairs_form_screened(prompt=prompt, model_version=model)
    assert (len(joined), len(held)) == (0, 1)
    joined, held = pairs_form_screened(prompt=other, model_version=model)
    assert (len(joined), len(held)) == (1, 0)
    assert Pair.objects.get(prompt=prompt).state == Pair.State.RETIRED
    assert Pair.objects.get(prompt=other).state == Pair.State.OPEN

    assignment = assignment_claim_next(user=volunteer)
    assert assignment.pair.prompt_id == other.pk
    # Again: nothing more is formed, nothing reopened.
    assert pairs_form_screened(prompt=prompt, model_version=model) == ([], [])
    assert Pair.objects.get(prompt=prompt).state == Pair.State.RETIRED
