"""The model leaderboard from the database: human votes between model versions, and pass@1 from test verdicts.

A vote on a pair whose completions come from two different model versions is one comparison: "A better" is a
win for A's model, a tie half a win for each, and "both bad" is left out (it says nothing about which of the
two is better; the count left out is reported). Pairs of one model's own completions are left out too.
Only votes that ``counting.counted_votes`` keeps are read.

pass@1 of a model version: over the prompts with tests on which its completions were run, the mean share of
its completions that passed (c / n per prompt, the unbiased pass@1 estimate from n samples); a failure,
an error and a timeout all count as not passed; completions not run are left out.

Intervals (``ci_low``, ``ci_high``) are simultaneous 95% intervals, the bootstrap max-t band of
``bradley_terry.simultaneous``: they hold all rated models' strengths at once, so reading the board as a whole
(ranks, "A above B above C") keeps the 95%; per-model percentile intervals would not.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db.models import Count, F, Q

from feedback.models import Completion, ModelVersion, Prompt, Vote

from . import bradley_terry as bt
from .counting import counted_votes

SCORES = {Vote.Choice.A: 1.0, Vote.Choice.TIE: 0.5, Vote.Choice.B: 0.0}
INTERVAL = "simultaneous 95% (bootstrap max-t)"
RUN = (Completion.Outcome.PASSED, Completion.Outcome.FAILED, Completion.Outcome.ERROR, Completion.Outcome.TIMEOUT)


def vote_outcomes() -> tuple[list[tuple[int, int, float, int]], dict[str, int]]:
    """Grouped (model A, model B, A's score, count) over counted votes, and what was left out."""
    votes = counted_votes(Vote.objects.all()).order_by()
    same_model = Q(pair__completion_a__model_version_id=F("pair__completion_b__model_version_id"))
    rows = (
        votes.filter(choice__in=list(SCORES))
        .exclude(same_model)
        .values(
            "choice",
            model_a=F("pair__completion_a__model_version_id"),
            model_b=F("pair__completion_b__model_version_id"),
        )
        .annotate(n=Count("id"))
        .values_list("model_a", "model_b", "choice", "n")
    )
    grouped = [(a, b, SCORES[choice], n) for a, b, choice, n in rows]
    left_out = votes.aggregate(
        both_bad=Count("id", filter=Q(choice=Vote.Choice.BOTH_BAD) & ~same_model),
        same_model=Count("id", filter=same_model),
    )
    return grouped, left_out


def pass_at_1() -> dict[int, dict]:
    """model version id -> {"pass_at_1": mean over prompts of passed / run, "prompts": how many prompts}."""
    rows = (
        Completion.objects.filter(
            outcome__in=RUN, prompt__test_style__in=[Prompt.TestStyle.HUMANEVAL, Prompt.TestStyle.ASSERTS]
        )
        .exclude(prompt__tests="")
        .order_by()
        .values("model_version_id", "prompt_id")
        .annotate(run=Count("id"), passed=Count("id", filter=Q(outcome=Completion.Outcome.PASSED)))
        .values_list("model_version_id", "run", "passed")
    )
    shares: dict[int, list[float]] = defaultdict(list)
    for model_id, run, passed in rows:
        shares[model_id].append(passed / run)
    return {model_id: {"pass_at_1": float(np.mean(s)), "prompts": len(s)} for model_id, s in shares.items()}


def _ranks(low: np.ndarray, high: np.ndarray) -> list[int]:
    """The Arena's rank: 1 + how many models are better beyond doubt (their lower bound above my upper bound).

    With simultaneous intervals every such "better" holds jointly at 95%, not each one at 95% on its own.
    """
    return [1 + int((low > high[i]).sum()) for i in range(len(low))]


def model_board(*, rounds: int, seed: int) -> dict:
    """Ratings with simultaneous 95% intervals, head-to-head win rates and pass@1, ready to store as JSON."""
    if rounds < 1:
        raise ValueError(f"the bootstrap needs at least 1 round (CODEPREF_LEADERBOARD_BOOTSTRAP_ROUNDS); got {rounds}")
    grouped, left_out = vote_outcomes()
    passes = pass_at_1()
    rated_ids = sorted({a for a, *_ in grouped} | {b for _, b, *_ in grouped})
    index = {model_id: i for i, model_id in enumerate(rated_ids)}
    names = dict(ModelVersion.objects.filter(pk__in=set(rated_ids) | set(passes)).values_list("pk", "name"))
    data = bt.outcomes([(index[a], index[b], s, n) for a, b, s, n in grouped], len(rated_ids))
    rows: list[dict] = []
    win_rates: list[dict] = []
    if rated_ids:
        point = bt.fit(data, len(rated_ids))
        low, high = bt.simultaneous(bt.bootstrap(data, len(rated_ids), rounds=rounds, seed=seed), point)
        table = bt.head_to_head(data, len(rated_ids))
        ranks = _ranks(low, high)
        for i, model_id in enumerate(rated_ids):
            wins, ties, losses = (int(x) for x in table[i].sum(axis=0))
            rows.append(
                {
                    "model": names[model_id],
                    "model_id": model_id,
                    "rank": ranks[i],
                    "rating": round(float(bt.rating(point[i])), 1),
                    "ci_low": round(float(bt.rating(low[i])), 1),
                    "ci_high": round(float(bt.rating(high[i])), 1),
                    "strength": round(float(point[i]), 4),
                    "comparisons": wins + ties + losses,
                    "wins": wins,
                    "ties": ties,
                    "losses": losses,
                    "win_rate": round((wins + ties / 2) / (wins + ties + losses), 4),
                    **_passes(passes, model_id),
                }
            )
        win_rates = _win_rates(table, [names[m] for m in rated_ids])
    rows.sort(key=lambda row: -row["rating"])
    for model_id in sorted(set(passes) - set(rated_ids), key=lambda m: -passes[m]["pass_at_1"]):
        rows.append({"model": names[model_id], "model_id": model_id, **_unrated(), **_passes(passes, model_id)})
    return {
        "models": rows,
        "win_rates": win_rates,
        "comparisons": int(data.count.sum()),
        "left_out_both_bad": left_out["both_bad"],
        "left_out_same_model": left_out["same_model"],
        "bootstrap_rounds": rounds,
        "seed": seed,
        "interval": INTERVAL,
    }


def _passes(passes: dict, model_id: int) -> dict:
    found = passes.get(model_id)
    return {
        "pass_at_1": round(found["pass_at_1"], 4) if found else None,
        "prompts_tested": found["prompts"] if found else 0,
    }


def _unrated() -> dict:
    keys = ("rank", "rating", "ci_low", "ci_high", "strength", "win_rate")
    return {**dict.fromkeys(keys), "comparisons": 0, "wins": 0, "ties": 0, "losses": 0}


def _win_rates(table: np.ndarray, names: list[str]) -> list[dict]:
    found = []
    for i, name in enumerate(names):
        for j, opponent in enumerate(names):
            wins, ties, losses = (int(x) for x in table[i, j])
            if i != j and wins + ties + losses:
                found.append(
                    {
                        "model": name,
                        "opponent": opponent,
                        "wins": wins,
                        "ties": ties,
                        "losses": losses,
                        "win_rate": round((wins + ties / 2) / (wins + ties + losses), 4),
                    }
                )
    return found
