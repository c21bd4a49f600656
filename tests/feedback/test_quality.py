"""Quality control (issue 12): gold pairs from tests and maintainers, gold in assignment, onboarding feedback,
trust and anomaly flags off the vote path, vote weights in snapshots, moderation, agreement and adaptive k."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import krippendorff
import numpy as np
import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.accounts.moderation import volunteers_suspend
from feedback.coders.importing import prompts_import
from feedback.coders.moderation import content_hide
from feedback.coders.verdicts import is_decisive_failure, pairs_refresh_decided_by_tests, winner_by_tests
from feedback.datasets.agreement import agreement_report
from feedback.datasets.anomalies import AnomalyLimits, VoteSeen, votes_flag
from feedback.datasets.quality import quality_recompute
from feedback.datasets.services import snapshot_build
from feedback.datasets.trust import TrustSettings, VoteFacts, trust_compute
from feedback.errors import ServiceError
from feedback.models import Assignment, Completion, Pair, Volunteer, Vote
from feedback.ranking import claims, statements, votes
from feedback.ranking.services import pair_gold_author
from tests import factories

pytestmark = pytest.mark.django_db

VOTES = "/api/v1/votes/"
NEXT = "/api/v1/pairs/next/"


def accepted(user):
    Volunteer.objects.filter(user=user).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    return user


def gold_pair(winner="a", **kwargs) -> Pair:
    """A pair the tests decide (A passes, B fails for real unless ``winner`` is "b"), made gold by the refresh."""
    pair = factories.PairWithOutcomesFactory(a_passed=winner == "a", b_passed=winner == "b", **kwargs)
    pairs_refresh_decided_by_tests(completion_ids=[pair.completion_a_id, pair.completion_b_id])
    pair.refresh_from_db()
    return pair


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def rows_of(snapshot, part) -> list[dict]:
    return jsonl(snapshot.path / part / "train.jsonl") + jsonl(snapshot.path / part / "test.jsonl")


@pytest.fixture(params=["one-statement", "orm"])
def both_paths(request, monkeypatch):
    if request.param == "orm":
        monkeypatch.setattr(statements, "FAST_SQL", False)
    return request.param


# --- gold from tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "stderr", "decisive"),
    [
        ("failed", "AssertionError", True),
        ("error", "NameError: name 'x' is not defined", True),
        ("error", "[sandbox] could not start the bubblewrap sandbox: no uid\n", False),
        ("error", "[sandbox] tests cannot be split: no check()\n", False),
        ("timeout", "", False),
        ("not_run", "", False),
        ("passed", "", False),
    ],
)
def test_only_a_real_failure_is_decisive(outcome, stderr, decisive):
    assert is_decisive_failure(Completion(outcome=outcome, test_stderr=stderr, verdict_strength="strong")) is decisive
    # A verdict judged in process (weak) is never decisive: the code under test could have forged it.
    assert is_decisive_failure(Completion(outcome=outcome, test_stderr=stderr, verdict_strength="weak")) is False


def test_a_pair_decided_by_tests_becomes_gold_with_its_answer_and_goes_back_when_undecided():
    pair = gold_pair(winner="b")
    assert (pair.state, pair.gold_choice, pair.gold_source, pair.decided_by_tests) == ("gold", "b", "tests", True)
    assert pair.gold_explanation.startswith("The preferred completion passes the prompt's unit tests")
    Completion.objects.filter(pk=pair.completion_a_id).update(outcome="timeout")
    pairs_refresh_decided_by_tests(completion_ids=[pair.completion_a_id])
    pair.refresh_from_db()
    assert (pair.state, pair.gold_choice, pair.gold_source, pair.decided_by_tests) == ("open", "", "", False)


def test_pairs_formed_from_tested_completions_are_gold_at_once():
    from feedback.coders.pairing import pairs_form

    prompt = factories.PromptFactory()
    good = factories.CompletionFactory(prompt=prompt, outcome="passed", verdict_strength="strong")
    bad = factories.CompletionFactory(
        prompt=prompt, outcome="failed", test_stderr="AssertionError", verdict_strength="strong"
    )
    slow = factories.CompletionFactory(prompt=prompt, outcome="timeout", verdict_strength="strong")
    formed = {(p.completion_a_id, p.completion_b_id): p for p in pairs_form(completions=[good, bad, slow])}
    assert formed[(good.pk, bad.pk)].state == "gold" and formed[(good.pk, bad.pk)].gold_choice == "a"
    assert formed[(good.pk, slow.pk)].state == "open" and not formed[(good.pk, slow.pk)].decided_by_tests
    assert winner_by_tests(slow, bad) == ""


# --- gold in assignment: onboarding first, then at the gold rate ----------------------------------------------


def test_a_new_volunteer_gets_gold_pairs_first_then_only_pairs_the_tests_cannot_decide(
    volunteer, settings, both_paths
):
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 0.0, "QC_ONBOARDING_PAIRS": 3}
    golds = {gold_pair().pk for _ in range(4)}
    human = {factories.PairFactory().pk for _ in range(3)}
    seen = []
    while (assignment := claims.assignment_claim_next(user=volunteer)) is not None:
        seen.append(assignment.pair_id)
        votes.vote_record(user=volunteer, pair_id=assignment.pair_id, screen_choice="left", key=uuid.uuid4().hex)
    assert set(seen[:3]) <= golds
    # after onboarding, at a gold rate of 0, only the human pairs: the fourth gold pair is never handed out
    assert set(seen[3:]) == human and len(seen) == 6


def test_gold_pairs_are_mixed_in_at_the_gold_rate_and_never_close(volunteer, other_volunteer, settings, both_paths):
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 1.0, "QC_ONBOARDING_PAIRS": 0}
    gold = gold_pair(votes_wanted=1)
    human = factories.PairFactory(votes_wanted=1)
    for user in (volunteer, other_volunteer):
        first = claims.assignment_claim_next(user=user)
        assert first.pair_id == gold.pk  # gold first at a rate of 1, for both: gold pairs take any number of votes
        votes.vote_record(user=user, pair_id=first.pair_id, screen_choice="left", key=uuid.uuid4().hex)
    gold.refresh_from_db()
    assert (gold.state, gold.votes_count) == ("gold", 2)
    assert claims.assignment_claim_next(user=volunteer).pair_id == human.pk


@pytest.mark.parametrize(
    ("change", "held"),
    [
        ({}, False),  # a new volunteer: trust not computed yet
        ({"trust": 0.1}, False),  # set, but not by a recompute
        ({"trust": 0.1, "trust_computed_at": datetime(2026, 12, 1, tzinfo=UTC)}, True),
        ({"trust": 0.5, "trust_computed_at": datetime(2026, 12, 1, tzinfo=UTC)}, False),
        ({"qc_flagged": True}, True),
        ({"suspended_at": datetime(2026, 12, 1, tzinfo=UTC)}, True),
    ],
)
def test_a_flagged_untrusted_or_suspended_volunteer_is_handed_gold_pairs_only(
    volunteer, settings, both_paths, change, held
):
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 0.0, "QC_ONBOARDING_PAIRS": 0}
    Volunteer.objects.filter(user=volunteer).update(**change)
    golds = {gold_pair().pk for _ in range(2)}
    human = {factories.PairFactory().pk for _ in range(2)}
    seen = []
    while (assignment := claims.assignment_claim_next(user=volunteer)) is not None:
        seen.append(assignment.pair_id)
        votes.vote_record(user=volunteer, pair_id=assignment.pair_id, screen_choice="left", key=uuid.uuid4().hex)
    assert claims.held_to_gold(volunteer) is held
    # held: both gold pairs, then nothing (the human pairs are not theirs to fill); else the human pairs only
    assert set(seen) == (golds if held else human) and len(seen) == 2


def test_votes_that_do_not_count_are_replaced_and_given_back_when_trust_recovers(settings):
    settings.CODEPREF = {**settings.CODEPREF, "QC_ONBOARDING_PAIRS": 0, "QC_LOW_AGREEMENT": 0.0}
    good = [factories.UserFactory() for _ in range(2)]
    bot = factories.UserFactory()
    pair = factories.PairFactory(votes_wanted=3)
    for user in (*good, bot):
        _vote(pair, user, "a")
    Pair.objects.filter(pk=pair.pk).update(state="complete", votes_count=3, claims_count=3)
    for _ in range(6):  # the bot misses every gold pair: its trust falls below the threshold
        _vote(gold_pair(winner="a"), bot, "b")
    assert quality_recompute()["pairs_reopened"] == 1
    pair.refresh_from_db()
    assert Volunteer.objects.get(user=bot).trust < settings.CODEPREF["QC_TRUST_THRESHOLD"]
    assert (pair.state, pair.votes_wanted, pair.votes_uncounted) == ("open", 4, 1)  # 3 counted wanted, 1 not
    assert quality_recompute()["pairs_reopened"] == 0  # a second recompute adds nothing more
    pair.refresh_from_db()
    assert (pair.state, pair.votes_wanted, pair.votes_uncounted) == ("open", 4, 1)
    # the bot's trust recovers: its vote counts again and the extra vote is no longer wanted
    Vote.objects.filter(volunteer=bot, pair__state="gold").update(choice="a")
    quality_recompute()
    pair.refresh_from_db()
    assert (pair.state, pair.votes_wanted, pair.votes_uncounted) == ("complete", 3, 0)


def test_the_api_shows_a_gold_pair_like_any_other_and_gives_feedback_only_while_onboarding(volunteer, settings):
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 0.0, "QC_ONBOARDING_PAIRS": 2}
    gold = [gold_pair() for _ in range(3)]
    factories.PairFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(accepted(volunteer))[1]}")
    shown = client.get(NEXT).json()
    plain = {"pair", "prompt", "left", "right"}
    assert set(shown) == plain and set(shown["left"]) == {"text"}
    answers = []
    for n in range(3):
        left_is_a = Assignment.objects.get(volunteer=volunteer, pair_id=shown["pair"]).left_is_a
        wrong = "right" if left_is_a else "left"  # the gold answer is A: vote against it
        body = client.post(
            VOTES, {"pair": shown["pair"], "choice": wrong if n == 0 else "tie", "idempotency_key": f"k{n}"},
            format="json",
        ).json()  # fmt: skip
        answers.append(body["feedback"])
        shown = body["next"]
        assert shown is None or set(shown) == plain
        if n == 0:
            assert answers[0] == {
                "gold": True,
                "agreed": False,
                "answer": "left" if wrong == "right" else "right",
                "explanation": gold[0].gold_explanation,
                "onboarding_left": 1,
            }
    assert answers[1]["gold"] and answers[1]["agreed"] is False and answers[1]["onboarding_left"] == 0
    assert answers[2] is None  # after onboarding nothing tells a gold pair from another


# --- maintainers author gold pairs --------------------------------------------------------------------------


def test_a_maintainer_authors_a_gold_pair_and_takes_it_back(maintainer):
    pair = factories.PairFactory()
    pair_gold_author(pair_id=pair.pk, choice="tie", explanation="Both are correct and idiomatic.", by=maintainer)
    pair.refresh_from_db()
    assert (pair.state, pair.gold_choice, pair.gold_source) == ("gold", "tie", "maintainer")
    assert LogEntry.objects.filter(object_id=str(pair.pk), change_message__contains="known answer").exists()
    pair_gold_author(pair_id=pair.pk, choice="", by=maintainer)
    pair.refresh_from_db()
    assert (pair.state, pair.gold_choice, pair.gold_source) == ("open", "", "")
    with pytest.raises(ServiceError, match="gold answer must be one of"):
        pair_gold_author(pair_id=pair.pk, choice="left")


def test_the_admin_sets_a_known_answer_and_refuses_a_bad_one(client, maintainer):
    maintainer.is_staff = maintainer.is_superuser = True
    maintainer.save()
    client.force_login(maintainer)
    pair = factories.PairFactory()
    url = f"/admin/feedback/pair/{pair.pk}/change/"
    form = {"votes_wanted": 3, "state": "open", "gold_choice": "b", "gold_explanation": "B handles empty input."}
    assert client.post(url, form).status_code == 302
    pair.refresh_from_db()
    assert (pair.state, pair.gold_choice, pair.gold_source, pair.gold_explanation) == (
        "gold", "b", "maintainer", "B handles empty input.")  # fmt: skip
    refused = client.post(url, {**form, "gold_choice": "left"})
    assert refused.status_code == 200 and b"Select a valid choice" in refused.content


def test_gold_pairs_come_in_by_import_and_a_bad_gold_entry_is_a_bad_line():
    line = {
        "id": "g1", "prompt": "def inc(x):\n", "language": "python",
        "completions": [{"model": "m1", "text": "    return x + 1\n"}, {"model": "m2", "text": "    return x - 1\n"}],
        "gold": [{"pair": [1, 0], "answer": "second", "explanation": "inc adds one."}],
    }  # fmt: skip
    bad = {**line, "id": "g2", "prompt": "def dec(x):\n", "gold": [{"pair": [0, 5], "answer": "first"}]}
    report = prompts_import(lines=[json.dumps(line), json.dumps(bad)])
    assert report.gold_pairs == 1 and "1 gold pairs" in report.summary()
    assert report.bad_lines == [(2, "gold[0].pair must be two different indexes into completions (0 to 1)")]
    pair = Pair.objects.get(prompt__external_id="g1")
    better = Completion.objects.get(text="    return x + 1\n")
    assert pair.state == "gold" and pair.gold_source == "maintainer" and pair.gold_explanation == "inc adds one."
    assert pair.gold_choice == ("a" if pair.completion_a_id == better.pk else "b")


# --- snapshots: known answers label gold pairs; weights from quality control -----------------------------------


def _vote(pair, user, choice, *, left_is_a=True, ms=60_000, weight=None, at=None):
    return Vote.objects.create(
        pair=pair, volunteer=user, choice=choice, left_is_a=left_is_a, idempotency_key=uuid.uuid4().hex,
        time_taken_ms=ms, qc_weight=weight, created_at=at or timezone.now(),
    )  # fmt: skip


def test_exports_label_gold_pairs_by_their_known_answer_and_mark_the_label_source(volunteer):
    by_tests = gold_pair(winner="b")
    authored = factories.PairFactory()
    pair_gold_author(pair_id=authored.pk, choice="both_bad", explanation="Neither handles None.")
    human = factories.PairFactory()
    for pair in (by_tests, human):
        _vote(pair, volunteer, "a")
    snapshot = snapshot_build(filters={"drop_ties": False}).snapshot
    rows = {row["pair_id"]: row for row in rows_of(snapshot, "preference")}
    assert (rows[by_tests.pk]["label_source"], rows[by_tests.pk]["label"], rows[by_tests.pk]["votes"]) == (
        "tests", "preferred", 1)  # fmt: skip
    assert rows[by_tests.pk]["chosen"] == by_tests.completion_b.text  # the tests' answer, not the vote's
    assert (rows[authored.pk]["label_source"], rows[authored.pk]["label"], rows[authored.pk]["votes"]) == (
        "maintainer", "both_bad", 0)  # fmt: skip
    assert (rows[human.pk]["label_source"], rows[human.pk]["decided_by_tests"]) == ("votes", False)


def test_vote_weights_come_from_quality_control_and_low_trust_or_suspended_voters_leave(maintainer, settings):
    settings.CODEPREF = {**settings.CODEPREF, "QC_TRUST_THRESHOLD": 0.2}
    good, meh, low, gone = (factories.UserFactory() for _ in range(4))
    Volunteer.objects.filter(user=good).update(trust=0.9)
    Volunteer.objects.filter(user=meh).update(trust=0.5)
    Volunteer.objects.filter(user=low).update(trust=0.1)
    pair = factories.PairFactory()
    _vote(pair, good, "a", weight=0.09)  # a flagged vote: 0.9 x 0.1
    _vote(pair, meh, "b")  # not assessed yet: the volunteer's trust
    _vote(pair, low, "a", weight=0.1)  # below the threshold: left out
    _vote(pair, gone, "a", weight=1.0)
    maintainer.is_staff = True
    volunteers_suspend(volunteer_ids=[gone.volunteer.pk], by=maintainer)
    snapshot = snapshot_build(filters={"drop_ties": False}).snapshot
    (row,) = rows_of(snapshot, "preference")
    assert (row["votes"], row["label"], row["chosen"]) == (2, "preferred", pair.completion_b.text)
    assert row["agreement"] == pytest.approx(0.5 / 0.59)
    weights = sorted(v["weight"] for v in rows_of(snapshot, "votes"))
    assert weights == pytest.approx([0.09, 0.5])
    plain = snapshot_build(filters={"drop_ties": False, "quality_control": False}).snapshot
    (row,) = rows_of(plain, "preference")
    # without quality control: three votes of weight 1 (the suspended one still out), A wins 2 to 1
    assert (row["votes"], row["chosen"], row["agreement"]) == (3, pair.completion_a.text, pytest.approx(2 / 3))


# --- trust and flags (pure), then recomputed from the database ---------------------------------------------------

CONF = TrustSettings(
    prior_alpha=4, prior_beta=2, agreement_weight=0.5, threshold=0.2, flagged_weight=0.1, onboarding=0
)


def test_trust_is_a_smoothed_gold_accuracy_as_a_weight():
    facts = [VoteFacts(n, 1, 100 + n, "a", "python", "a", False, False) for n in range(3)]
    facts += [VoteFacts(10 + n, 2, 100 + n, "b", "python", "a", False, False) for n in range(3)]
    result = trust_compute(facts, CONF)
    # 3 of 3 right: (4 + 3) / (6 + 3) = 7/9, weight 2p - 1 = 5/9; 0 of 3: 4/9, weight 0
    assert result.volunteers[1].trust == pytest.approx(5 / 9)
    assert result.volunteers[2].trust == 0.0
    assert (result.volunteers[1].gold_votes, result.volunteers[1].gold_correct) == (3, 3)


def test_trust_counts_agreement_with_labels_made_without_ones_own_vote():
    # pair 1..4: volunteers 1 and 2 say "a", volunteer 3 says "b"; no gold
    facts = []
    for pair in range(1, 5):
        for volunteer, choice in ((1, "a"), (2, "a"), (3, "b")):
            facts.append(VoteFacts(pair * 10 + volunteer, volunteer, pair, choice, "python", "", False, False))
    result = trust_compute(facts, CONF)
    assert result.volunteers[1].trust > result.volunteers[3].trust
    assert result.volunteers[3].trust == 0.0  # disagreed with every label
    assert result.labels[1][0] == "a"
    assert result.vote_weights[13] == 0.0


def test_a_flagged_vote_weighs_a_tenth_and_an_onboarding_vote_nothing():
    conf = TrustSettings(4, 2, 0.5, 0.2, 0.1, onboarding=1)
    facts = [VoteFacts(1, 1, 1, "a", "python", "a", False, True), VoteFacts(2, 1, 2, "a", "python", "", True, False)]
    result = trust_compute(facts, conf)
    trust = result.volunteers[1].by_language["python"]
    assert result.vote_weights == {1: 0.0, 2: pytest.approx(round(trust * 0.1, 6))}


LIMITS = AnomalyLimits(read_ms_base=1000, read_ms_per_char=2.0, same_side_run=4, one_choice_run=3,
                       max_votes_per_minute=5, daily_cap=8)  # fmt: skip
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_anomaly_flags_each_rule_on_its_own():
    fast = votes_flag([VoteSeen("left", 1999, T0, 500), VoteSeen("right", 2001, T0, 500)], LIMITS)
    assert fast == [{"fast"}, set()]  # the floor is 1000 + 2 x 500 = 2000 ms
    sides = ["left", "left", "left", "left", "right", "tie", "tie", "tie", "both_bad"]
    seen = [VoteSeen(s, 60_000, T0 + timedelta(minutes=5 * n), 10) for n, s in enumerate(sides)]
    flags = votes_flag(seen, LIMITS)
    assert [sorted(f) for f in flags[:5]] == [["same_side"]] * 4 + [[]]
    assert [sorted(f) for f in flags[5:]] == [["one_choice"]] * 3 + [["cap"]]  # the 9th vote of the day
    burst = [VoteSeen("left" if n % 2 else "right", 60_000, T0 + timedelta(seconds=5 * n), 10) for n in range(7)]
    assert [sorted(f) for f in votes_flag(burst, LIMITS)] == [[]] * 5 + [["rate"]] * 2


def test_answers_the_tests_back_neither_lengthen_nor_break_a_run_of_one_choice():
    """Both bad where both completions failed (tie where both passed) is the honest answer: a batch of weak
    samples gives long runs of it, which are not an anomaly. Unbacked answers still run, across the backed."""
    honest = [VoteSeen("both_bad", 60_000, T0 + timedelta(minutes=5 * n), 10, "", "both_bad") for n in range(6)]
    assert votes_flag(honest, LIMITS) == [set()] * 6
    # both bad where one side passed (or the prompt has no tests): three in a row are a run, whatever is between
    mixed = [("both_bad", ""), ("both_bad", "both_bad"), ("both_bad", ""), ("tie", "tie"), ("both_bad", "")]
    seen = [VoteSeen(c, 60_000, T0 + timedelta(minutes=5 * n), 10, "", say) for n, (c, say) in enumerate(mixed)]
    assert [sorted(f) for f in votes_flag(seen, LIMITS)] == [["one_choice"], [], ["one_choice"], [], ["one_choice"]]
    # a tie where both failed is not what the tests say: it runs
    ties = [VoteSeen("tie", 60_000, T0 + timedelta(minutes=5 * n), 10, "", "both_bad") for n in range(3)]
    assert votes_flag(ties, LIMITS) == [{"one_choice"}] * 3


def test_the_recompute_reads_what_the_tests_say_of_each_pair():
    from feedback.datasets.quality import _rows

    voter = factories.UserFactory()
    cases = {(True, True): "tie", (False, False): "both_bad", (True, False): ""}
    for (a_passed, b_passed), _ in cases.items():
        pair = factories.PairWithOutcomesFactory(a_passed=a_passed, b_passed=b_passed)
        _vote(pair, voter, "both_bad", left_is_a=True, at=T0)
    assert [row.tests_say for row in _rows()] == list(cases.values())


def test_recompute_stores_weights_flags_and_evidence_and_lists_flagged_volunteers(settings):
    settings.CODEPREF = {**settings.CODEPREF, "QC_ONBOARDING_PAIRS": 0, "QC_SAME_SIDE_RUN": 6}
    honest, bot = factories.UserFactory(), factories.UserFactory()
    golds = [gold_pair() for _ in range(8)]
    for n, pair in enumerate(golds):
        left_is_a = n % 2 == 0
        _vote(pair, honest, "a", left_is_a=left_is_a, at=T0 + timedelta(minutes=n))
        _vote(pair, bot, "a" if left_is_a else "b", left_is_a=left_is_a, ms=300, at=T0 + timedelta(minutes=n))
    stats = quality_recompute()
    assert stats["flagged_volunteers"] == 1 and stats["votes"] == 16
    honest_v, bot_v = Volunteer.objects.get(user=honest), Volunteer.objects.get(user=bot)
    assert (honest_v.gold_votes, honest_v.gold_correct) == (8, 8)
    alpha, beta = settings.CODEPREF["QC_TRUST_PRIOR_ALPHA"], settings.CODEPREF["QC_TRUST_PRIOR_BETA"]
    assert honest_v.trust == pytest.approx(2 * (alpha + 8) / (alpha + beta + 8) - 1, abs=1e-6)  # 8 of 8 gold right
    assert (bot_v.gold_correct, bot_v.qc_flagged) == (4, True)
    assert bot_v.qc_evidence["flags"] == {"fast": 8, "same_side": 8}
    assert bot_v.qc_evidence["longest_run"] == {"choice": "left", "length": 8}
    assert set(Vote.objects.filter(volunteer=bot).values_list("qc_flags", flat=True)) == {"fast,same_side"}
    assert Vote.objects.filter(volunteer=honest).values_list("qc_weight", flat=True)[0] == pytest.approx(
        honest_v.trust_by_language["python"], abs=1e-6
    )


def test_the_beat_schedule_and_the_command_run_the_recompute(capsys):
    task = PeriodicTask.objects.get(name="every-10min-quality-control")
    assert (task.interval.every, task.interval.period) == (10, "minutes")
    assert task.task == "feedback.tasks.recompute_quality" and task.enabled
    from feedback.datasets.tasks import recompute_quality

    assert recompute_quality.name == "feedback.tasks.recompute_quality"
    call_command("recompute_quality", "--agreement")
    out = json.loads(capsys.readouterr().out)
    assert out["votes"] == 0 and out["agreement"]["overall"] == {"alpha": None, "pairs": 0}


# --- adaptive k and agreement --------------------------------------------------------------------------------


def test_pairs_with_low_agreement_go_back_for_more_votes_up_to_the_cap(settings):
    settings.CODEPREF = {**settings.CODEPREF, "QC_ONBOARDING_PAIRS": 0, "QC_LOW_AGREEMENT": 0.6,
                         "QC_EXTRA_VOTES": 2, "QC_MAX_VOTES_PER_PAIR": 4}  # fmt: skip
    users = [factories.UserFactory() for _ in range(3)]
    split, agreed = factories.PairFactory(votes_wanted=3), factories.PairFactory(votes_wanted=3)
    for user, choice in zip(users, ("a", "b", "tie"), strict=True):
        _vote(split, user, choice)
        _vote(agreed, user, "a")
    Pair.objects.update(state="complete", votes_count=3, claims_count=3)
    assert quality_recompute()["pairs_reopened"] == 1
    split.refresh_from_db()
    agreed.refresh_from_db()
    assert (split.state, split.votes_wanted) == ("open", 4)  # 3 + 2, capped at 4
    assert (agreed.state, agreed.votes_wanted) == ("complete", 3)
    fourth = factories.UserFactory()
    assert claims.assignment_claim_next(user=fourth).pair_id == split.pk


def test_agreement_is_krippendorffs_alpha_overall_per_language_and_per_model_pair(maintainer, client):
    users = [factories.UserFactory() for _ in range(3)]
    units = {"python": [("a", "a", "a"), ("a", "b", "a"), ("b", "b", "b")], "rust": [("a", "b", "tie")]}
    for language, rows in units.items():
        for choices in rows:
            pair = factories.PairFactory(prompt=factories.PromptFactory(language=language), language=language)
            for user, choice in zip(users, choices, strict=True):
                _vote(pair, user, choice)
            Pair.objects.filter(pk=pair.pk).update(votes_count=3)
    report = agreement_report()
    code = {"a": 0, "b": 1, "tie": 2}

    def alpha(rows):
        data = np.array([[code[c] for c in row] for row in rows], dtype=float).T
        return krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")

    assert report["overall"]["alpha"] == pytest.approx(alpha(units["python"] + units["rust"]))
    assert report["by_language"]["python"]["alpha"] == pytest.approx(alpha(units["python"]))
    assert report["by_language"]["rust"]["pairs"] == 1
    assert report["by_model_pair"] == {"imported vs imported": report["overall"]}
    maintainer.is_staff = maintainer.is_superuser = True
    maintainer.save()
    client.force_login(maintainer)
    page = client.get("/admin/feedback/volunteer/agreement/")
    assert page.status_code == 200 and f"{report['overall']['alpha']:.3f}".encode() in page.content


# --- moderation ------------------------------------------------------------------------------------------------


def test_a_hidden_prompt_leaves_assignment_and_exports_and_comes_back_logged(maintainer, volunteer):
    maintainer.is_staff = True
    maintainer.save()
    hidden, kept = factories.PairFactory(), factories.PairFactory()
    for pair in (hidden, kept):
        _vote(pair, factories.UserFactory(), "a")
    assert content_hide(obj=hidden.prompt, by=maintainer, reason="copyrighted") == 1
    assert claims.assignment_claim_next(user=volunteer).pair_id == kept.pk
    snapshot = snapshot_build().snapshot
    assert {row["pair_id"] for row in rows_of(snapshot, "preference")} == {kept.pk}
    entry = LogEntry.objects.get(object_id=str(hidden.prompt_id))
    assert (entry.user_id, entry.change_message) == (maintainer.pk, "hid the prompt (1 pairs retired): copyrighted")
    assert content_hide(obj=hidden.prompt, by=maintainer, hide=False) == 1
    assert Pair.objects.get(pk=hidden.pk).state == "open"
    with pytest.raises(ServiceError, match="only staff"):
        content_hide(obj=hidden.completion_a, by=volunteer)


def test_suspending_is_logged_and_only_staff_may(maintainer, volunteer):
    maintainer.is_staff = True
    maintainer.save()
    target = Volunteer.objects.get(user=volunteer)
    assert volunteers_suspend(volunteer_ids=[target.pk], by=maintainer, reason="bot") == 1
    assert Volunteer.objects.get(pk=target.pk).suspended_at is not None
    assert LogEntry.objects.filter(object_id=str(target.pk), change_message="suspended the volunteer: bot").exists()
    with pytest.raises(ServiceError):
        volunteers_suspend(volunteer_ids=[target.pk], by=volunteer)


def test_the_admin_lists_flagged_volunteers_with_their_evidence(client, maintainer, volunteer):
    Volunteer.objects.filter(user=volunteer).update(
        qc_flagged=True, trust=0.05, qc_evidence={"votes": 9, "flags": {"fast": 9}, "median_ms": 310}
    )
    maintainer.is_staff = maintainer.is_superuser = True
    maintainer.save()
    client.force_login(maintainer)
    listing = client.get("/admin/feedback/volunteer/?qc_flagged__exact=1")
    assert listing.status_code == 200 and b"vera" in listing.content and b"fast 9" in listing.content
    detail = client.get(f"/admin/feedback/volunteer/{volunteer.volunteer.pk}/change/")
    assert b"&quot;median_ms&quot;: 310" in detail.content


def test_the_volunteer_sees_the_gold_pairs_they_missed_and_why(client, volunteer):
    accepted(volunteer)
    missed, right = gold_pair(), gold_pair()
    _vote(missed, volunteer, "b", left_is_a=False)
    _vote(right, volunteer, "a")
    client.force_login(volunteer)
    page = client.get("/rank/quality/").content.decode()
    assert f'data-missed-pair="{missed.pk}"' in page and f'data-missed-pair="{right.pk}"' not in page
    assert "you chose <em>left</em>, the known answer was <em>right</em>" in page
    assert "passes the prompt&#x27;s unit tests" in page


@pytest.mark.parametrize(("longer_picks", "flagged"), [(10, True), (9, True), (8, False), (1, True), (2, False)])
def test_picking_by_length_alone_is_flagged(longer_picks, flagged):
    seen = []
    for n in range(10):
        longer = "left" if n % 2 else "right"
        other = "right" if longer == "left" else "left"
        seen.append(VoteSeen(longer if n < longer_picks else other, 60_000, T0 + timedelta(minutes=5 * n), 10, longer))
    seen.append(VoteSeen("left", 60_000, T0 + timedelta(hours=2), 10, ""))  # equally long: not counted
    flags = votes_flag(seen, LIMITS)
    assert [("length_bias" in f) for f in flags] == [flagged] * 10 + [False]
