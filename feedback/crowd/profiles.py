"""Volunteer profiles, the crowd's mix, and how a profile turns a pair into a vote.

The truth of a pair (``oracle.PairFacts``): when exactly one completion passed its tests, the passing one;
otherwise there is none (both passed, both failed, or a test did not run) and the pair is left out of every
accuracy. An honest judge votes for the passing side, ``tie`` when both passed, ``both_bad`` when both failed
or nothing is known. A profile with accuracy p gives the honest answer with probability p; otherwise it picks
the other side (on a pair with no truth: a side at random).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    rule: str  # "judge": honest answer bent by accuracy; "swapped": its opposite; "random", "left", "longer": no truth
    accuracy: tuple[float, float]  # each volunteer's accuracy is drawn uniformly from this range
    reading: float  # share of --reading-seconds this profile waits between seeing a pair and voting
    description: str


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("careful", "judge", (0.95, 0.95), 1.0, "reads the tests' verdict; right 95% of the time"),
        Profile("noisy", "judge", (0.6, 0.85), 0.5, "right with an accuracy drawn from 0.60-0.85 per volunteer"),
        Profile("random", "random", (0.5, 0.5), 0.25, "left or right at random"),
        Profile("left", "left", (0.0, 0.0), 0.1, "always picks the left side"),
        Profile("fast", "judge", (0.5, 0.7), 0.0, "votes at once, accuracy drawn from 0.50-0.70 per volunteer"),
        Profile("colluding", "longer", (0.0, 0.0), 0.25, "a group that always picks the longer completion"),
        # A control, never in the default mix: the loop benchmark's crowd with its labels swapped.
        Profile("swapped", "swapped", (0.0, 0.0), 0.5, "votes against the tests' verdict; tie/both_bad as is"),
    )
}
DEFAULT_MIX = "careful:10,noisy:20,random:2,left:2,fast:2,colluding:4"
SIDES = ("left", "right")


class MixError(ValueError):
    """A profile mix that cannot be read; the message says what was expected."""


def mix_parse(spec: str) -> dict[str, int]:
    """``"careful:10,noisy:20"`` -> {"careful": 10, "noisy": 20}: weights of the profiles in the crowd."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, colon, weight = part.partition(":")
        name = name.strip()
        if name not in PROFILES:
            raise MixError(f"unknown profile {name!r} (profiles: {', '.join(PROFILES)})")
        if name in mix:
            raise MixError(f"profile {name!r} is given twice")
        try:
            mix[name] = int(weight) if colon else 1
        except ValueError:
            raise MixError(f"{part!r}: the weight must be a whole number, as in careful:10") from None
        if mix[name] < 0:
            raise MixError(f"{part!r}: the weight must be 0 or more")
    if not mix or sum(mix.values()) == 0:
        raise MixError(f"give profiles with weights, as in {DEFAULT_MIX!r}")
    return mix


def mix_apportion(mix: dict[str, int], volunteers: int) -> dict[str, int]:
    """How many of ``volunteers`` each profile gets, in proportion to its weight (largest remainders)."""
    total = sum(mix.values())
    exact = {name: volunteers * weight / total for name, weight in mix.items()}
    counts = {name: int(share) for name, share in exact.items()}
    order = sorted(mix, key=lambda name: (-(exact[name] - counts[name]), list(mix).index(name)))
    for name in order[: volunteers - sum(counts.values())]:
        counts[name] += 1
    return counts


def volunteer_accuracy(profile: Profile, rng: random.Random) -> float:
    low, high = profile.accuracy
    return low if low == high else rng.uniform(low, high)


def screen_choice(
    profile: Profile, *, accuracy: float, honest: str, left_is_a: bool, left: str, right: str, rng: random.Random
) -> str:
    """The side this volunteer clicks, as shown on screen (left / right / tie / both_bad).

    ``honest`` is the honest judge's answer in terms of completions (a / b / tie / both_bad).
    """
    if profile.rule == "left":
        return "left"
    if profile.rule == "longer":
        return "left" if len(left) >= len(right) else "right"
    if profile.rule == "random":
        return _shown(rng.choice("ab"), left_is_a)
    if profile.rule == "swapped":  # the labels swapped: the failing side wins; no truth, the honest vote
        return _shown("b" if honest == "a" else "a", left_is_a) if honest in ("a", "b") else honest
    shown = _shown(honest, left_is_a) if honest in ("a", "b") else honest
    if rng.random() < accuracy:
        return shown
    if shown in SIDES:
        return SIDES[1 - SIDES.index(shown)]
    return _shown(rng.choice("ab"), left_is_a)


def _shown(completion: str, left_is_a: bool) -> str:
    """The screen side completion "a" or "b" was shown on. Random picks are drawn as completions, not sides,
    so the same seed gives the same votes whichever side the server put each completion on."""
    return "left" if (completion == "a") == left_is_a else "right"
