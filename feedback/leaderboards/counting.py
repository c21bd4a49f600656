"""Which votes count on the leaderboards: ONE function, the same rule as quality control in the snapshots
(``feedback/datasets/reader.py: vote_weight_sql``).

A vote counts unless its volunteer's account is inactive, the volunteer is suspended, the volunteer's trust is
below ``QC_TRUST_THRESHOLD``, or quality control gave the vote itself no weight (``qc_weight`` 0: onboarding
votes on gold pairs). Votes not assessed yet (``qc_weight`` NULL) count, as they do in snapshots at the
volunteer's trust. A voter without a Volunteer row weighs 1, as in the snapshots.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet


def counted_votes(votes: QuerySet) -> QuerySet:
    """The votes of ``votes`` that pass quality control (a Vote queryset in, a narrower one out)."""
    threshold = float(settings.CODEPREF["QC_TRUST_THRESHOLD"])
    no_row = Q(volunteer__volunteer__isnull=True)
    trusted = Q(volunteer__volunteer__suspended_at__isnull=True, volunteer__volunteer__trust__gte=threshold)
    weighted = Q(qc_weight__isnull=True) | Q(qc_weight__gt=0.0)
    return votes.filter(volunteer__is_active=True).filter(no_row | trusted).filter(weighted)
