"""Gold pairs seen from the volunteer's side: the feedback after an onboarding vote, and the gold pairs missed.

A new volunteer's first ``QC_ONBOARDING_PAIRS`` pairs are gold (the claim hands them out first); after each of
those votes they are told whether they agreed with the known answer, and why that answer is right. Later gold
pairs are mixed in unannounced (no feedback: they look like any other pair); the ones a volunteer got wrong are
listed on their quality page (``gold_missed``), with the known answer and its explanation.
"""

from __future__ import annotations

from django.conf import settings

from feedback.models import Pair, Vote

from .votes import VoteResult


def _screen_answer(gold_choice: str, *, left_is_a: bool) -> str:
    if gold_choice == Vote.Choice.A:
        return "left" if left_is_a else "right"
    if gold_choice == Vote.Choice.B:
        return "right" if left_is_a else "left"
    return gold_choice


def vote_feedback(*, user, result: VoteResult) -> dict | None:
    """``{"gold": True, "agreed": bool, "answer": screen side, "explanation": str}`` after an onboarding vote
    on a gold pair; None for every other vote (a gold pair mixed in later is not announced).

    Costs nothing more on the usual vote: the vote's statement read the pair's known answer already.
    """
    vote = result.vote
    gold_choice = result.gold_choice
    if gold_choice is None:
        gold_choice = Pair.objects.filter(pk=vote.pair_id).values_list("gold_choice", flat=True).first() or ""
    if not gold_choice:
        return None
    onboarding = settings.CODEPREF["QC_ONBOARDING_PAIRS"]
    earlier = Vote.objects.filter(volunteer=user, pk__lt=vote.pk)[:onboarding].count()
    if earlier >= onboarding:
        return None
    explanation = Pair.objects.filter(pk=vote.pair_id).values_list("gold_explanation", flat=True).first() or ""
    return {
        "gold": True,
        "agreed": vote.choice == gold_choice,
        "answer": _screen_answer(gold_choice, left_is_a=vote.left_is_a),
        "explanation": explanation,
        "onboarding_left": max(0, onboarding - earlier - 1),
    }


def gold_missed(user, *, limit: int = 50) -> list[dict]:
    """The volunteer's votes on gold pairs that disagree with the known answer, newest first."""
    votes = (
        Vote.objects.filter(volunteer=user, pair__state=Pair.State.GOLD)
        .exclude(pair__gold_choice="")
        .select_related("pair__prompt")
        .only(
            "id",
            "choice",
            "left_is_a",
            "created_at",
            "pair__id",
            "pair__gold_choice",
            "pair__gold_explanation",
            "pair__prompt__id",
            "pair__prompt__text",
            "pair__prompt__external_id",
        )  # fmt: skip
        .order_by("-id")
    )
    missed = []
    for vote in votes.iterator(chunk_size=200):
        if vote.choice == vote.pair.gold_choice:
            continue
        missed.append(
            {
                "pair": vote.pair_id,
                "prompt": vote.pair.prompt,
                "yours": vote.screen_choice,
                "answer": _screen_answer(vote.pair.gold_choice, left_is_a=vote.left_is_a),
                "explanation": vote.pair.gold_explanation,
                "at": vote.created_at,
            }
        )
        if len(missed) >= limit:
            break
    return missed
