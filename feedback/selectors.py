"""Reads, and the one claim that has to happen while reading: which pair a volunteer ranks next."""

from __future__ import annotations

import random
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from .models import Assignment, Pair, Volunteer

# What a ranking page or the API shows of a pair, loaded with the assignment in one query. Other fields
# (tests, captured output) stay deferred: they load on access, at one query each.
SHOWN_FIELDS = (
    "pair__prompt__text",
    "pair__prompt__language",
    "pair__completion_a__text",
    "pair__completion_a__outcome",
    "pair__completion_b__text",
    "pair__completion_b__outcome",
)
_SHOWN_RELATED = ("prompt", "completion_a", "completion_b")
_PAIR_FIELDS = ("id", "prompt_id", "language", "completion_a_id", "completion_b_id", "state", "votes_wanted")


def _shown_pair_fields(prefix: str) -> list[str]:
    own = [prefix + name for name in _PAIR_FIELDS]
    shown = [prefix + name.removeprefix("pair__") for name in SHOWN_FIELDS]
    return own + shown


def _pending_assignment(user) -> Assignment | None:
    """The volunteer's unanswered assignment, so that a reload shows the same pair, not a new one."""
    return (
        Assignment.objects.filter(
            volunteer=user,
            voted_at__isnull=True,
            skipped_at__isnull=True,
            released_at__isnull=True,
            pair__state=Pair.State.OPEN,
        )
        .select_related(*(f"pair__{name}" for name in _SHOWN_RELATED))
        .only(
            "id",
            "pair_id",
            "volunteer_id",
            "left_is_a",
            "created_at",
            "expires_at",
            "skipped_at",
            "voted_at",
            "released_at",
            *_shown_pair_fields("pair__"),
        )
        .order_by("created_at")
        .first()
    )


def _claimable(user, languages: list[str] | None, *, skip_locked: bool = True):
    pairs = Pair.objects.filter(state=Pair.State.OPEN, claims_count__lt=F("votes_wanted")).exclude(
        assignments__volunteer=user
    )
    if languages:
        pairs = pairs.filter(language__in=languages)
    pairs = pairs.order_by("claims_count", "shuffle_key").select_related(*_SHOWN_RELATED)
    pairs = pairs.only(*_shown_pair_fields(""))
    if connection.features.has_select_for_update_skip_locked:
        # Two volunteers asking at once get different pairs: the second skips the row the first holds.
        pairs = pairs.select_for_update(skip_locked=skip_locked, of=("self",))
    return pairs


def _claim(user, languages: list[str]) -> Assignment | None:
    with transaction.atomic():
        pair = None
        if languages:
            pair = _claimable(user, languages).first()
        if pair is None:
            pair = _claimable(user, None).first()
        if pair is None and connection.features.has_select_for_update_skip_locked:
            # Every claimable row may be locked by volunteers claiming at this moment: wait for them
            # (PostgreSQL re-checks the claim count on the committed row) rather than say "none left".
            pair = _claimable(user, None, skip_locked=False).first()
        if pair is None:
            return None
        Pair.objects.filter(pk=pair.pk).update(claims_count=F("claims_count") + 1)
        now = timezone.now()
        ttl = timedelta(seconds=settings.CODEPREF["ASSIGNMENT_TTL_SECONDS"])
        return Assignment.objects.create(
            pair=pair, volunteer=user, left_is_a=random.random() < 0.5, created_at=now, expires_at=now + ttl
        )


def next_pair_for(user) -> Assignment | None:
    """An open pair this volunteer has not voted on or skipped, as an Assignment (which side is left).

    Pairs with the fewest claims (votes plus live assignments) come first, those in the volunteer's
    languages before others; a pair is handed out only while it still needs votes.
    """
    pending = _pending_assignment(user)
    if pending is not None:
        return pending
    languages = Volunteer.objects.filter(user=user).values_list("languages", flat=True).first() or []
    for _attempt in range(3):
        try:
            assignment = _claim(user, languages)
        except IntegrityError:
            # The same volunteer asked twice at once and both requests picked the same pair.
            pending = _pending_assignment(user)
            if pending is not None:
                return pending
            continue
        if assignment is not None:
            return assignment
        # Nothing claimable: claims held by abandoned assignments may be blocking the last pairs.
        from .services import assignments_release_expired

        if not assignments_release_expired():
            return None
    return None


def assignment_for(user, pair_id: int) -> Assignment | None:
    return Assignment.objects.select_related("pair").filter(volunteer=user, pair_id=pair_id).first()
