"""Keeping nonsense out of the volunteers' queue: pairs whose two completions are both degenerate.

A completion is degenerate when it is empty, when the prompt and it together are not parseable Python, or when
its tests did not pass for a trivial reason. A pair is held back (formed, but retired so that it is never handed
out) when both sides are degenerate, or when both failed their tests the same trivial way (the same exception
type, or both timed out). Two failing sides that ran and answered wrongly (an ``AssertionError``) are still worth
a volunteer's comparison: one may be nearly right.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from django.db import transaction

from feedback.models import Completion, ModelVersion, Pair, Prompt

from .pairing import pairs_form_for_model

# A failure that says the code ran and produced a wrong answer, not that it is junk.
MEANINGFUL_FAILURES = frozenset({"AssertionError"})


def completion_defect(completion: Completion) -> str | None:
    """Why this completion is junk on its own ("empty", "no parseable code"), or None."""
    if not completion.text.strip():
        return "empty"
    if completion.prompt.language == "python":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in generated text
                # Compiled, never run: catches what parsing alone lets through (a `return` outside the function).
                compile(completion.prompt.text + completion.text, "<completion>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return "no parseable code"
    return None


def failure_signature(completion: Completion) -> str | None:
    """How the completion's tests failed ("timeout", an exception type), or None if it passed or was not run."""
    if completion.outcome == Completion.Outcome.TIMEOUT:
        return "timeout"
    if completion.outcome not in (Completion.Outcome.FAILED, Completion.Outcome.ERROR):
        return None
    lines = [line for line in completion.test_stderr.splitlines() if line.strip() and not line.startswith(" ")]
    last = lines[-1] if lines else ""
    name = last.split(":", 1)[0].strip()
    return name if name.isidentifier() or "." in name else completion.outcome


def pair_hold_back_reason(a: Completion, b: Completion) -> str | None:
    """Why a pair of these two completions should not be ranked, or None if it is worth a volunteer's time."""
    defects = (completion_defect(a), completion_defect(b))
    if all(defects):
        return "both degenerate: " + " / ".join(dict.fromkeys(defects))
    failures = (failure_signature(a), failure_signature(b))
    if failures[0] and failures[0] == failures[1] and failures[0] not in MEANINGFUL_FAILURES:
        return f"both fail the same way: {failures[0]}"
    return None


def pairs_form_screened(*, prompt: Prompt, model_version: ModelVersion) -> tuple[list[Pair], list[Pair]]:
    """Form a model's pairs for a prompt, retiring in the same transaction the ones held back (so that no
    volunteer is ever handed one); returns (open pairs formed, pairs held back)."""
    with transaction.atomic():
        formed = pairs_form_for_model(prompt=prompt, model_version=model_version)
        if not formed:
            return [], []
        keys = [(p.completion_a_id, p.completion_b_id) for p in formed]
        stored = Pair.objects.filter(prompt=prompt).select_related("completion_a__prompt", "completion_b__prompt")
        stored = [p for p in stored if (p.completion_a_id, p.completion_b_id) in keys]
        held = [p for p in stored if pair_hold_back_reason(p.completion_a, p.completion_b)]
        Pair.objects.filter(pk__in=[p.pk for p in held]).update(state=Pair.State.RETIRED)
    held_ids = {p.pk for p in held}
    return [p for p in stored if p.pk not in held_ids], held


def outcome_counts(completions: Iterable[Completion]) -> dict[str, int]:
    """Completions by test outcome ("passed", "failed", ...), every outcome present."""
    counts = dict.fromkeys(Completion.Outcome.values, 0)
    for completion in completions:
        counts[completion.outcome] += 1
    return counts
