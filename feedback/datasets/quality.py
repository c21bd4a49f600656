"""Quality control, off the vote path: anomaly flags, trust, vote weights and adaptive k, recomputed from
every vote (``quality_recompute``: the beat task every 10 minutes, the admin's action,
``manage.py recompute_quality``).

What it writes: on each vote ``qc_weight`` and ``qc_flags``; on each volunteer ``trust`` (the weight of their
votes), ``trust_by_language``, gold counts, ``qc_flagged`` and ``qc_evidence``; on non-gold pairs, more
``votes_wanted`` for each vote that does not count and for low agreement (``pairs_reopen``), reopened. A
flagged or untrusted volunteer is then handed gold pairs only (``ranking.claims``): their votes go on
measuring them and stop using up the pairs that need human judgement. The
snapshot builder reads the weights (``datasets.reader.vote_weight_sql``); nothing is deleted.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Length
from django.utils import timezone

from feedback.models import Completion, Pair, Volunteer, Vote

from .anomalies import AnomalyLimits, VoteSeen, longest_run, votes_flag
from .trust import TrustResult, TrustSettings, VoteFacts, trust_compute

logger = logging.getLogger(__name__)
MIN_VOTES_TO_FLAG = 5


@dataclass(frozen=True)
class _Row:
    id: int
    volunteer: int
    pair: int
    choice: str
    screen: str
    ms: int | None
    at: object
    language: str
    gold: str
    characters: int
    longer: str  # the screen side of the longer completion, "" when equally long
    tests_say: str  # "tie" when both completions passed their tests, "both_bad" when both failed, else ""


def _rows() -> list[_Row]:
    votes = (
        Vote.objects.annotate(chars_a=Length("pair__completion_a__text"), chars_b=Length("pair__completion_b__text"))
        .values_list(
            "id",
            "volunteer_id",
            "pair_id",
            "choice",
            "left_is_a",
            "time_taken_ms",
            "created_at",
            "pair__language",
            "pair__gold_choice",
            "chars_a",
            "chars_b",
            "pair__completion_a__outcome",
            "pair__completion_b__outcome",
        )  # fmt: skip
        .order_by("volunteer_id", "id")
    )
    rows = []
    for (
        vote_id,
        volunteer,
        pair,
        choice,
        left_is_a,
        ms,
        at,
        language,
        gold,
        chars_a,
        chars_b,
        *outcomes,
    ) in votes.iterator(chunk_size=5000):
        screen = Vote(choice=choice, left_is_a=left_is_a).screen_choice
        longer = "" if chars_a == chars_b else ("left" if (chars_a > chars_b) == left_is_a else "right")
        rows.append(
            _Row(
                vote_id,
                volunteer,
                pair,
                choice,
                screen,
                ms,
                at,
                language,
                gold or "",
                chars_a + chars_b,
                longer,
                tests_say(*outcomes),
            )  # fmt: skip
        )
    return rows


def tests_say(a_outcome: str, b_outcome: str) -> str:
    """What the tests back of a tie / both-bad answer: "tie" when both passed, "both_bad" when both failed."""
    if a_outcome == b_outcome == Completion.Outcome.PASSED:
        return "tie"
    if a_outcome in Completion.FAILED_OUTCOMES and b_outcome in Completion.FAILED_OUTCOMES:
        return "both_bad"
    return ""


def _flags(rows: list[_Row], limits: AnomalyLimits) -> tuple[dict[int, set[str]], dict[int, dict]]:
    """Each vote's flags, and each volunteer's evidence (counts per flag, longest run, median time)."""
    by_volunteer: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        by_volunteer[row.volunteer].append(row)
    flags: dict[int, set[str]] = {}
    evidence: dict[int, dict] = {}
    for volunteer, own in by_volunteer.items():
        seen = [VoteSeen(r.screen, r.ms, r.at, r.characters, r.longer, r.tests_say) for r in own]
        own_flags = votes_flag(seen, limits)
        counts: Counter[str] = Counter()
        for row, found in zip(own, own_flags, strict=True):
            flags[row.id] = found
            counts.update(found)
        times = sorted(r.ms for r in own if r.ms is not None)
        run_choice, run_length = longest_run(seen)
        evidence[volunteer] = {
            "votes": len(own),
            "flagged_votes": sum(1 for found in own_flags if found),
            "flags": dict(sorted(counts.items())),
            "longest_run": {"choice": run_choice, "length": run_length},
            "median_ms": times[len(times) // 2] if times else None,
            "screen_choices": dict(sorted(Counter(r.screen for r in own).items())),
        }
    return flags, evidence


def quality_compute(rows: list[_Row]) -> tuple[TrustResult, dict[int, set[str]], dict[int, dict]]:
    conf = settings.CODEPREF
    flags, evidence = _flags(rows, AnomalyLimits.from_settings(conf))
    trust_conf = TrustSettings.from_settings(conf)
    position: Counter[int] = Counter()
    facts = []
    for row in rows:  # in (volunteer, id) order: a volunteer's first votes are their onboarding
        position[row.volunteer] += 1
        onboarding = position[row.volunteer] <= trust_conf.onboarding
        facts.append(
            VoteFacts(
                row.id, row.volunteer, row.pair, row.choice, row.language, row.gold, bool(flags[row.id]), onboarding
            )  # fmt: skip
        )
    return trust_compute(facts, trust_conf), flags, evidence


def quality_recompute() -> dict:
    """Recompute flags, trust and weights from every vote, store them, and reopen low-agreement pairs."""
    rows = _rows()
    result, flags, evidence = quality_compute(rows)
    now = timezone.now()
    share = float(settings.CODEPREF["QC_FLAGGED_SHARE"])
    flagged_volunteers = 0
    with transaction.atomic():
        _votes_store(rows, result, flags)
        for volunteer in Volunteer.objects.filter(user_id__in=list(result.volunteers)).select_for_update():
            trust = result.volunteers[volunteer.user_id]
            proof = evidence[volunteer.user_id]
            flagged = proof["votes"] >= MIN_VOTES_TO_FLAG and proof["flagged_votes"] >= share * proof["votes"]
            flagged_volunteers += flagged
            proof = {**proof, "agreements": trust.agreements, "compared": trust.compared}
            volunteer.trust, volunteer.trust_by_language = round(trust.trust, 6), trust.by_language
            volunteer.gold_votes, volunteer.gold_correct = trust.gold_votes, trust.gold_correct
            volunteer.qc_flagged, volunteer.qc_evidence, volunteer.trust_computed_at = flagged, proof, now
            volunteer.save(update_fields=["trust", "trust_by_language", "gold_votes", "gold_correct", "qc_flagged",
                                          "qc_evidence", "trust_computed_at"])  # fmt: skip
        reopened = pairs_reopen(result.labels, rows, result.vote_weights)
    stats = {
        "votes": len(rows),
        "volunteers": len(result.volunteers),
        "flagged_volunteers": flagged_volunteers,
        "below_threshold": sum(
            1 for t in result.volunteers.values() if t.trust < settings.CODEPREF["QC_TRUST_THRESHOLD"]
        ),
        "flagged_votes": sum(1 for found in flags.values() if found),
        "pairs_reopened": reopened,
    }
    logger.info("quality control recomputed: %s", stats)
    return stats


def _votes_store(rows: list[_Row], result: TrustResult, flags: dict[int, set[str]]) -> None:
    changed = []
    current = dict(Vote.objects.values_list("id", "qc_weight"))
    current_flags = dict(Vote.objects.exclude(qc_flags="").values_list("id", "qc_flags"))
    for row in rows:
        weight, text = result.vote_weights[row.id], ",".join(sorted(flags[row.id]))
        if current.get(row.id) != weight or current_flags.get(row.id, "") != text:
            changed.append(Vote(id=row.id, qc_weight=weight, qc_flags=text))
    Vote.objects.bulk_update(changed, ["qc_weight", "qc_flags"], batch_size=2000)


def pairs_reopen(labels: dict[int, tuple[str, float]], rows: list[_Row], weights: dict[int, float]) -> int:
    """Votes that do not count are replaced, and adaptive k; returns how many pairs went back into assignment.

    A non-gold pair's votes that weigh below ``QC_TRUST_THRESHOLD`` (a flagged, held or untrusted volunteer's)
    do not fill it: its ``votes_wanted`` rises by as many (``votes_uncounted`` remembers them, so a later
    recompute only adds the difference, or gives votes back when a volunteer's trust recovers). A pair whose
    weighted votes agree less than ``QC_LOW_AGREEMENT`` wants ``QC_EXTRA_VOTES`` more counted votes, never
    past ``QC_MAX_VOTES_PER_PAIR`` counted votes.
    """
    conf = settings.CODEPREF
    threshold, cap, extra = (
        float(conf["QC_TRUST_THRESHOLD"]),
        int(conf["QC_MAX_VOTES_PER_PAIR"]),
        int(conf["QC_EXTRA_VOTES"]),
    )
    low = {pair for pair, (_label, agreement) in labels.items() if agreement < conf["QC_LOW_AGREEMENT"]}
    uncounted: Counter[int] = Counter()
    for row in rows:
        if not row.gold and weights[row.id] < threshold:
            uncounted[row.pair] += 1
    states = (Pair.State.OPEN, Pair.State.COMPLETE)
    candidates = Pair.objects.filter(state__in=states).filter(
        Q(pk__in=low) | Q(pk__in=list(uncounted)) | Q(votes_uncounted__gt=0)
    )
    reopened = 0
    for pair in candidates.only("id", "votes_wanted", "votes_count", "votes_uncounted", "state"):
        counted_wanted = pair.votes_wanted - pair.votes_uncounted
        if pair.pk in low and pair.state == Pair.State.COMPLETE and counted_wanted < cap:
            counted_wanted = min(cap, counted_wanted + extra)
        wanted = counted_wanted + uncounted[pair.pk]
        state = Pair.State.OPEN if pair.votes_count < wanted else Pair.State.COMPLETE
        if (wanted, uncounted[pair.pk], state) == (pair.votes_wanted, pair.votes_uncounted, pair.state):
            continue
        # Only if no vote landed since it was read: the vote statement closes pairs by the same fields.
        changed = Pair.objects.filter(pk=pair.pk, votes_count=pair.votes_count, state=pair.state).update(
            votes_wanted=wanted, votes_uncounted=uncounted[pair.pk], state=state
        )
        reopened += changed and state == Pair.State.OPEN and pair.state == Pair.State.COMPLETE
    return reopened
