"""Ranking's other writes: skipping a pair, reporting one, and moderators resolving reports.

Claims live in ``claims.py`` and votes in ``votes.py``. Every function is keyword-only and raises
``ServiceError`` (400) or ``Conflict`` (409) for input it refuses.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from feedback.errors import Conflict, NotFound, ServiceError
from feedback.models import Assignment, Flag, Pair

from .limits import MAX_NOTE_LENGTH
from .votes import pair_id_checked


@transaction.atomic
def pair_skip(*, user, pair_id: int) -> Assignment:
    """The volunteer passes on an assigned pair; it goes back to others and never returns to them."""
    pair_id = pair_id_checked(pair_id)
    assignment = Assignment.objects.select_for_update().filter(volunteer=user, pair_id=pair_id).first()
    if assignment is None:
        raise NotFound(f"pair {pair_id} is not assigned to you")
    if assignment.voted_at is not None:
        raise Conflict(f"you already voted on pair {pair_id}")
    if assignment.skipped_at is None:
        if assignment.released_at is None:
            Pair.objects.filter(pk=pair_id, claims_count__gt=0).update(claims_count=F("claims_count") - 1)
        assignment.skipped_at = timezone.now()
        assignment.save(update_fields=["skipped_at"])
    return assignment


def pair_report(*, user, pair_id: int, reason: str, note: str = "", move_on: bool = False) -> tuple[Flag, bool]:
    """Report a pair (broken / harmful / personal data); the same report twice is stored once.

    ``move_on``: a reported pair is not one to rank, so it is also skipped (unless already voted on), in the
    same transaction. Returns the report and whether it is new.
    """
    if reason not in Flag.Reason.values:
        raise ServiceError(f"reason must be one of {', '.join(Flag.Reason.values)}; got {reason!r}")
    note = " ".join((note or "").split())
    if len(note) > MAX_NOTE_LENGTH:
        raise ServiceError(f"note must be at most {MAX_NOTE_LENGTH} characters")
    if "\x00" in note:
        raise ServiceError("note must not contain NUL characters")
    pair_id = pair_id_checked(pair_id)
    pair = Pair.objects.filter(pk=pair_id).only("id", "prompt_id").first()
    if pair is None:
        raise NotFound(f"pair {pair_id} does not exist")
    if not Assignment.objects.filter(volunteer=user, pair_id=pair_id).exists():
        raise NotFound(f"pair {pair_id} is not assigned to you")
    with transaction.atomic():
        try:
            with transaction.atomic():
                flag, created = Flag.objects.get_or_create(
                    reporter=user, pair=pair, reason=reason, defaults={"prompt_id": pair.prompt_id, "note": note}
                )
        except IntegrityError:  # the same report, made at the same moment
            flag, created = Flag.objects.get(reporter=user, pair=pair, reason=reason), False
        if move_on:
            try:
                pair_skip(user=user, pair_id=pair_id)
            except Conflict:
                pass  # already voted on: nothing to move on from
    return flag, created


def flag_resolve(*, flag_ids: Iterable[int], state: str, by) -> int:
    """A moderator upholds (the subject leaves datasets), dismisses or reopens reports; returns how many."""
    if state not in Flag.State.values:
        raise ServiceError(f"state must be one of {', '.join(Flag.State.values)}; got {state!r}")
    resolved = state != Flag.State.OPEN
    return Flag.objects.filter(pk__in=list(flag_ids)).update(
        state=state, resolved_by=by if resolved else None, resolved_at=timezone.now() if resolved else None
    )
