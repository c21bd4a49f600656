"""Bradley-Terry on simulated votes: the fit recovers known strengths, the simultaneous 95% intervals cover them.

Pure numpy + choix, no database. Coverage is read as the issue reads it, jointly: in at least 45 of 50 runs
(90%) all five true (centred) strengths lie inside their intervals at once. The board's intervals are the
bootstrap max-t band (``bt.simultaneous``), nominally 95% jointly; the per-model percentile intervals it replaced
covered all five in only 36 of these 50 runs (232 of 250 intervals one by one). The band covers all five in 45
of these 50 (245 of 250 one by one): at the bar, and within chance of its nominal 95% (P(at least 45 of 50) is
about 0.96 at a true 95%); over the next 250 seeds (1050 to 1299, checked once, not kept as a test) it covered
all five in 237 (0.948).
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
def test_the_simultaneous_95_percent_intervals_cover_all_five_strengths_in_at_least_45_of_50_runs():
    centred = TRUE - TRUE.mean()
    all_five = per_interval = widths = 0
    for run in range(50):
        data = simulate(1000 + run)
        point = bt.fit(data, len(TRUE))
        low, high = bt.simultaneous(bt.bootstrap(data, len(TRUE), rounds=ROUNDS, seed=run), point)
        assert (low <= point + 1e-9).all() and (point <= high + 1e-9).all()
        inside = (low <= centred) & (centred <= high)
        all_five += int(inside.all())
        per_interval += int(inside.sum())
        widths += float((high - low).mean())
    print(
        f"\nall five covered in {all_five}/50 runs; per interval {per_interval}/250 = {per_interval / 250:.3f}; "
        f"mean width {widths / 50:.3f}"
    )
    assert all_five >= 45, (all_five, per_interval)
    # Not vacuous: intervals as wide as the whole scale would cover everything.
    assert 0.1 < widths / 50 < 0.6, widths / 50


def test_the_band_is_the_max_t_quantile_of_hand_made_draws():
    # Models 0 and 1 move together (x, -x), models 2 and 3 (y, -y); the fit is 0. x: one excursion to 3 and to
    # -3, else +-1 (sd sqrt(1.8)); y: +-2 (sd 2). Largest deviation in sds per draw: 3 / sqrt(1.8) = sqrt(5) in
    # the two excursions, 1 in the other 18, so c (the 95th percentile of 20 values) is sqrt(5): the band is
    # +-sqrt(5) * sqrt(1.8) = +-3 for models 0 and 1 and +-2 sqrt(5) for models 2 and 3, whose own draws never
    # left +-2. Each model's percentile interval is narrower: +-2.05 (x) and +-2 (y).
    x = np.array([3.0, -3.0] + [1.0, -1.0] * 9)
    y = np.array([2.0, -2.0] * 10)
    draws = np.stack([x, -x, y, -y], axis=1)
    low, high = bt.simultaneous(draws, np.zeros(4))
    expected = np.array([3.0, 3.0, 2 * math.sqrt(5), 2 * math.sqrt(5)])
    assert high == pytest.approx(expected) and low == pytest.approx(-expected)
    percentile_low, percentile_high = bt.intervals(draws)
    assert percentile_high == pytest.approx([2.05, 2.05, 2.0, 2.0])
    assert (low <= percentile_low).all() and (percentile_high <= high).all()
    # At a lower level c drops to 1 (the bulk of the draws): +-sqrt(1.8) and +-2.
    low, high = bt.simultaneous(draws, np.zeros(4), level=0.5)
    assert high == pytest.approx([math.sqrt(1.8), math.sqrt(1.8), 2.0, 2.0])
    # Centred on the fit, and blind to a common shift of any draw or of the fit (strengths mean nothing up to one).
    point = np.array([0.5, -0.5, 0.25, -0.25])
    shifted = draws + point + np.arange(20.0)[:, None]
    low, high = bt.simultaneous(shifted, point + 7.0)
    assert high == pytest.approx(point + expected) and low == pytest.approx(point - expected)


def test_the_band_holds_whole_draws_and_is_wider_than_the_percentile_intervals():
    data = simulate(11)
    point = bt.fit(data, len(TRUE))
    draws = bt.bootstrap(data, len(TRUE), rounds=ROUNDS, seed=11)
    low, high = bt.simultaneous(draws, point)
    percentile_low, percentile_high = bt.intervals(draws)
    assert ((high - low) >= percentile_high - percentile_low).all(), (high - low, percentile_high - percentile_low)
    # By construction 95% of the draws lie inside the band for all five models at once; the percentile
    # intervals hold fewer whole draws (each leaves out 5% of its own model's draws, at different draws).
    whole = ((low <= draws) & (draws <= high)).all(axis=1).mean()
    per_model = ((percentile_low <= draws) & (draws <= percentile_high)).all(axis=1).mean()
    assert whole == pytest.approx(0.95, abs=0.005) and per_model < 0.9, (whole, per_model)


def test_a_model_whose_draws_never_move_gets_a_point_interval_and_no_draw_is_refused():
    # One rated model: its centred strength is always 0, no spread, no infinite c.
    low, high = bt.simultaneous(np.zeros((10, 1)), np.zeros(1))
    assert low.tolist() == [0.0] and high.tolist() == [0.0]
    with pytest.raises(ValueError, match="at least one draw"):
        bt.simultaneous(np.zeros((0, 3)), np.zeros(3))


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
