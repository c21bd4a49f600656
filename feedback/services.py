"""Pair forming (moving to feedback/coders/pairing.py with the coders package)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from django.conf import settings

from .errors import Conflict, ServiceError  # noqa: F401 (importers move to feedback.errors with the reshape)
from .models import Completion, Pair, whitespace_normalised


def pairs_form(
    *,
    completions: Iterable[Completion],
    max_pairs: int | None = None,
    cross_model_only: bool = False,
) -> list[Pair]:
    """Form pairs from completions of one prompt: every two distinct ones, up to the per-prompt cap.

    Two completions that are equal after whitespace normalisation are never paired; a pair that
    already exists is not formed again, and existing pairs count towards the cap.
    """
    completions = sorted(completions, key=lambda c: c.pk)
    if len(completions) < 2:
        return []
    prompt = completions[0].prompt
    cap = settings.CODEPREF["MAX_PAIRS_PER_PROMPT"] if max_pairs is None else max_pairs
    existing = set(Pair.objects.filter(prompt=prompt).values_list("completion_a_id", "completion_b_id"))
    room = cap - len(existing)
    formed: list[Pair] = []
    normalised = {c.pk: whitespace_normalised(c.text) for c in completions}
    for a, b in itertools.combinations(completions, 2):
        if room <= 0:
            break
        if (a.pk, b.pk) in existing or normalised[a.pk] == normalised[b.pk]:
            continue
        if cross_model_only and a.model_version_id == b.model_version_id:
            continue
        formed.append(
            Pair(
                prompt=prompt,
                language=prompt.language,
                completion_a=a,
                completion_b=b,
                decided_by_tests=_decided_by_tests(a, b),
            )
        )
        room -= 1
    Pair.objects.bulk_create(formed, ignore_conflicts=True)
    return formed


def _decided_by_tests(a: Completion, b: Completion) -> bool:
    outcomes = {a.outcome, b.outcome}
    return Completion.Outcome.PASSED in outcomes and len(outcomes) == 2 and Completion.Outcome.NOT_RUN not in outcomes
