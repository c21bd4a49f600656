"""Anomaly flags on one volunteer's votes: pure functions, no Django (quality control computes them off the
vote path, from rows it read).

- ``fast``: faster than a reading-time floor that grows with the length of the code shown
  (``read_ms_base + read_ms_per_char * characters``);
- ``same_side``: part of a run of at least ``same_side_run`` votes on the same screen side (left or right;
  sides are drawn at random per hand-out, so an honest judge's runs are short);
- ``one_choice``: part of a run of at least ``one_choice_run`` identical tie / both-bad answers that the tests
  do not back: "both bad" where both completions failed their tests, or "tie" where both passed, is what an
  honest judge says (a batch of weak samples gives long honest runs of it), so such votes are passed over, and
  neither lengthen nor break a run;
- ``rate``: more than ``max_votes_per_minute`` votes in the minute up to this one;
- ``cap``: past ``daily_cap`` votes in one UTC day;
- ``length_bias``: of at least ``length_bias_votes`` votes for a side on pairs of unequal length, a share of at
  least ``length_bias_share`` for the longer one, or for the shorter one (a judge of the code does not pick by
  length alone); every such vote is flagged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

FLAGS = ("fast", "same_side", "one_choice", "rate", "cap", "length_bias")


@dataclass(frozen=True)
class AnomalyLimits:
    read_ms_base: int
    read_ms_per_char: float
    same_side_run: int
    one_choice_run: int
    max_votes_per_minute: int
    daily_cap: int
    length_bias_votes: int = 10
    length_bias_share: float = 0.9

    @classmethod
    def from_settings(cls, conf: dict) -> AnomalyLimits:
        return cls(
            read_ms_base=int(conf["QC_READ_MS_BASE"]),
            read_ms_per_char=float(conf["QC_READ_MS_PER_CHAR"]),
            same_side_run=int(conf["QC_SAME_SIDE_RUN"]),
            one_choice_run=int(conf["QC_ONE_CHOICE_RUN"]),
            max_votes_per_minute=int(conf["QC_MAX_VOTES_PER_MINUTE"]),
            daily_cap=int(conf["QC_DAILY_CAP"]),
            length_bias_votes=int(conf["QC_LENGTH_BIAS_VOTES"]),
            length_bias_share=float(conf["QC_LENGTH_BIAS_SHARE"]),
        )

    def reading_floor_ms(self, characters: int) -> float:
        return self.read_ms_base + self.read_ms_per_char * max(0, characters)


@dataclass(frozen=True)
class VoteSeen:
    """What the flags look at of one vote: the screen choice (left / right / tie / both_bad), the server's time
    taken (None when unknown), when, and how many characters of code were shown (both completions)."""

    screen: str
    time_taken_ms: int | None
    at: datetime
    characters: int
    longer: str = ""  # the screen side showing the longer completion ("left" / "right"), "" when equally long
    tests_say: str = ""  # "tie" when both completions passed their tests, "both_bad" when both failed, else ""


def votes_flag(votes: Sequence[VoteSeen], limits: AnomalyLimits) -> list[set[str]]:
    """The flags of each of one volunteer's votes, given in the order they were cast."""
    flags: list[set[str]] = [set() for _ in votes]
    for i, vote in enumerate(votes):
        if vote.time_taken_ms is not None and vote.time_taken_ms < limits.reading_floor_ms(vote.characters):
            flags[i].add("fast")
    everyone = list(range(len(votes)))
    _runs(votes, everyone, flags, lambda s: s in ("left", "right"), limits.same_side_run, "same_side")
    unbacked = [i for i, vote in enumerate(votes) if vote.screen != vote.tests_say]
    _runs(votes, unbacked, flags, lambda s: s in ("tie", "both_bad"), limits.one_choice_run, "one_choice")
    window: deque[datetime] = deque()
    days: dict[object, int] = {}
    for i, vote in enumerate(votes):
        window.append(vote.at)
        while window and vote.at - window[0] >= timedelta(minutes=1):
            window.popleft()
        if len(window) > limits.max_votes_per_minute:
            flags[i].add("rate")
        day = vote.at.date()
        days[day] = days.get(day, 0) + 1
        if days[day] > limits.daily_cap:
            flags[i].add("cap")
    _length_bias(votes, flags, limits)
    return flags


def _length_bias(votes: Sequence[VoteSeen], flags: list[set[str]], limits: AnomalyLimits) -> None:
    sided = [i for i, vote in enumerate(votes) if vote.longer and vote.screen in ("left", "right")]
    if not sided or len(sided) < limits.length_bias_votes:
        return
    longer = sum(votes[i].screen == votes[i].longer for i in sided) / len(sided)
    share = limits.length_bias_share - 1e-9  # 9 of 10 is a share of 0.9, whatever the float rounding
    if longer >= share or 1.0 - longer >= share:
        for i in sided:
            flags[i].add("length_bias")


def _runs(votes: Sequence[VoteSeen], among: list[int], flags: list[set[str]], counts, length: int, flag: str) -> None:
    """Flag every vote of each run of at least ``length`` equal screen choices that ``counts``, in the votes
    ``among`` (indices, in order: the votes left out neither lengthen nor break a run)."""
    if length <= 0:
        return
    start = 0
    for k in range(1, len(among) + 1):
        if k < len(among) and votes[among[k]].screen == votes[among[start]].screen:
            continue
        if counts(votes[among[start]].screen) and k - start >= length:
            for j in among[start:k]:
                flags[j].add(flag)
        start = k


def longest_run(votes: Sequence[VoteSeen]) -> tuple[str, int]:
    """The longest run of one screen choice: (choice, length); ("", 0) for no votes."""
    best, start = ("", 0), 0
    for i in range(1, len(votes) + 1):
        if i < len(votes) and votes[i].screen == votes[start].screen:
            continue
        if i - start > best[1]:
            best = (votes[start].screen, i - start)
        start = i
    return best
