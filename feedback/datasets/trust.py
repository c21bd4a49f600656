"""Trust: how much each volunteer's votes weigh, from gold answers and agreement. Pure functions, no Django.

A volunteer's accuracy is smoothed by a Beta(alpha, beta) prior over two kinds of evidence: answers on gold
pairs (right or wrong against the known answer, each counting 1) and agreement with the final label of the
non-gold pairs they voted on (each counting ``agreement_weight``; the label is computed without their own vote,
so nobody agrees with themselves; each comparison counts by that label's margin, so an even split of the others
tells nothing). The weight
is ``2 * accuracy - 1`` clipped to [0, 1]: a coin-flipper (0.5)
weighs nothing, a perfect judge 1. Labels and trust depend on each other, so they are computed in turns
(``ROUNDS``), starting from the gold evidence alone.

Per language, the same evidence restricted to the language, shrunk towards the volunteer's overall accuracy
(a prior of the same strength as the global one), so a language with few votes weighs like the volunteer.

A vote's weight is its volunteer's trust in the pair's language, times ``flagged_weight`` when it carries an
anomaly flag, and 0 for a volunteer's first ``onboarding`` votes (their onboarding, on gold pairs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from .aggregation import label_pair

ROUNDS = 3
CHOICE_INDEX = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}


@dataclass(frozen=True)
class TrustSettings:
    prior_alpha: float
    prior_beta: float
    agreement_weight: float
    threshold: float
    flagged_weight: float
    onboarding: int

    @classmethod
    def from_settings(cls, conf: dict) -> TrustSettings:
        return cls(
            prior_alpha=float(conf["QC_TRUST_PRIOR_ALPHA"]),
            prior_beta=float(conf["QC_TRUST_PRIOR_BETA"]),
            agreement_weight=float(conf["QC_AGREEMENT_WEIGHT"]),
            threshold=float(conf["QC_TRUST_THRESHOLD"]),
            flagged_weight=float(conf["QC_FLAGGED_VOTE_WEIGHT"]),
            onboarding=int(conf["QC_ONBOARDING_PAIRS"]),
        )


@dataclass(frozen=True)
class VoteFacts:
    """One vote as trust sees it: ``gold`` is the pair's known answer ("" if none); ``flagged`` whether it
    carries an anomaly flag; ``onboarding`` whether it is one of its volunteer's first votes."""

    id: int
    volunteer: int
    pair: int
    choice: str
    language: str
    gold: str
    flagged: bool
    onboarding: bool


@dataclass
class Evidence:
    gold_votes: int = 0
    gold_correct: int = 0
    agreements: float = 0.0
    compared: float = 0.0

    def accuracy(self, alpha: float, beta: float, agreement_weight: float) -> float:
        right = alpha + self.gold_correct + agreement_weight * self.agreements
        seen = alpha + beta + self.gold_votes + agreement_weight * self.compared
        return right / seen


@dataclass
class VolunteerTrust:
    trust: float
    by_language: dict[str, float] = field(default_factory=dict)
    gold_votes: int = 0
    gold_correct: int = 0
    agreements: int = 0
    compared: int = 0


@dataclass
class TrustResult:
    volunteers: dict[int, VolunteerTrust]
    vote_weights: dict[int, float]
    labels: dict[int, tuple[str, float]]  # pair -> (label, agreement) of the non-gold pairs with counted votes


def weight_of(accuracy: float) -> float:
    return min(1.0, max(0.0, 2.0 * accuracy - 1.0))


def trust_compute(votes: Sequence[VoteFacts], conf: TrustSettings) -> TrustResult:
    """Trust per volunteer (and language), each vote's weight, and the non-gold pairs' labels."""
    gold: dict[int, Evidence] = defaultdict(Evidence)
    gold_lang: dict[tuple[int, str], Evidence] = defaultdict(Evidence)
    for vote in votes:
        if vote.gold:
            right = int(vote.choice == vote.gold)
            for evidence in (gold[vote.volunteer], gold_lang[(vote.volunteer, vote.language)]):
                evidence.gold_votes += 1
                evidence.gold_correct += right
    volunteers = {vote.volunteer for vote in votes}
    overall = {v: _evidence_copy(gold[v]) for v in volunteers}
    per_lang = {key: _evidence_copy(e) for key, e in gold_lang.items()}
    result = _round(votes, conf, overall, per_lang)
    for _ in range(ROUNDS - 1):
        agreement = _agreements(votes, result)
        overall = {v: _with_agreement(gold[v], agreement.get((v, None))) for v in volunteers}
        languages = {key for key in agreement if key[1] is not None} | set(gold_lang)
        per_lang = {key: _with_agreement(gold_lang.get(key, Evidence()), agreement.get(key)) for key in languages}
        result = _round(votes, conf, overall, per_lang)
    return result


def _evidence_copy(evidence: Evidence) -> Evidence:
    return Evidence(evidence.gold_votes, evidence.gold_correct)


def _with_agreement(gold: Evidence, agreement: tuple[float, float] | None) -> Evidence:
    agreed, compared = agreement or (0.0, 0.0)
    return Evidence(gold.gold_votes, gold.gold_correct, agreed, compared)


def _round(votes, conf: TrustSettings, overall: dict, per_lang: dict) -> TrustResult:
    """Trust from this round's evidence, then the vote weights and the labels they give."""
    alpha, beta, lam = conf.prior_alpha, conf.prior_beta, conf.agreement_weight
    volunteers: dict[int, VolunteerTrust] = {}
    accuracy: dict[int, float] = {}
    for volunteer, evidence in overall.items():
        accuracy[volunteer] = evidence.accuracy(alpha, beta, lam)
        volunteers[volunteer] = VolunteerTrust(
            weight_of(accuracy[volunteer]), {}, evidence.gold_votes, evidence.gold_correct,
            round(evidence.agreements), round(evidence.compared),
        )  # fmt: skip
    for (volunteer, language), evidence in per_lang.items():
        # shrunk towards the volunteer's overall accuracy, with the strength of the global prior
        prior = accuracy[volunteer] * (alpha + beta)
        right = prior + evidence.gold_correct + lam * evidence.agreements
        seen = alpha + beta + evidence.gold_votes + lam * evidence.compared
        volunteers[volunteer].by_language[language] = round(weight_of(right / seen), 6)
    weights: dict[int, float] = {}
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0])
    for vote in votes:
        trust = volunteers[vote.volunteer]
        weight = 0.0
        if not vote.onboarding and trust.trust >= conf.threshold:
            weight = trust.by_language.get(vote.language, trust.trust)
            if vote.flagged:
                weight *= conf.flagged_weight
        weights[vote.id] = round(weight, 6)
        if not vote.gold:
            row = sums[vote.pair]
            row[CHOICE_INDEX[vote.choice]] += weight
            row[4] += 1
    labels = {}
    for pair, (w_a, w_b, w_tie, w_bad, n) in sums.items():
        label = label_pair(w_a, w_b, w_tie, w_bad, int(n))
        if label is not None:
            labels[pair] = (label.label, label.agreement)
    return TrustResult(volunteers, weights, labels)


def _agreements(votes, result: TrustResult) -> dict[tuple[int, str | None], tuple[float, float]]:
    """(agreed, compared) per (volunteer, None) and per (volunteer, language): each non-gold vote against its
    pair's label computed without it."""
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for vote in votes:
        if not vote.gold:
            sums[vote.pair][CHOICE_INDEX[vote.choice]] += result.vote_weights[vote.id]
    out: dict[tuple[int, str | None], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for vote in votes:
        if vote.gold:
            continue
        others = list(sums[vote.pair])
        others[CHOICE_INDEX[vote.choice]] -= result.vote_weights[vote.id]
        label = label_pair(*others, 1)
        if label is None or label.margin <= 0.0:
            continue  # no label without this vote, or an even split of the others: nothing to agree with
        # A comparison counts as much as the others were sure: one against a near-even split says little.
        agreed = label.margin * (label.label == vote.choice)
        for key in ((vote.volunteer, None), (vote.volunteer, vote.language)):
            out[key][0] += agreed
            out[key][1] += label.margin
    return {key: (a, c) for key, (a, c) in out.items()}
