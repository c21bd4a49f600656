"""What the dashboard shows, read in a handful of aggregate queries (each bounded: days, versions)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from feedback.coders.firstrun import demo_status_read
from feedback.datasets.aggregation import AgreementCounter
from feedback.models import Completion, DatasetSnapshot, Flag, Pair, TrainingRun, Vote
from training.dataset_format import count_key

from .charts import Chart, bar_chart
from .queues import queue_depths

DAYS = 14
ACTIVE_DAYS = 7
MODEL_VERSIONS = 12


def votes_per_day(*, days: int = DAYS, today: date | None = None) -> list[tuple[date, int]]:
    """Votes on each of the last ``days`` days (UTC), oldest first, days without votes included."""
    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    counts = dict(
        Vote.objects.filter(created_at__date__gte=first)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    return [(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)]


def active_volunteers(*, days: int = ACTIVE_DAYS) -> int:
    """Volunteers who voted in the last ``days`` days."""
    since = timezone.now() - timedelta(days=days)
    return Vote.objects.filter(created_at__gte=since).values("volunteer").distinct().count()


def open_pairs() -> dict:
    """Open pairs, the votes they hold and want, and how many hold each number of votes."""
    pairs = Pair.objects.open()
    totals = pairs.aggregate(n=Count("id"), votes=Sum("votes_count"), wanted=Sum("votes_wanted"))
    by_votes = dict(pairs.values_list("votes_count").annotate(n=Count("id")).values_list("votes_count", "n"))
    top = max([*by_votes, *[0]], default=0)
    return {
        "count": totals["n"],
        "votes": totals["votes"] or 0,
        "wanted": totals["wanted"] or 0,
        "by_votes": [(k, by_votes.get(k, 0)) for k in range(top + 1)],
    }


def agreement() -> dict:
    """Over pairs with two or more votes: Krippendorff's alpha (nominal, the snapshots' measure) and the simple
    rate, the share of votes that agree with their pair's most common choice."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = Vote.objects.filter(pair__votes_count__gte=2).values_list("pair_id", "choice").annotate(n=Count("id"))
    for pair_id, choice, n in rows:
        counts[pair_id][choice] = n
    counter, agreeing, total = AgreementCounter(), 0, 0
    for by_choice in counts.values():
        votes = sum(by_choice.values())
        if votes < 2:
            continue
        counter.add(
            *(by_choice.get(c, 0) for c in (Vote.Choice.A, Vote.Choice.B, Vote.Choice.TIE, Vote.Choice.BOTH_BAD))
        )
        agreeing, total = agreeing + max(by_choice.values()), total + votes
    rate = agreeing / total if total else None
    return {
        "pairs": counter.pairable_units,
        "alpha": counter.alpha(),
        "rate": rate,
        "rate_percent": None if rate is None else round(100 * rate),
    }


def pass_rates(*, limit: int = MODEL_VERSIONS) -> list[dict]:
    """Share of tested completions that pass, per model version (the newest ``limit`` with tested ones)."""
    rows = (
        Completion.objects.exclude(outcome=Completion.Outcome.NOT_RUN)
        .values("model_version_id", "model_version__name")
        .annotate(tested=Count("id"), passed=Count("id", filter=Q(outcome=Completion.Outcome.PASSED)))
        .order_by("-model_version_id")[:limit]
    )
    return [
        {
            "name": r["model_version__name"],
            "tested": r["tested"],
            "passed": r["passed"],
            "rate": r["passed"] / r["tested"],
            "percent": round(100 * r["passed"] / r["tested"]),
        }
        for r in reversed(rows)
    ]


def last_snapshot() -> dict | None:
    """The newest snapshot and its preference rows (train + test), when it has counted them."""
    snapshot = DatasetSnapshot.objects.order_by("-version").first()
    if snapshot is None:
        return None
    counts = snapshot.counts or {}
    parts = [counts.get(count_key("preference", split)) for split in ("train", "test")]
    rows = sum(parts) if all(isinstance(n, int) for n in parts) else None
    return {"snapshot": snapshot, "preference_rows": rows}


def dashboard() -> dict:
    """Everything the dashboard shows, with its charts."""
    days = votes_per_day()
    pairs = open_pairs()
    rates = pass_rates()
    charts: list[Chart] = [
        bar_chart(f"Votes per day, last {DAYS} days", [(d.strftime("%d %b"), n) for d, n in days], every=2),
        bar_chart("Open pairs by votes so far", [(f"{k} vote{'s' * (k != 1)}", n) for k, n in pairs["by_votes"]]),
    ]
    if rates:
        charts.append(bar_chart("Pass rate per model version", [(r["name"], r["rate"]) for r in rates], percent=True))
    return {
        "votes_today": days[-1][1],
        "votes_in_days": sum(n for _, n in days),
        "days": DAYS,
        "active_volunteers": active_volunteers(),
        "active_days": ACTIVE_DAYS,
        "open_pairs": pairs,
        "agreement": agreement(),
        "pass_rates": rates,
        "queues": queue_depths(),
        "last_snapshot": last_snapshot(),
        "last_cycle": TrainingRun.objects.filter(stage=TrainingRun.Stage.CYCLE).order_by("-created_at").first(),
        "open_reports": Flag.objects.filter(state=Flag.State.OPEN).count(),
        "demo_model": demo_status_read(),
        "charts": charts,
    }
