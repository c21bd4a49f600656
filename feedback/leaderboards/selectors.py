"""Leaderboard reads: the stored row, with the contributors who have since opted out (or left) taken off."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from feedback.models import Leaderboard

from .services import KEY

EMPTY = {
    "models": [],
    "win_rates": [],
    "comparisons": 0,
    "left_out_both_bad": 0,
    "left_out_same_model": 0,
    "bootstrap_rounds": 0,
    "seed": None,
    "interval": None,
    "contributors": {"week": [], "all_time": []},
}


def leaderboard_current() -> dict:
    """The stored leaderboards as a dict with ``computed_at`` (None before the first refresh)."""
    row = Leaderboard.objects.filter(key=KEY).only("computed_at", "body").first()
    if row is None:
        return {**EMPTY, "computed_at": None}
    body = {**EMPTY, **row.body, "computed_at": row.computed_at}
    body["contributors"] = _still_listed(body["contributors"])
    return body


def _still_listed(contributors: dict) -> dict:
    ids = {entry["user_id"] for entries in contributors.values() for entry in entries}
    if not ids:
        return contributors
    users = get_user_model().objects.filter(pk__in=ids, is_active=True)
    keep = set(users.exclude(volunteer__listed_on_leaderboard=False).values_list("pk", flat=True))
    return {
        period: [{**entry, "rank": n} for n, entry in enumerate((e for e in entries if e["user_id"] in keep), 1)]
        for period, entries in contributors.items()
    }


def leaderboard_plot() -> bytes:
    row = Leaderboard.objects.filter(key=KEY).only("plot_png").first()
    return bytes(row.plot_png) if row is not None and row.plot_png else b""
