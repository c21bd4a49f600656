"""Ranking's other writes: skipping a pair, reporting one, and moderators resolving reports.

Claims live in ``claims.py`` and votes in ``votes.py``. Every function is keyword-only and raises
``ServiceError`` (400) or ``Conflict`` (409) for input it refuses.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from feedback.audit import audit_log
from feedback.errors import Conflict, NotFound, ServiceError
from feedback.models import Assignment, Flag, Pair, Vote

from .limits import MAX_GOLD_EXPLANATION, MAX_NOTE_LENGTH
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
    """Report a pair (broken / harmful / personal data / wrong language / duplicate / other, which needs a
    note); the same report twice is stored once.

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
    if reason == Flag.Reason.OTHER and not note:
        raise ServiceError("a report for another reason needs a note saying what is wrong")
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


def pair_gold_author(*, pair_id: int, choice: str, explanation: str = "", by=None) -> Pair:
    """A maintainer's known answer for a pair: it becomes gold (shown to volunteers only as a quality check,
    labelled by this answer in snapshots). An empty ``choice`` takes a maintainer's answer back (the pair
    returns to the volunteers; a pair the tests decide stays theirs). Logged when ``by`` is given."""
    if choice and choice not in Vote.Choice.values:
        raise ServiceError(f"gold answer must be one of {', '.join(Vote.Choice.values)}; got {choice!r:.40}")
    explanation = (explanation or "").strip()
    if "\x00" in explanation or len(explanation) > MAX_GOLD_EXPLANATION:
        raise ServiceError(f"the explanation must be at most {MAX_GOLD_EXPLANATION} characters, without NUL")
    with transaction.atomic():
        pair = Pair.objects.select_for_update().filter(pk=pair_id_checked(pair_id)).first()
        if pair is None:
            raise ServiceError(f"pair {pair_id} does not exist")
        if choice:
            pair.gold_choice, pair.gold_source, pair.gold_explanation = choice, Pair.GoldSource.MAINTAINER, explanation
            if pair.state != Pair.State.RETIRED:
                pair.state = Pair.State.GOLD
        elif pair.gold_source == Pair.GoldSource.MAINTAINER:
            pair.gold_choice, pair.gold_source, pair.gold_explanation = "", Pair.GoldSource.NONE, ""
            if pair.state == Pair.State.GOLD:
                full = pair.votes_count >= pair.votes_wanted
                pair.state = Pair.State.COMPLETE if full else Pair.State.OPEN
        pair.save(update_fields=["gold_choice", "gold_source", "gold_explanation", "state"])
        if by is not None:
            audit_log(
                by=by,
                obj=pair,
                action=f"set the known answer to {choice!r}" if choice else "took the known answer back",
            )
    return pair
