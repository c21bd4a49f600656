"""Undoing the last vote within a few seconds (``CODEPREF_UNDO_SECONDS``).

One transaction removes the vote row, takes its count off the pair (reopening a pair the vote had closed)
and gives the volunteer the assignment back unanswered, so the pair is theirs to rank again. The pair's
claim stays: it passes from the vote back to the live assignment (``claims_count`` = votes + live
assignments). A vote already in a dataset snapshot cannot be undone.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Max, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from feedback.errors import Conflict, NotFound, ServiceError
from feedback.models import MAX_ID, Assignment, Pair, Vote

from .reveal import snapshot_holding, undo_seconds


def vote_id_checked(vote_id) -> int:
    if isinstance(vote_id, bool) or not isinstance(vote_id, int) or not 1 <= vote_id <= MAX_ID:
        raise ServiceError(f"vote must be a positive integer id; got {vote_id!r:.40}")
    return vote_id


@transaction.atomic
def vote_undo(*, user, vote_id: int) -> int:
    """Remove the volunteer's own recent vote; returns its pair's id.

    Refused (Conflict) once the undo window has passed or when a dataset snapshot already holds the vote.
    """
    vote_id = vote_id_checked(vote_id)
    vote = Vote.objects.select_for_update().filter(pk=vote_id, volunteer=user).first()
    if vote is None:
        raise NotFound(f"vote {vote_id} is not one of yours (or was already undone)")
    now = timezone.now()
    window = undo_seconds()
    if now - vote.created_at > timedelta(seconds=window):
        raise Conflict(f"a vote can be undone for {window} seconds only; this one is older")
    held = snapshot_holding(vote.pk)
    if held is not None:
        raise Conflict(f"this vote is already in dataset v{held.version} and cannot be undone")
    pair_id = vote.pair_id
    vote.delete()
    Pair.objects.filter(pk=pair_id).update(
        votes_count=Case(When(votes_count__gt=0, then=F("votes_count") - 1), default=Value(0)),
        # The vote may have closed the pair at k: it needs a vote again.
        state=Case(
            When(Q(state=Pair.State.COMPLETE) & Q(votes_count__lte=F("votes_wanted")), then=Value(Pair.State.OPEN)),
            default=F("state"),
        ),
        last_vote_at=Subquery(
            Vote.objects.filter(pair_id=OuterRef("pk"))
            .values("pair_id")
            .annotate(last=Max("created_at"))
            .values("last")
        ),
    )
    ttl = timedelta(seconds=settings.CODEPREF["ASSIGNMENT_TTL_SECONDS"])
    # Its hand-out time stays: the pair comes back before any newer one, and the next vote's time counts
    # the first reading too.
    Assignment.objects.filter(volunteer=user, pair_id=pair_id).update(
        voted_at=None, released_at=None, expires_at=now + ttl
    )
    return pair_id
