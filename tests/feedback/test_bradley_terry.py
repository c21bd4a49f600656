"""Bradley-Terry on simulated votes: the fit recovers known strengths, the bootstrap's 95% intervals cover them.

Pure numpy + choix, no database. Coverage is counted per interval: 50 runs x 5 models = 250 intervals, at least
90% of which must hold the true (centred) strength. (All five at once is not what a 95% interval promises:
with five of them ~77% of runs would be expected; here 232 of 250 intervals cover, and all five in 36 of 50 runs.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from feedback.leaderboards import bradley_terry as bt

TRUE = np.array([-1.2, -0.5, 0.0, 0.4, 1.1])  # log-strengths of 5 simulated models
VOTES = 2_000
ROUNDS = 400  # bootstrap resamples per run: percentiles at 2.5% / 97.5% need a few hundred


def simulate(seed: int, strengths: np.ndarray = TRUE, votes: int = VOTES) -> bt.Outcomes:
    """``votes`` votes on random pairs of different models, each won with the Bradley-Terry probability."""
    rng = np.random.default_rng(seed)
    n = len(strengths)
    first = rng.integers(0, n, votes)
    second = (first + rng.integers(1, n, votes)) % n
    first_won = rng.random(votes) < 1.0 / (1.0 + np.exp(strengths[second] - strengths[first]))
    keys, counts = np.unique(np.stack([first, second, first_won]), axis=1, return_counts=True)
    return bt.outcomes([(int(f), int(s), float(w), int(c)) for (f, s, w), c in zip(keys.T, counts, strict=True)], n)


def test_bradley_terry_recovers_the_order_of_five_models_from_2000_votes():
    for seed in range(5):
        estimate = bt.fit(simulate(seed), len(TRUE))
        assert list(np.argsort(estimate)) == [0, 1, 2, 3, 4], (seed, estimate)
        assert np.abs(estimate - (TRUE - TRUE.mean())).max() < 0.25, (seed, estimate)


@pytest.mark.slow  # ~10 s of CPU (20,000 fits); longer on a busy machine
def test_the_95_percent_intervals_cover_the_true_strengths_in_at_least_90_percent_of_50_runs():
    centred = TRUE - TRUE.mean()
    covered = widths = 0
    for run in range(50):
        data = simulate(1000 + run)
        low, high = bt.intervals(bt.bootstrap(data, len(TRUE), rounds=ROUNDS, seed=run))
        assert (low <= bt.fit(data, len(TRUE)) + 1e-9).all() and (bt.fit(data, len(TRUE)) <= high + 1e-9).all()
        covered += int(((low <= centred) & (centred <= high)).sum())
        widths += float((high - low).mean())
    assert covered / (50 * len(TRUE)) >= 0.90, covered
    # Not vacuous: intervals as wide as the whole scale would cover everything.
    assert 0.1 < widths / 50 < 0.6, widths / 50


def test_a_tie_is_half_a_win_for_each_side():
    # 2 wins of model 0 and 2 ties = 3 wins to 1: the fitted odds are 3:1, log 3 apart.
    data = bt.outcomes([(0, 1, 1.0, 2), (0, 1, 0.5, 2)], 2)
    estimate = bt.fit(data, 2)
    assert estimate[0] - estimate[1] == pytest.approx(math.log(3), abs=0.02)
    assert bt.head_to_head(data, 2)[0, 1].tolist() == [2, 2, 0]
    assert bt.head_to_head(data, 2)[1, 0].tolist() == [0, 2, 2]
    only_ties = bt.fit(bt.outcomes([(0, 1, 0.5, 10)], 2), 2)
    assert only_ties[0] == pytest.approx(only_ties[1], abs=1e-6)


def test_the_bootstrap_is_seeded_and_resamples_the_votes():
    data = simulate(7, votes=300)
    one = bt.bootstrap(data, len(TRUE), rounds=50, seed=3)
    assert np.array_equal(one, bt.bootstrap(data, len(TRUE), rounds=50, seed=3))
    assert not np.array_equal(one, bt.bootstrap(data, len(TRUE), rounds=50, seed=4))
    assert one.shape == (50, 5) and one.std(axis=0).min() > 0.01


def test_a_model_that_never_lost_gets_a_finite_rating():
    estimate = bt.fit(bt.outcomes([(0, 1, 1.0, 30), (1, 2, 0.5, 10)], 3), 3)
    assert np.isfinite(estimate).all() and estimate[0] > estimate[1] + 2


@pytest.mark.parametrize(
    "rows, message",
    [
        ([(0, 0, 1.0, 1)], "two different models"),
        ([(0, 5, 1.0, 1)], "two different models"),
        ([(0, 1, 0.3, 1)], "0, 0.5 or 1"),
        ([(0, 1, 1.0, -1)], "at least 0"),
    ],
)
def test_bad_outcomes_are_refused_with_a_message(rows, message):
    with pytest.raises(ValueError, match=message):
        bt.outcomes(rows, 3)
