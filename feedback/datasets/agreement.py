"""How much volunteers agree: Krippendorff's alpha (nominal, over a / b / tie / both-bad) overall, per language
and per model pair, from the human votes on pairs without a known answer (suspended volunteers left out)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Q

from feedback.models import ModelVersion, Pair

from .aggregation import CHOICES, krippendorff_alpha


def _summary(units: list[tuple[int, ...]]) -> dict:
    pairable = [u for u in units if sum(u) >= 2]
    return {"alpha": krippendorff_alpha(pairable) if pairable else None, "pairs": len(pairable)}


def agreement_report() -> dict:
    """{"overall": {alpha, pairs}, "by_language": {language: ...}, "by_model_pair": {"x vs y": ...}}; alpha is
    None where it is not defined (fewer than one pair with two votes, or every vote the same)."""
    counted = Q(votes__volunteer__volunteer__suspended_at__isnull=True)
    pairs = (
        Pair.objects.exclude(state=Pair.State.GOLD)
        .exclude(state=Pair.State.RETIRED)
        .filter(votes_count__gte=2)
        .annotate(**{f"n_{c}": Count("votes", filter=counted & Q(votes__choice=c)) for c in CHOICES})
        .values_list(
            "language",
            "completion_a__model_version_id",
            "completion_b__model_version_id",
            *(f"n_{c}" for c in CHOICES),
        )  # fmt: skip
    )
    names = dict(ModelVersion.objects.values_list("id", "name"))
    overall: list[tuple[int, ...]] = []
    by_language: dict[str, list] = defaultdict(list)
    by_models: dict[str, list] = defaultdict(list)
    for language, model_a, model_b, *counts in pairs.iterator(chunk_size=5000):
        unit = tuple(counts)
        overall.append(unit)
        by_language[language].append(unit)
        first, second = sorted((names.get(model_a, "?"), names.get(model_b, "?")))
        by_models[f"{first} vs {second}"].append(unit)
    return {
        "overall": _summary(overall),
        "by_language": {key: _summary(units) for key, units in sorted(by_language.items())},
        "by_model_pair": {key: _summary(units) for key, units in sorted(by_models.items())},
    }
