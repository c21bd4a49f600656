"""What a volunteer learns right after a vote, never before it: which model version wrote each side and,
where the prompt has tests, whether each side passes (as Chatbot Arena names the models after the vote).

The ranking page and the API show a pair blind (texts only); these values leave the server only in the
answer to a vote on that pair.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from feedback.models import Completion, DatasetSnapshot, Vote

_FIELDS = (
    "id",
    "pair_id",
    "volunteer_id",
    "choice",
    "left_is_a",
    "created_at",
    "pair__id",
    "pair__prompt__id",
    "pair__prompt__tests",
    "pair__prompt__test_style",
    "pair__completion_a__id",
    "pair__completion_a__outcome",
    "pair__completion_a__model_version__name",
    "pair__completion_b__id",
    "pair__completion_b__outcome",
    "pair__completion_b__model_version__name",
)
_RELATED = ("pair__prompt", "pair__completion_a__model_version", "pair__completion_b__model_version")


def undo_seconds() -> int:
    return int(settings.CODEPREF["UNDO_SECONDS"])


def snapshot_holding(vote_id: int) -> DatasetSnapshot | None:
    """The first dataset snapshot (published, or being built) whose vote watermark covers this vote."""
    states = (DatasetSnapshot.State.PUBLISHED, DatasetSnapshot.State.BUILDING)
    return (
        DatasetSnapshot.objects.filter(state__in=states, last_vote_id__gte=vote_id)
        .only("id", "version", "state")
        .order_by("version")
        .first()
    )


def _side(outcome: str, model: str, *, has_tests: bool) -> dict:
    ran = has_tests and outcome != Completion.Outcome.NOT_RUN
    return {
        "model": model,
        "outcome": outcome if has_tests else None,
        "outcome_label": Completion.Outcome(outcome).label if has_tests else "",
        "passes": (outcome == Completion.Outcome.PASSED) if ran else None,
    }


def vote_reveal(*, vote_id: int, user) -> dict | None:
    """The reveal of one of the volunteer's own votes (None for a vote that is not theirs or gone).

    ``left``/``right`` as the volunteer saw them; ``passes`` is None when the prompt has no tests or they
    have not run. ``undo_until`` is when the undo window closes, None when the vote can no longer be undone
    (``undo_blocked`` then says why, e.g. it is already in a dataset snapshot).
    """
    vote = Vote.objects.filter(pk=vote_id, volunteer=user).select_related(*_RELATED).only(*_FIELDS).first()
    if vote is None:
        return None
    pair = vote.pair
    a, b = pair.completion_a, pair.completion_b
    return reveal_body(
        vote,
        has_tests=pair.prompt.has_tests,
        a=(a.outcome, a.model_version.name),
        b=(b.outcome, b.model_version.name),
        held=snapshot_holding(vote.pk),
    )


def reveal_body(
    vote: Vote, *, has_tests: bool, a: tuple[str, str], b: tuple[str, str], held: DatasetSnapshot | None
) -> dict:
    """The reveal from values already read: each side's (outcome, model name) and the snapshot holding the
    vote (None if none). The vote path's statement reads them with the vote (votes._VOTE_SQL)."""
    a_side, b_side = _side(*a, has_tests=has_tests), _side(*b, has_tests=has_tests)
    left, right = (a_side, b_side) if vote.left_is_a else (b_side, a_side)
    return {
        "vote": vote.pk,
        "pair": vote.pair_id,
        "choice": vote.screen_choice,
        "has_tests": has_tests,
        "left": left,
        "right": right,
        **_undo_fields(vote, held),
    }


def _undo_fields(vote: Vote, held: DatasetSnapshot | None) -> dict:
    """``undo_until`` (None once the vote cannot be undone) and ``undo_blocked`` (why not, or "")."""
    until = vote.created_at + timedelta(seconds=undo_seconds())
    if held is not None:
        verb = "published in" if held.state == DatasetSnapshot.State.PUBLISHED else "being written into"
        return {"undo_until": None, "undo_blocked": f"This vote is already {verb} dataset v{held.version}."}
    return {"undo_until": until, "undo_blocked": ""}
