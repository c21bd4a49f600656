"""The leaderboard refresh's fit: Bradley-Terry (choix) on simulated votes, its bootstrap and intervals, timed.

    python bench/leaderboard.py                          # 20 models, 100,000 votes, 1000 resamples
    python bench/leaderboard.py --models 50 --rounds 2000

The refresh runs on a worker every 10 minutes (beat); the fit must stay a small part of that.
Target: fit + bootstrap + intervals in under 60 s of CPU; the script prints the ratio to it (below 1 is within
target), and the mean width of the board's simultaneous 95% intervals (max-t band) beside that of per-model
percentile intervals from the same resamples (log-strength units).
The database part (one GROUP BY over the votes) is not timed here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feedback.leaderboards import bradley_terry as bt  # noqa: E402 (no Django needed)

TARGET_CPU_S = 60.0


def simulated(models: int, votes: int, seed: int) -> bt.Outcomes:
    rng = np.random.default_rng(seed)
    strengths = rng.normal(0.0, 1.0, models)
    first = rng.integers(0, models, votes)
    second = (first + rng.integers(1, models, votes)) % models
    p = 1.0 / (1.0 + np.exp(strengths[second] - strengths[first]))
    score = np.where(rng.random(votes) < 0.1, 0.5, (rng.random(votes) < p).astype(float))  # 10% ties
    keys, counts = np.unique(np.stack([first, second, score]), axis=1, return_counts=True)
    rows = [(int(f), int(s), float(w), int(c)) for (f, s, w), c in zip(keys.T, counts, strict=True)]
    return bt.outcomes(rows, models)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args(argv)
    data = simulated(args.models, args.votes, seed=1)
    wall, cpu = time.perf_counter(), time.process_time()
    point = bt.fit(data, args.models)
    draws = bt.bootstrap(data, args.models, rounds=args.rounds, seed=2)
    low, high = bt.simultaneous(draws, point)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    percentile_low, percentile_high = bt.intervals(draws)
    print(
        f"{args.models} models, {args.votes} votes, {args.rounds} resamples: {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"({cpu / (args.rounds + 1) * 1000:.2f} ms per fit); mean simultaneous 95% interval width "
        f"{np.mean(high - low):.3f} (per-model percentile {np.mean(percentile_high - percentile_low):.3f})"
    )
    print(f"target: under {TARGET_CPU_S:.0f} s CPU; ratio {cpu / TARGET_CPU_S:.3f}")
    return 0 if cpu < TARGET_CPU_S else 1


if __name__ == "__main__":
    sys.exit(main())
