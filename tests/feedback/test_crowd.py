"""The crowd simulator: profiles vote as they say, through the API, and the report scores them against the truth."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import Client

from feedback.crowd import profiles, simulation, transport
from feedback.crowd.oracle import Oracle, OracleError
from feedback.crowd.profiles import PROFILES, mix_apportion, mix_parse, screen_choice
from feedback.crowd.simulation import Member
from feedback.models import Assignment, Completion, Pair, Vote
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _server_draws_seeded():
    """The server's own draws (which side is left, which pair next) seeded as well as the crowd's: the order
    of hand-outs decides which votes a profile's noise falls on, and with it the accuracies asserted below."""
    state = random.getstate()
    random.seed(20261205)
    yield
    random.setstate(state)


def make_pairs(decided: int = 16, both_pass: int = 2, both_fail: int = 2, votes_wanted: int = 50) -> list:
    """Pairs with known outcomes; in half the decided ones the passing completion is the longer text."""
    pairs = []
    for i in range(decided):
        a_passed = i % 2 == 0
        long_passes = i % 4 < 2
        a_text, b_text = "    return x\n", "    y = x\n    return y if y else x\n"
        if a_passed != long_passes:
            a_text, b_text = b_text, a_text
        pairs.append(
            factories.PairWithOutcomesFactory(
                a_passed=a_passed,
                b_passed=not a_passed,
                completion_a__text=a_text + f"# {i}\n",
                completion_b__text=b_text + f"# {i}\n",
                votes_wanted=votes_wanted,
            )
        )
    for passed, count in ((True, both_pass), (False, both_fail)):
        pairs += [
            factories.PairWithOutcomesFactory(a_passed=passed, b_passed=passed, votes_wanted=votes_wanted)
            for _ in range(count)
        ]
    return pairs


def simulate(*args: str) -> dict:
    out = _Out()
    call_command("simulate_crowd", *args, stdout=out, stderr=_Out())
    return json.loads(out.text)


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def truth_of(pair) -> str | None:
    a, b = pair.completion_a.outcome, pair.completion_b.outcome
    if a != b:
        return "a" if a == Completion.Outcome.PASSED else "b"
    return None


def stored_by_profile() -> dict[str, list[Vote]]:
    by_profile = defaultdict(list)
    for vote in Vote.objects.select_related("volunteer", "pair__completion_a", "pair__completion_b"):
        by_profile[vote.volunteer.username.split("-")[2]].append(vote)
    return by_profile


def accuracy(votes: list[Vote]) -> float:
    scored = [v.choice == truth_of(v.pair) for v in votes if truth_of(v.pair)]
    return sum(scored) / len(scored)


def test_each_profile_votes_as_its_profile_says_and_the_report_scores_it():
    make_pairs()
    report = simulate("--in-process", "--profiles", "careful:3,random:3,left:1,colluding:2,noisy:1,fast:1")

    stored = stored_by_profile()
    assert report["stopped"] == "no pair left" and report["error"] == ""
    assert report["votes_cast"] == Vote.objects.count() == 11 * 20  # every volunteer on every pair
    for name, votes in stored.items():
        assert report["profiles"][name]["votes_cast"] == report["profiles"][name]["votes_stored"] == len(votes)
        assert report["profiles"][name]["accuracy"] == round(accuracy(votes), 4)
    # 3 careful volunteers x 16 decided pairs = 48 scored votes at 0.95: under 0.9 one run in ten (0.8958 was
    # seen), under 0.85 (8 or more wrong) about 2 in 1,000
    assert report["profiles"]["careful"]["accuracy"] >= 0.85
    assert 0.3 <= report["profiles"]["random"]["accuracy"] <= 0.7
    assert {v.screen_choice for v in stored["left"]} == {"left"}
    for vote in stored["colluding"]:
        chosen = vote.pair.completion_a if vote.choice == "a" else vote.pair.completion_b
        other = vote.pair.completion_b if vote.choice == "a" else vote.pair.completion_a
        assert len(chosen.text) >= len(other.text)
    assert report["profiles"]["colluding"]["picked_longer"] == 1.0
    assert report["profiles"]["colluding"]["accuracy"] == 0.5  # the longer text passes in half the pairs


def test_the_majority_label_of_each_pair_is_scored_against_the_truth():
    pairs = make_pairs(decided=8, both_pass=1, both_fail=1)
    # five careful volunteers (0.95) against two colluders: a pair's majority goes wrong only where the longer
    # side fails and two careful votes slip (2.3% a pair), so 2 wrong of 8 about 3 runs in 1,000 (three
    # careful ones failed "at most 1 wrong" one run in ten)
    report = simulate("--in-process", "--profiles", "careful:5,colluding:2", "--seed", "3")

    right = 0
    for pair in pairs:
        counts = Counter(Vote.objects.filter(pair=pair).values_list("choice", flat=True))
        top = counts.most_common(1)[0][0]
        right += truth_of(pair) is not None and top == truth_of(pair)
    assert report["pairs"]["voted"] == 10 and report["pairs"]["with_truth"] == 8
    assert report["pairs"]["majority_correct"] == right
    assert report["pairs"]["majority_accuracy"] == right / 8
    assert right >= 7  # the careful volunteers outvote the colluders


def test_votes_go_through_the_api_with_keys_and_a_rerun_with_the_same_seed_adds_none():
    make_pairs(decided=6, both_pass=1, both_fail=1)
    first = simulate("--in-process", "--profiles", "careful:2,noisy:2", "--seed", "7", "--max-votes", "9")
    assert first["stopped"] == "max votes" and first["votes_cast"] == Vote.objects.count() == 9
    votes = list(Vote.objects.select_related("volunteer"))
    assert all(v.idempotency_key == f"{v.volunteer.username}-p{v.pair_id}" for v in votes)
    # Each vote answered an assignment the API handed out, and the server measured its time.
    assert Assignment.objects.filter(voted_at__isnull=False).count() == 9
    assert all(v.time_taken_ms is not None for v in votes)

    second = simulate("--in-process", "--profiles", "careful:2,noisy:2", "--seed", "7")
    assert second["stopped"] == "no pair left" and second["votes_cast"] == 4 * 8 - 9
    third = simulate("--in-process", "--profiles", "careful:2,noisy:2", "--seed", "7")
    assert third["votes_cast"] == 0 and Vote.objects.count() == 32
    assert Vote.objects.values("volunteer", "pair").distinct().count() == 32
    assert third["profiles"]["careful"]["votes_stored"] == 16


def test_the_same_seed_gives_the_same_votes():
    make_pairs(decided=6, both_pass=1, both_fail=1)
    simulate("--in-process", "--profiles", "noisy:3,random:2", "--seed", "11")
    first = sorted(Vote.objects.values_list("volunteer__username", "pair_id", "choice"))
    Vote.objects.all().delete()
    Assignment.objects.all().delete()
    Pair.objects.update(votes_count=0, claims_count=0, state="open")
    simulate("--in-process", "--profiles", "noisy:3,random:2", "--seed", "11")
    assert sorted(Vote.objects.values_list("volunteer__username", "pair_id", "choice")) == first


class _LosesFirstVoteAnswer:
    """A requests-like session over Django's test client that loses the answer to the first vote it sends."""

    def __init__(self) -> None:
        self.client = Client()
        self.lost = 0

    def request(self, method, url, **options):
        path = url.split("testserver", 1)[1]
        kwargs = {"HTTP_AUTHORIZATION": options["headers"]["Authorization"]}
        if options["json"] is not None:
            kwargs.update(data=json.dumps(options["json"]), content_type="application/json")
        response = getattr(self.client, method.lower())(path, **kwargs)
        if method == "POST" and not self.lost:
            self.lost += 1  # the server stored the vote; its answer never arrives
            raise requests.ConnectionError("answer lost")
        response.json = lambda: json.loads(response.content)
        return response


def test_a_lost_answer_is_retried_with_the_same_key_and_counted_once(monkeypatch):
    make_pairs(decided=2, both_pass=0, both_fail=0)
    members = simulation.crowd_enlist(mix={"careful": 1}, volunteers=1, seed=5)
    simulation.crowd_tokens_issue(members, lifetime_seconds=60)
    monkeypatch.setattr(transport, "loopback_url_check", lambda url: url)
    monkeypatch.setattr(transport.time, "sleep", lambda s: None)
    api = transport.HttpApi("http://testserver")
    session = api._local.session = _LosesFirstVoteAnswer()

    result = simulation.crowd_run(members, api=api, seed=5, max_votes=10, max_seconds=60)

    assert session.lost == 1 and api.retries == 1 and result.error == ""
    assert members[0].cast == 1 and members[0].replayed == 1  # the retry was answered as a replay
    assert Vote.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_crowd_votes_against_a_running_server_over_http(live_server):
    make_pairs(decided=4, both_pass=0, both_fail=0, votes_wanted=3)
    report = simulate("--base-url", live_server.url, "--profiles", "careful:2,left:2", "--concurrency", "3")
    assert report["transport"] == "http" and report["error"] == ""
    assert report["votes_cast"] == Vote.objects.count() == 12  # 4 pairs x 3 votes wanted
    assert report["pairs"]["voted"] == 4


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--in-process", "--profiles", "careful:x"], "--profiles"),
        (["--in-process", "--profiles", "zealot:3"], "--profiles"),
        (["--in-process", "--profiles", "careful:0"], "--profiles"),
        (["--in-process", "--volunteers", "0"], "--volunteers"),
        (["--in-process", "--seed", "-1"], "--seed"),
        (["--in-process", "--max-votes", "0"], "--max-votes"),
        (["--in-process", "--max-seconds", "0"], "--max-seconds"),
        (["--in-process", "--concurrency", "2"], "--concurrency"),
        (["--in-process", "--reading-seconds", "-1"], "--reading-seconds"),
        (["--base-url", "http://example.org:8000"], "--base-url"),
        (["--base-url", "ftp://127.0.0.1/"], "--base-url"),
        ([], "--base-url"),
    ],
)
def test_bad_options_are_refused_naming_the_option(args, option):
    with pytest.raises(CommandError, match=option):
        call_command("simulate_crowd", *args)
    assert Vote.objects.count() == 0


def test_a_pair_shown_with_texts_this_database_does_not_hold_stops_the_oracle():
    pair = factories.PairWithOutcomesFactory()
    facts = Oracle().facts(pair.pk)
    assert facts.left_is_a(pair.completion_a.text, pair.completion_b.text) is True
    assert facts.left_is_a(pair.completion_b.text, pair.completion_a.text) is False
    with pytest.raises(OracleError):
        facts.left_is_a("something else", pair.completion_b.text)
    with pytest.raises(OracleError):
        Oracle().facts(pair.pk + 1000)


@pytest.mark.parametrize(
    ("a_passed", "b_passed", "truth", "honest"),
    [(True, False, "a", "a"), (False, True, "b", "b"), (True, True, None, "tie"), (False, False, None, "both_bad")],
)
def test_the_truth_rule(a_passed, b_passed, truth, honest):
    pair = factories.PairWithOutcomesFactory(a_passed=a_passed, b_passed=b_passed)
    facts = Oracle().facts(pair.pk)
    assert (facts.truth, facts.honest) == (truth, honest)


def test_a_test_that_did_not_run_gives_no_truth():
    pair = factories.PairWithOutcomesFactory(completion_b__outcome=Completion.Outcome.NOT_RUN)
    assert Oracle().facts(pair.pk).truth is None


def test_the_mix_is_parsed_and_apportioned_by_weight():
    assert mix_parse("careful:10, noisy:20,left") == {"careful": 10, "noisy": 20, "left": 1}
    assert mix_apportion({"careful": 10, "noisy": 20, "random": 2}, 16) == {"careful": 5, "noisy": 10, "random": 1}
    assert sum(mix_apportion(mix_parse(profiles.DEFAULT_MIX), 7).values()) == 7
    with pytest.raises(profiles.MixError, match="twice"):
        mix_parse("careful:1,careful:2")


@pytest.mark.parametrize("left_is_a", [True, False])
def test_a_perfect_judge_clicks_the_side_the_truth_was_shown_on(left_is_a):
    careful = Member(username="c", profile=PROFILES["careful"], accuracy=1.0)
    rng = random.Random(0)
    side = screen_choice(careful.profile, accuracy=1.0, honest="a", left_is_a=left_is_a, left="x", right="yy", rng=rng)
    assert side == ("left" if left_is_a else "right")
    wrong = screen_choice(careful.profile, accuracy=0.0, honest="a", left_is_a=left_is_a, left="x", right="y", rng=rng)
    assert wrong == ("right" if left_is_a else "left")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:8000"])
def test_loopback_urls_are_accepted(url):
    assert transport.loopback_url_check(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.org", "http://127.0.0.1:8000/api/v1/"])
def test_other_urls_are_refused(url):
    with pytest.raises(ValueError):
        transport.loopback_url_check(url)


def test_simulated_reading_time_is_written_where_the_server_would_have_measured_it():
    """With SimulatedTime the crowd votes at once, and each vote reads as if its volunteer had read the pair for
    the profile's share of the reading time: the server's own measurement (from the moved-back hand-out) and
    the vote's time on the volunteer's clock, so quality control sees people, not a script."""
    from datetime import timedelta

    from django.utils import timezone

    make_pairs(decided=8, both_pass=0, both_fail=0, votes_wanted=2)
    members = simulation.crowd_enlist(mix={"careful": 1, "left": 1}, volunteers=2, seed=3)
    simulation.crowd_tokens_issue(members, lifetime_seconds=60)
    start = timezone.now() - timedelta(hours=6)
    simulated = simulation.SimulatedTime(20.0, start=start)
    result = simulation.crowd_run(
        members, api=transport.InProcessApi(), seed=3, max_votes=100, max_seconds=60, simulated=simulated
    )
    assert result.error == "" and Vote.objects.count() == 16
    for member in members:
        votes = list(Vote.objects.filter(volunteer__username=member.username).order_by("id"))
        read = 20.0 * member.profile.reading  # careful 1.0, left 0.1 of it; drawn 0.5-1.5 times that
        taken = [v.time_taken_ms for v in votes]
        assert all(500 * read <= ms <= 1500 * read + 2000 for ms in taken), taken
        at = [v.created_at for v in votes]
        assert start < at[0] < start + timedelta(seconds=60 + 1.5 * read)
        steps = [(b - a).total_seconds() for a, b in zip(at, at[1:], strict=False)]
        assert all(0.5 * read + 1 <= step <= 1.5 * read + 10 for step in steps), steps  # reading, then a pause
