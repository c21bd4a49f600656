"""The crowd's report: votes per profile, each profile's label accuracy and the pairs' majority labels, scored
against the oracle's truth, read back from the stored votes (what the server recorded, not what was sent).

A vote is right when its choice (in terms of completions) is the truth; pairs without a truth (both passed,
both failed, a test not run) count in ``votes_stored`` but in no accuracy. The majority label is the
export's rule (``datasets.aggregation``) with every vote weighing 1, over every stored vote on the pairs the
crowd voted on.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

from feedback.datasets.aggregation import aggregate_votes
from feedback.models import Vote

from .oracle import pair_facts
from .profiles import PROFILES
from .simulation import Member, RunResult

TRUTH_RULE = (
    "truth = the completion that passed its tests when the other failed; pairs where both passed, both "
    "failed or a test did not run have no truth and count in no accuracy (honest judges vote tie when "
    "both passed, both_bad otherwise)"
)
CHUNK = 5000


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _stored_votes(usernames: list[str]) -> list[tuple[str, int, str, bool]]:
    rows: list[tuple[str, int, str, bool]] = []
    for names in _chunks(usernames):
        query = Vote.objects.filter(volunteer__username__in=names)
        rows += query.values_list("volunteer__username", "pair_id", "choice", "left_is_a").iterator(chunk_size=2000)
    return rows


def _profile_scores(members: list[Member], votes, facts) -> dict[str, dict]:
    profile_of = {m.username: m.profile.name for m in members}
    scores = {
        name: Counter(volunteers=0, votes_cast=0, replayed=0, conflicts=0)
        for name in PROFILES
        if any(m.profile.name == name for m in members)
    }
    for m in members:
        scores[m.profile.name].update(volunteers=1, votes_cast=m.cast, replayed=m.replayed, conflicts=m.conflicts)
    for username, pair_id, choice, left_is_a in votes:
        score, known = scores[profile_of[username]], facts.get(pair_id)
        score["votes_stored"] += 1
        if choice in ("a", "b"):
            score["sided"] += 1
            score["left"] += (choice == "a") == left_is_a
            if known is not None and known.longer() is not None:
                score["unequal"] += 1
                score["longer"] += choice == known.longer()
        if known is not None and known.truth is not None:
            score["with_truth"] += 1
            score["correct"] += choice == known.truth
    return {
        name: {
            "volunteers": s["volunteers"],
            "votes_cast": s["votes_cast"],
            "replayed": s["replayed"],
            "conflicts": s["conflicts"],
            "votes_stored": s["votes_stored"],
            "votes_with_truth": s["with_truth"],
            "correct": s["correct"],
            "accuracy": _ratio(s["correct"], s["with_truth"]),
            "picked_left": _ratio(s["left"], s["sided"]),
            "picked_longer": _ratio(s["longer"], s["unequal"]),
        }
        for name, s in scores.items()
    }


def _majority_scores(pair_ids: list[int], facts) -> dict:
    choices: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for ids in _chunks(pair_ids):
        for pair_id, choice in Vote.objects.filter(pair_id__in=ids).values_list("pair_id", "choice").iterator():
            choices[pair_id].append((choice, 1.0))
    labels: Counter = Counter()
    with_truth = correct = 0
    for pair_id, votes in choices.items():
        label = aggregate_votes(votes)
        labels[label.label] += 1
        truth = facts[pair_id].truth if pair_id in facts else None
        if truth is not None:
            with_truth += 1
            correct += label.label == truth
    return {
        "voted": len(choices),
        "with_truth": with_truth,
        "labels": dict(sorted(labels.items())),
        "majority_correct": correct,
        "majority_accuracy": _ratio(correct, with_truth),
    }


def crowd_report(members: list[Member], result: RunResult, *, seed: int, transport: str) -> dict:
    votes = _stored_votes([m.username for m in members])
    pair_ids = sorted({pair_id for _, pair_id, _, _ in votes})
    facts = {}
    for ids in _chunks(pair_ids):
        facts.update(pair_facts(ids))
    latencies = sorted(result.vote_latencies_ms)
    cast = sum(m.cast for m in members)
    return {
        "seed": seed,
        "transport": transport,
        "volunteers": len(members),
        "stopped": result.stopped,
        "error": result.error,
        "wall_seconds": round(result.wall_seconds, 3),
        "votes_cast": cast,
        "votes_per_second": round(cast / result.wall_seconds, 2) if result.wall_seconds > 0 else None,
        "vote_latency_ms": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p99": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2) if latencies else None,
        },
        "truth_rule": TRUTH_RULE,
        "profiles": _profile_scores(members, votes, facts),
        "pairs": _majority_scores(pair_ids, facts),
    }


def report_summary(report: dict) -> str:
    """The report for people: one line for the run, one per profile, one for the majority labels."""
    lines = [
        f"crowd of {report['volunteers']} (seed {report['seed']}, {report['transport']}): "
        f"{report['votes_cast']} vote(s) in {report['wall_seconds']:.1f}s, stopped: {report['stopped']}"
        + (f" ({report['error']})" if report["error"] else "")
    ]
    for name, p in report["profiles"].items():
        accuracy = "n/a" if p["accuracy"] is None else f"{p['accuracy']:.3f}"
        lines.append(
            f"  {name:<10} {p['volunteers']:>4} volunteer(s) {p['votes_cast']:>6} cast "
            f"{p['votes_stored']:>6} stored  accuracy {accuracy} on {p['votes_with_truth']} with a truth"
        )
    pairs = report["pairs"]
    majority = "n/a" if pairs["majority_accuracy"] is None else f"{pairs['majority_accuracy']:.3f}"
    lines.append(
        f"  majority labels: {majority} right on {pairs['with_truth']} pair(s) with a truth "
        f"({pairs['voted']} voted; {pairs['labels']})"
    )
    return "\n".join(lines)
