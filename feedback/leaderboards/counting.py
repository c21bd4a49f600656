"""Which votes count on the leaderboards: ONE function, so that quality control plugs in at one place.

Today a vote counts unless its volunteer's account is inactive (deactivated or suspended) or the volunteer's
votes carry no weight (``Volunteer.trust`` at or below zero). A volunteer without a Volunteer row weighs 1, as
in the snapshots (``COALESCE(vol.trust, 1.0)`` in feedback/datasets/reader.py).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet


def counted_votes(votes: QuerySet) -> QuerySet:
    """The votes of ``votes`` that pass quality control (a Vote queryset in, a narrower one out)."""
    return votes.filter(volunteer__is_active=True).filter(
        Q(volunteer__volunteer__isnull=True) | Q(volunteer__volunteer__trust__gt=0.0)
    )
