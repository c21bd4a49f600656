"""A simulated crowd against quality control (issue 12), through the services on PostgreSQL.

100 honest volunteers (accuracy drawn from 65-90%) and 25 bad ones (random, always-left, too fast, and a
colluding group that always picks the longer completion) rank 400 pairs (5 counted votes each) with a known
truth that no test can decide (the prompts have none), with gold pairs from the tests mixed in. Each volunteer
keeps a simulated clock (reading time per profile, written onto the assignment and the vote, as the server would
have measured it), and turns go in the order of those clocks: a volunteer who reads less votes more often, as a
bot would; the bad ones cast about half of all votes.

Quality control is recomputed on the beat's schedule in simulated time: from then on a flagged or untrusted
volunteer is handed gold pairs only, and the pairs their votes did not fill go back for more. The control is
the same crowd, with the same seeds, on a platform without quality control (5 votes a pair, unweighted
majority). Asserted: the bad volunteers are flagged or weigh below 0.2 (at least 80% of them; at most 10% of
the honest ones); the exported labels are at least 10 points more accurate than the control's, and more
accurate than an unweighted majority of the very same votes.
"""

from __future__ import annotations

import heapq
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from feedback.coders.verdicts import pairs_refresh_decided_by_tests
from feedback.crowd.profiles import PROFILES, screen_choice
from feedback.datasets.aggregation import aggregate_votes
from feedback.datasets.quality import quality_recompute
from feedback.datasets.services import snapshot_build
from feedback.models import Assignment, Pair, Prompt, Volunteer, Vote
from feedback.ranking import claims, votes
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SEED = 12
HUMAN_PAIRS = 400
GOLD_PAIRS = 60
VOTES_PER_PAIR = 5
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
# profile -> (how many, accuracy range, reading seconds range)
CROWD = {
    "honest": (100, (0.65, 0.90), (15.0, 60.0)),
    "random": (7, (0.5, 0.5), (5.0, 20.0)),
    "left": (6, (0.0, 0.0), (3.0, 10.0)),
    "fast": (6, (0.5, 0.7), (0.2, 0.8)),
    "colluding": (6, (0.0, 0.0), (5.0, 20.0)),
}
RULES = {"honest": "noisy", "random": "random", "left": "left", "fast": "fast", "colluding": "colluding"}


def _human_pairs(rng: random.Random) -> dict[int, str]:
    """Pairs without tests, each with a truth ("a" or "b") only the simulation knows; lengths unrelated to it."""
    truth = {}
    for n in range(HUMAN_PAIRS):
        prompt = factories.PromptFactory(tests="", test_style=Prompt.TestStyle.NONE, entry_point="")
        short, long = f"    return x + {n}\n", f"    y = x\n    # step {n}\n    return y + {n}\n"
        a_text, b_text = (short, long) if rng.random() < 0.5 else (long, short)
        pair = factories.PairFactory(prompt=prompt, completion_a__text=a_text, completion_b__text=b_text,
                                     votes_wanted=VOTES_PER_PAIR)  # fmt: skip
        truth[pair.pk] = rng.choice("ab")
    return truth


def _gold_pairs() -> None:
    for _ in range(GOLD_PAIRS):
        pair = factories.PairWithOutcomesFactory()
        pairs_refresh_decided_by_tests(completion_ids=[pair.completion_a_id, pair.completion_b_id])


def _crowd(rng: random.Random) -> list[dict]:
    members = []
    for kind, (count, accuracy, reading) in CROWD.items():
        for index in range(count):
            user = factories.UserFactory(username=f"sim-{kind}-{index}")
            Volunteer.objects.filter(user=user).update(accepted_terms_at=timezone.now())
            members.append({"user": user, "kind": kind, "profile": PROFILES[RULES[kind]],
                            "accuracy": rng.uniform(*accuracy), "reading": reading,
                            "clock": START + timedelta(seconds=rng.uniform(0, 60))})  # fmt: skip
    return members


def _turn(member: dict, truth: dict[int, str], gold: dict[int, str], rng: random.Random) -> bool:
    assignment = claims.assignment_claim_next(user=member["user"])
    if assignment is None:
        return False
    pair = assignment.pair
    answer = gold.get(pair.pk) or truth[pair.pk]
    a, b = pair.completion_a.text, pair.completion_b.text
    left, right = (a, b) if assignment.left_is_a else (b, a)
    choice = screen_choice(member["profile"], accuracy=member["accuracy"], honest=answer,
                           left_is_a=assignment.left_is_a, left=left, right=right, rng=rng)  # fmt: skip
    read = timedelta(seconds=rng.uniform(*member["reading"]))
    handed_out = member["clock"]
    member["clock"] = handed_out + read + timedelta(seconds=rng.uniform(1, 10))
    # The server measures from the hand-out: the simulated reading time is written where it would have been.
    Assignment.objects.filter(pk=assignment.pk).update(created_at=timezone.now() - read)
    result = votes.vote_record(user=member["user"], pair_id=pair.pk, screen_choice=choice, key=uuid.uuid4().hex)
    Vote.objects.filter(pk=result.vote.pk).update(created_at=handed_out + read)
    return True


def _label_accuracy(snapshot, truth: dict[int, str]) -> float:
    rows = []
    for split in ("train", "test"):
        path = snapshot.path / "preference" / f"{split}.jsonl"
        rows += [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    chosen = {}
    for row in rows:
        if row["pair_id"] in truth:
            pair = Pair.objects.select_related("completion_a").get(pk=row["pair_id"])
            chosen[row["pair_id"]] = "a" if row["chosen"] == pair.completion_a.text else "b"
    # a pair left out (or a tie) counts as wrong: the label set as a whole is measured
    return sum(chosen.get(pair) == answer for pair, answer in truth.items()) / len(truth)


@pytest.fixture
def seeded():
    """The server's own draws (sides, gold turns, shuffle keys) seeded too: the same crowd gives the same run."""
    state = random.getstate()
    random.seed(SEED)
    yield
    random.setstate(state)


def _turns(members: list[dict], truth: dict[int, str], gold: dict[int, str], rng: random.Random, before=None) -> None:
    """Turns in the order of the simulated clocks (a volunteer who reads less votes more often) until no pair is
    left for anyone; ``before(clock)`` runs ahead of each turn."""
    queue = [(m["clock"], n) for n, m in enumerate(members)]
    heapq.heapify(queue)
    while queue:
        clock, n = heapq.heappop(queue)
        if before is not None:
            before(clock)
        if _turn(members[n], truth, gold, rng):
            heapq.heappush(queue, (members[n]["clock"], n))


def _crowd_votes(members: list[dict], truth: dict[int, str], gold: dict[int, str], rng: random.Random) -> int:
    """The crowd votes, with quality control recomputed on the beat's schedule in simulated time, then after the
    crowd runs dry, until no pair goes back for more votes. Returns how many recomputes ran."""
    task = PeriodicTask.objects.get(task="feedback.tasks.recompute_quality")
    every = timedelta(**{task.interval.period: task.interval.every})
    next_at, recomputes = START + every, 0

    def on_schedule(clock) -> None:
        nonlocal next_at, recomputes
        if clock >= next_at:
            quality_recompute()
            next_at, recomputes = next_at + every, recomputes + 1

    while True:
        _turns(members, truth, gold, rng, before=on_schedule)
        recomputes += 1
        if quality_recompute()["pairs_reopened"] == 0:
            return recomputes


def _unweighted_accuracy(truth: dict[int, str]) -> float:
    """The labels an unweighted majority gives these pairs (every vote 1, as the export without quality control
    labels them); a pair without a label, or a tie, counts as wrong."""
    right = 0
    for pair, answer in truth.items():
        label = aggregate_votes(
            (choice, 1.0) for choice in Vote.objects.filter(pair_id=pair).values_list("choice", flat=True)
        )
        right += label is not None and label.label == answer
    return right / len(truth)


def _control_without_quality_control(settings) -> float:
    """The same crowd (same seeds) on a platform without quality control: no gold pairs handed out, no
    recompute, 5 votes a pair, the unweighted majority. Rolled back afterwards."""
    conf = settings.CODEPREF
    settings.CODEPREF = {**conf, "QC_GOLD_RATE": 0.0, "QC_ONBOARDING_PAIRS": 0}
    random.seed(SEED)
    rng = random.Random(SEED)
    with transaction.atomic():
        truth = _human_pairs(rng)
        _gold_pairs()
        _turns(_crowd(rng), truth, {}, rng)
        assert Vote.objects.filter(pair_id__in=truth).count() == VOTES_PER_PAIR * HUMAN_PAIRS
        accuracy = _unweighted_accuracy(truth)
        transaction.set_rollback(True)
    settings.CODEPREF = conf
    random.seed(SEED)
    return accuracy


def test_quality_control_finds_the_bad_volunteers_and_makes_the_labels_more_accurate(settings, seeded):
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 0.1, "QC_ONBOARDING_PAIRS": 3}
    control = _control_without_quality_control(settings)
    rng = random.Random(SEED)
    truth = _human_pairs(rng)
    _gold_pairs()
    gold = dict(Pair.objects.filter(state=Pair.State.GOLD).values_list("pk", "gold_choice"))
    assert len(gold) == GOLD_PAIRS
    members = _crowd(rng)
    recomputes = _crowd_votes(members, truth, gold, rng)
    human_votes = Vote.objects.filter(pair_id__in=truth).count()
    assert human_votes >= VOTES_PER_PAIR * HUMAN_PAIRS
    print(f"{human_votes} votes on the {HUMAN_PAIRS} pairs, {recomputes} recomputes")

    stats = quality_recompute()
    assert stats["volunteers"] == len(members)
    trust = {v.user_id: v for v in Volunteer.objects.filter(user__username__startswith="sim-")}

    def caught(member) -> bool:
        volunteer = trust[member["user"].pk]
        return volunteer.qc_flagged or volunteer.trust < 0.2

    bad = [m for m in members if m["kind"] != "honest"]
    honest = [m for m in members if m["kind"] == "honest"]
    caught_bad = sum(map(caught, bad)) / len(bad)
    caught_honest = sum(map(caught, honest)) / len(honest)
    by_kind = {kind: sum(caught(m) for m in members if m["kind"] == kind) for kind in CROWD}
    flagged_honest = sum(trust[m["user"].pk].qc_flagged for m in honest)
    print(f"caught: bad {caught_bad:.2f}, honest {caught_honest:.2f} ({flagged_honest} flagged), by kind {by_kind}")
    with_qc = _label_accuracy(snapshot_build().snapshot, truth)
    same_votes = _label_accuracy(snapshot_build(filters={"quality_control": False}).snapshot, truth)
    print(
        f"label accuracy on {HUMAN_PAIRS} pairs: with quality control {with_qc:.3f}; unweighted majority "
        f"{control:.3f} without quality control (5 votes a pair), {same_votes:.3f} over the same votes"
    )
    assert caught_bad >= 0.8, by_kind
    assert caught_honest <= 0.1, by_kind
    assert all(trust[m["user"].pk].qc_flagged for m in members if m["kind"] in ("left", "fast"))
    assert with_qc >= control + 0.10  # the 10 points over an unweighted majority
    assert with_qc > same_votes  # and the weights themselves help, on the very same votes
