"""Ranking's reads: what a volunteer is shown, their pending assignment, their votes."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from feedback.models import Assignment, Pair, Vote

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
SHOWN_RELATED = ("prompt", "completion_a", "completion_b")
_PAIR_FIELDS = ("id", "prompt_id", "language", "completion_a_id", "completion_b_id", "state", "votes_wanted")


def shown_pair_fields(prefix: str) -> list[str]:
    own = [prefix + name for name in _PAIR_FIELDS]
    shown = [prefix + name.removeprefix("pair__") for name in SHOWN_FIELDS]
    return own + shown


def pending_assignment(user) -> Assignment | None:
    """The volunteer's unanswered assignment, so that a reload shows the same pair, not a new one."""
    return (
        Assignment.objects.filter(
            volunteer=user,
            voted_at__isnull=True,
            skipped_at__isnull=True,
            released_at__isnull=True,
            pair__state__in=(Pair.State.OPEN, Pair.State.GOLD),
        )
        .select_related(*(f"pair__{name}" for name in SHOWN_RELATED))
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
            *shown_pair_fields("pair__"),
        )
        .order_by("created_at")
        .first()
    )


def assignment_shown(assignment_id: int) -> Assignment:
    """An assignment with everything a ranking page shows, in one query."""
    return Assignment.objects.select_related("pair__prompt", "pair__completion_a", "pair__completion_b").get(
        pk=assignment_id
    )


def votes_of(user) -> QuerySet[Vote]:
    return Vote.objects.filter(volunteer=user)


def progress_of(user, *, today: date | None = None) -> dict:
    """``today`` / ``total`` votes and the ``streak``: days in a row with a vote, up to today (or up to
    yesterday while today has none yet, so a streak does not read 0 before the day's first vote)."""
    today = today or timezone.localdate()
    days = list(
        Vote.objects.filter(volunteer=user)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("-day")
        .values_list("day", "n")[:400]
    )
    total = Vote.objects.filter(volunteer=user).count() if len(days) == 400 else sum(n for _, n in days)
    counts = dict(days)
    streak, day = 0, today if today in counts else today - timedelta(days=1)
    while day in counts:
        streak, day = streak + 1, day - timedelta(days=1)
    return {"today": counts.get(today, 0), "total": total, "streak": streak}
