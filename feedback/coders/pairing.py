"""Forming pairs of completions for volunteers to rank: after an import, and after a model wrote completions."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Q

from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, Pair, Prompt, whitespace_normalised

from .verdicts import gold_explanation_from_tests, winner_by_tests

PAIRING_POLICIES = ("self", "arena")


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
        formed.append(_pair_of(prompt, a, b))
        room -= 1
    Pair.objects.bulk_create(formed, ignore_conflicts=True)
    return formed


def _pair_of(prompt: Prompt, a: Completion, b: Completion) -> Pair:
    """A new pair; gold at once when the tests already decide it by strong verdicts (``verdicts.winner_by_tests``)."""
    pair = Pair(prompt=prompt, language=prompt.language, completion_a=a, completion_b=b)
    winner = winner_by_tests(a, b)
    if winner:
        won, lost = (a, b) if winner == "a" else (b, a)
        pair.decided_by_tests, pair.state = True, Pair.State.GOLD
        pair.gold_choice, pair.gold_source = winner, Pair.GoldSource.TESTS
        pair.gold_explanation = gold_explanation_from_tests(won, lost)
    return pair


def pairing_policy_check(policy: str) -> str:
    """The policy if it is one of PAIRING_POLICIES; ServiceError otherwise."""
    if policy not in PAIRING_POLICIES:
        raise ServiceError(f"PAIRING_POLICY must be one of {', '.join(PAIRING_POLICIES)}; got {policy!r}")
    return policy


def pairs_form_for_model(*, prompt: Prompt, model_version: ModelVersion, policy: str | None = None) -> list[Pair]:
    """Pairs for a prompt after a model wrote completions for it, by the pairing policy.

    ``self``: two samples of this model. ``arena``: this model against its parent first, then against
    the other active versions; never two completions of the same model.
    """
    policy = pairing_policy_check(policy or settings.CODEPREF["PAIRING_POLICY"])
    mine = list(Completion.objects.filter(prompt=prompt, model_version=model_version).select_related("prompt"))
    if policy == "self":
        return pairs_form(completions=mine)
    rivals = ModelVersion.objects.filter(Q(pk=model_version.parent_id) | Q(is_active=True)).exclude(
        pk=model_version.pk
    )
    formed: list[Pair] = []
    for rival in sorted(rivals, key=lambda v: (v.pk != model_version.parent_id, v.pk)):
        theirs = list(Completion.objects.filter(prompt=prompt, model_version=rival).select_related("prompt"))
        if theirs and mine:
            formed += pairs_form(completions=mine + theirs, cross_model_only=True)
    return formed
