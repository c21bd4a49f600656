"""Bradley-Terry ratings from pairwise outcomes, with bootstrap intervals and win rates. No Django here.

Outcomes come grouped: ``Outcomes(first, second, score, count)``, one entry per (model, model, result),
``score`` being the first model's share of the win (1, 0.5 for a tie, 0). The fit is choix's
``ilsr_pairwise_dense`` (iterative Luce spectral ranking: the maximum-likelihood Bradley-Terry strengths) on
the matrix of wins, where a tie is half a win for each side.

Bootstrap: resampling the votes with replacement is drawing, for each round, how many times each grouped
outcome occurs from a multinomial with the observed shares, which is the same distribution and needs no
vote list.

Intervals: the board's are *simultaneous* 95% intervals (``simultaneous``), a band meant to hold every rated
model's true strength at once in 95% of data sets, not each one alone. Per-model percentile intervals
(``intervals``: the 2.5 and 97.5 percentiles of each model's refitted strengths) cover each model 95% of the time,
so all of k models together less often (on 5 simulated models, 36 runs in 50), and a leaderboard is read
jointly: "is A above B, and B above C". The band is the bootstrap max-t ("sup-t") band (Montiel Olea and
Plagborg-Moller, "Simultaneous confidence bands: Theory, implementation, and an application to SVARs", Journal
of Applied Econometrics 34(1), 2019): centred on the full-data
fit r, with se_i the bootstrap standard deviation of model i and c the 95th percentile over the draws b of
max_i |r_i^b - r_i| / se_i, model i's interval is r_i +- c * se_i. Dividing by se_i lets a precisely measured
model and a rarely compared one share one c; c is above the 1.96 of one normal interval (about 2.5 for five
models) because it covers the largest of the k deviations. Strengths are identified only up to a shift, so every
draw (and the fit) is centred on its mean before the deviations are taken. The band is symmetric around the fit;
it is at least as wide as the percentile interval unless a model's draws are strongly skewed, which the
bootstrap of a fit to many votes is not (tests/feedback/test_bradley_terry.py checks the widths on
simulated votes).

Strengths are natural-log Bradley-Terry parameters centred on their mean (P(i beats j) = 1 / (1 + e^(s_j - s_i)));
``rating`` puts them on the Elo-like scale the Chatbot Arena uses (1000 + 400 * s / ln 10).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

# choix starts every transition rate of the spectral chain at this value: a weak prior that keeps the strengths
# finite when a model has never won (or never lost), worth ~2 * PRIOR_RATE pseudo-comparisons per pair of models.
PRIOR_RATE = 0.01
ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)


class Outcomes(NamedTuple):
    first: np.ndarray  # int, model index
    second: np.ndarray  # int, model index
    score: np.ndarray  # float, the first model's share: 1, 0.5 or 0
    count: np.ndarray  # int, how many votes had this outcome


def outcomes(rows, n_items: int) -> Outcomes:
    """Grouped outcomes from ``(first, second, score, count)`` rows, checked."""
    table = np.asarray(list(rows), dtype=float).reshape(-1, 4)
    first, second = table[:, 0].astype(int), table[:, 1].astype(int)
    if len(table) and (first.min() < 0 or max(first.max(), second.max()) >= n_items or (first == second).any()):
        raise ValueError(f"outcomes must name two different models in 0..{n_items - 1}")
    if not np.isin(table[:, 2], (0.0, 0.5, 1.0)).all() or (table[:, 3] < 0).any():
        raise ValueError("scores must be 0, 0.5 or 1 and counts at least 0")
    return Outcomes(first, second, table[:, 2], table[:, 3].astype(int))


def _win_matrices(data: Outcomes, counts: np.ndarray, n_items: int) -> np.ndarray:
    """wins[..., i, j]: how often i beat j (ties as half a win each way), for each row of ``counts``."""
    # One column per grouped outcome, two entries each: (first over second) * score, (second over first) * (1-score).
    spread = np.zeros((len(data.count), n_items * n_items))
    rows = np.arange(len(data.count))
    np.add.at(spread, (rows, data.first * n_items + data.second), data.score)
    np.add.at(spread, (rows, data.second * n_items + data.first), 1.0 - data.score)
    return (counts @ spread).reshape(*counts.shape[:-1], n_items, n_items)


def strengths(wins: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Centred log-strengths from one matrix of wins (choix), iterating from ``start`` if given."""
    import choix  # here, not at the top: it imports scipy (35 MB), which nothing else in the platform imports

    wins = np.asarray(wins, dtype=float)
    return choix.ilsr_pairwise_dense(wins, alpha=PRIOR_RATE, initial_params=start, max_iter=500, tol=1e-8)


def fit(data: Outcomes, n_items: int) -> np.ndarray:
    return strengths(_win_matrices(data, data.count.astype(float), n_items))


def bootstrap(data: Outcomes, n_items: int, *, rounds: int, seed: int) -> np.ndarray:
    """``rounds`` x ``n_items`` strengths, each fitted to the votes resampled with replacement (seeded)."""
    total = int(data.count.sum())
    if total == 0 or rounds <= 0:
        return np.zeros((0, n_items))
    draws = np.random.default_rng(seed).multinomial(total, data.count / total, size=rounds).astype(float)
    # Each resample starts from the full data's fit, a few iterations from its own.
    start = fit(data, n_items)
    return np.stack([strengths(wins, start) for wins in _win_matrices(data, draws, n_items)])


def intervals(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Per-model percentile intervals: each covers its own model at ``level``, not all models at once."""
    tail = (1.0 - level) / 2.0 * 100.0
    return np.percentile(samples, tail, axis=0), np.percentile(samples, 100.0 - tail, axis=0)


def _centred(strength: np.ndarray) -> np.ndarray:
    """Each row (or the one vector) shifted to mean 0: strengths mean nothing up to a common shift."""
    strength = np.asarray(strength, dtype=float)
    return strength - strength.mean(axis=-1, keepdims=True)


def max_t(samples: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw, the largest |draw - point| / se over the models; and se, the bootstrap sd of each model.

    A model whose draws never move (se 0: one model, or one draw) counts 0 here and gets a zero-width interval,
    instead of an infinite c that would blow up every other model's interval.
    """
    samples, point = _centred(samples), _centred(point)
    if samples.ndim != 2 or samples.shape[0] == 0 or samples.shape[1] != point.shape[-1]:
        raise ValueError(f"need draws x {point.shape[-1]} strengths, at least one draw; got {samples.shape}")
    se = samples.std(axis=0)  # ddof does not matter: scaling every se scales c inversely, the band is the same
    moving = se > 0
    ratios = np.zeros_like(samples)
    ratios[:, moving] = np.abs(samples[:, moving] - point[moving]) / se[moving]
    return ratios.max(axis=1), se


def simultaneous(samples: np.ndarray, point: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap max-t band: (low, high) holding every model's strength at once at ``level`` (see above)."""
    largest, se = max_t(samples, point)
    c = np.quantile(largest, level)
    centre = _centred(point)
    return centre - c * se, centre + c * se


def rating(strength):
    """The Elo-like scale: 1000 + 400 * s / ln 10 (a 400-point gap is 10:1 odds)."""
    return ELO_BASE + ELO_SCALE * np.asarray(strength)


def head_to_head(data: Outcomes, n_items: int) -> np.ndarray:
    """[i, j] = (wins, ties, losses) of i against j."""
    table = np.zeros((n_items, n_items, 3))
    for first, second, score, count in zip(data.first, data.second, data.score, data.count, strict=True):
        column = {1.0: 0, 0.5: 1, 0.0: 2}[float(score)]
        table[first, second, column] += count
        table[second, first, 2 - column] += count
    return table
