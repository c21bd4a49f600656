"""The contributors leaderboard: who gave the most counted votes in the last 7 days and of all time.

Only votes that ``counting.counted_votes`` keeps are counted, and only volunteers listed on the leaderboard
(``Volunteer.listed_on_leaderboard``, on by default; a volunteer can opt out) appear, by username.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q

from feedback.models import Vote

from .counting import counted_votes

WEEK = timedelta(days=7)


def listed(votes):
    """Votes of volunteers who let themselves be listed (a user without a Volunteer row has not opted out)."""
    return votes.filter(Q(volunteer__volunteer__isnull=True) | Q(volunteer__volunteer__listed_on_leaderboard=True))


def top_contributors(*, since: datetime | None, limit: int) -> list[dict]:
    """[{"user_id", "username", "votes"}], most votes first (ties by username), at most ``limit``."""
    votes = listed(counted_votes(Vote.objects.all())).order_by()
    if since is not None:
        votes = votes.filter(created_at__gte=since)
    rows = (
        votes.values("volunteer_id", "volunteer__username")
        .annotate(n=Count("id"))
        .order_by("-n", "volunteer__username")[:limit]
    )
    return [{"user_id": r["volunteer_id"], "username": r["volunteer__username"], "votes": r["n"]} for r in rows]


def contributors_board(*, now: datetime, limit: int) -> dict:
    return {
        "week": top_contributors(since=now - WEEK, limit=limit),
        "all_time": top_contributors(since=None, limit=limit),
    }
