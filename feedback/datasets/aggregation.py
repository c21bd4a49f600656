"""Turning the votes on a pair into one label, and measuring how much volunteers agree.

Pure functions, no Django: the snapshot builder (feedback.datasets.rows) feeds them per-pair sums from SQL.

Votes are in terms of completions (``a`` is ``pair.completion_a``), never of screen sides, so a label
``a`` means "the completion A was preferred" whichever side it was shown on.

The label is the trust-weighted majority of a / b / tie / both_bad. When several labels share the top
weight, the most conservative of them wins: ``both_bad``, then ``tie``; A against B alone is a ``tie``.
So an even split never becomes a training preference.

- ``agreement``: the winning label's share of the weight (1.0 = everyone agreed);
- ``margin``: (winning weight - runner-up weight) / total weight, 0 when the top was shared;
- ``votes``: how many votes were counted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import NamedTuple

CHOICES = ("a", "b", "tie", "both_bad")
_EPSILON = 1e-9
# krippendorff.alpha builds units x values x values arrays; past this many units the same formula is
# evaluated from the (values x values) coincidence matrix instead, so memory stays flat.
ALPHA_PACKAGE_MAX_UNITS = 100_000


class PairLabel(NamedTuple):
    label: str
    votes: int
    weight: float
    margin: float
    agreement: float


def label_pair(w_a: float, w_b: float, w_tie: float, w_bad: float, votes: int) -> PairLabel | None:
    """The label of one pair from its per-choice trust weights; None when no vote carries weight.

    Written without loops or temporaries: the snapshot builder calls it once per pair.
    """
    w_a = w_a if w_a > 0.0 else 0.0
    w_b = w_b if w_b > 0.0 else 0.0
    w_tie = w_tie if w_tie > 0.0 else 0.0
    w_bad = w_bad if w_bad > 0.0 else 0.0
    total = w_a + w_b + w_tie + w_bad
    if votes <= 0 or total <= _EPSILON:
        return None
    top = max(w_a, w_b, w_tie, w_bad)
    tolerance = _EPSILON * total
    lead_a, lead_b = top - w_a <= tolerance, top - w_b <= tolerance
    lead_tie, lead_bad = top - w_tie <= tolerance, top - w_bad <= tolerance
    if lead_a + lead_b + lead_tie + lead_bad == 1:
        if lead_a:
            label, runner_up = "a", max(w_b, w_tie, w_bad)
        elif lead_b:
            label, runner_up = "b", max(w_a, w_tie, w_bad)
        elif lead_tie:
            label, runner_up = "tie", max(w_a, w_b, w_bad)
        else:
            label, runner_up = "both_bad", max(w_a, w_b, w_tie)
        return PairLabel(label, votes, total, (top - runner_up) / total, top / total)
    # Shared top: both-bad if it leads, else tie (a tie leads, or only A and B do).
    return PairLabel("both_bad" if lead_bad else "tie", votes, total, 0.0, top / total)


def aggregate_votes(votes: Iterable[tuple[str, float]]) -> PairLabel | None:
    """The label of one pair from its votes, each ``(choice, trust)`` with choice in a / b / tie / both_bad."""
    sums = dict.fromkeys(CHOICES, 0.0)
    count = 0
    for choice, trust in votes:
        if choice not in sums:
            raise ValueError(f"vote choice must be one of {', '.join(CHOICES)}; got {choice!r}")
        sums[choice] += 1.0 if trust is None else float(trust)
        count += 1
    return label_pair(sums["a"], sums["b"], sums["tie"], sums["both_bad"], count)


class AgreementCounter:
    """Accumulates per-pair vote counts for Krippendorff's alpha (nominal) in constant memory.

    Units with the same counts are interchangeable, so only distinct count vectors are kept.
    """

    def __init__(self) -> None:
        self.units: Counter[tuple[int, int, int, int]] = Counter()

    def add(self, n_a: int, n_b: int, n_tie: int, n_bad: int) -> None:
        if n_a + n_b + n_tie + n_bad >= 2:  # a unit with one value has nothing to agree with
            self.units[(n_a, n_b, n_tie, n_bad)] += 1

    @property
    def pairable_units(self) -> int:
        return sum(self.units.values())

    def alpha(self) -> float | None:
        return krippendorff_alpha(self.units)


def krippendorff_alpha(units: Mapping[tuple[int, ...], int] | Iterable[Iterable[int]]) -> float | None:
    """Krippendorff's alpha (nominal) over units given as per-value counts.

    ``units`` is either a mapping ``{counts: how many units have them}`` or an iterable of count rows.
    Returns None where alpha is not defined: fewer than one unit with two values, or every value the
    same (the ``krippendorff`` package raises ValueError there).
    """
    import numpy as np

    if isinstance(units, Mapping):
        items = [(tuple(int(x) for x in counts), int(many)) for counts, many in units.items() if many > 0]
    else:
        items = [(tuple(int(x) for x in counts), 1) for counts in units]
    items = [(counts, many) for counts, many in items if sum(counts) >= 2]
    if not items:
        return None
    width = len(items[0][0])
    total_units = sum(many for _counts, many in items)
    if total_units <= ALPHA_PACKAGE_MAX_UNITS:
        import krippendorff

        value_counts = np.repeat(
            np.array([counts for counts, _many in items], dtype=np.int64),
            [many for _counts, many in items],
            axis=0,
        )
        try:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = float(krippendorff.alpha(value_counts=value_counts, level_of_measurement="nominal"))
        except ValueError:  # one value only (from reliability data): no expected disagreement
            return None
        return None if math.isnan(value) else value  # the same case from value counts: 0 / 0
    # The same computation as the package's, from the coincidence matrix o = sum over units of
    # (c c^T - diag(c)) / (m - 1): alpha = 1 - (n - 1) * (n - trace o) / (n^2 - sum n_c^2).
    coincidences = np.zeros((width, width), dtype=np.float64)
    for counts, many in items:
        vector = np.array(counts, dtype=np.float64)
        coincidences += many * (np.outer(vector, vector) - np.diag(vector)) / (vector.sum() - 1)
    n_c = coincidences.sum(axis=0)
    n = n_c.sum()
    expected = n * n - float((n_c * n_c).sum())
    if expected <= _EPSILON:
        return None
    return float(1.0 - (n - 1) * (n - np.trace(coincidences)) / expected)
