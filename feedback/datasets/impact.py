"""A volunteer's impact, for their profile page (``/me/``): their votes, how often they agree with the final
labels, how many of their votes a published dataset holds, and which model versions were trained on those.

"Final label" is the label the snapshot builder gives the pair today (``aggregation.label_pair`` over every
vote, trust-weighted), counted only on pairs someone else voted on too (alone, a vote is its own label). A vote
is "in a published dataset" when a published snapshot's vote watermark covers it and its pair is not retired
(the snapshot's filters, e.g. upheld reports or a minimum agreement, may still have left its pair out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, Count, FloatField, Min, Q, Sum, When
from django.db.models.functions import Coalesce

from feedback.models import DatasetSnapshot, ModelVersion, Pair, Vote

from .aggregation import CHOICES, label_pair

RECENT_VOTES = 50


@dataclass
class Impact:
    total: int = 0
    compared: int = 0  # votes on pairs with someone else's vote too
    agreed: int = 0
    in_dataset: int = 0
    dataset_version: int | None = None
    models: list[ModelVersion] = field(default_factory=list)
    recent: list[dict] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


def _labels(pair_ids: list[int]) -> dict[int, tuple[str | None, int]]:
    """pair id -> (its label from every vote, how many votes), in one query."""
    weight = Coalesce("volunteer__volunteer__trust", 1.0, output_field=FloatField())
    sums = {
        f"w_{choice}": Sum(Case(When(choice=choice, then=weight), default=0.0, output_field=FloatField()))
        for choice in CHOICES
    }
    rows = Vote.objects.filter(pair_id__in=pair_ids).values("pair_id").annotate(n=Count("id"), **sums)
    labels = {}
    for row in rows:
        result = label_pair(row["w_a"], row["w_b"], row["w_tie"], row["w_both_bad"], row["n"])
        labels[row["pair_id"]] = (result.label if result else None, row["n"])
    return labels


def impact_of(user) -> Impact:
    """The profile's figures; a few queries whatever the number of votes, besides the labels of their pairs."""
    votes = Vote.objects.filter(volunteer=user)
    impact = Impact(total=votes.count())
    if not impact.total:
        return impact
    mine = list(votes.values_list("pair_id", "choice"))
    labels = _labels([pair_id for pair_id, _ in mine])
    for pair_id, choice in mine:
        label, count = labels.get(pair_id, (None, 0))
        if count > 1:
            impact.compared += 1
            impact.agreed += label == choice
    snapshot = DatasetSnapshot.objects.filter(state=DatasetSnapshot.State.PUBLISHED).order_by("-version").first()
    if snapshot is not None:
        impact.dataset_version = snapshot.version
        impact.in_dataset = votes.filter(~Q(pair__state=Pair.State.RETIRED), id__lte=snapshot.last_vote_id).count()
    first_vote = votes.aggregate(first=Min("id"))["first"]
    impact.models = list(
        ModelVersion.objects.filter(
            training_run__snapshot__state=DatasetSnapshot.State.PUBLISHED,
            training_run__snapshot__last_vote_id__gte=first_vote,
        )
        .distinct()
        .order_by("-created_at")
    )
    impact.recent = _recent(user, labels)
    return impact


def _recent(user, labels: dict) -> list[dict]:
    rows = Vote.objects.filter(volunteer=user).select_related("pair__prompt").order_by("-id")[:RECENT_VOTES]
    recent = []
    for vote in rows:
        label, count = labels.get(vote.pair_id, (None, 0))
        recent.append(
            {
                "vote": vote,
                "prompt": str(vote.pair.prompt),
                "choice": vote.get_choice_display(),
                "label": dict(Vote.Choice.choices).get(label, "") if count > 1 else "",
                "agrees": (label == vote.choice) if count > 1 else None,
            }
        )
    return recent
