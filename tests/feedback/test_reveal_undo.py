"""After a vote: the reveal (which model wrote each side, whether it passes) and the undo window, on the page
and in the API; blind before the vote."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.errors import Conflict, ServiceError
from feedback.models import Assignment, DatasetSnapshot, Pair, Volunteer, Vote
from feedback.ranking import claims, reveal, statements, undo, votes
from tests import factories

pytestmark = pytest.mark.django_db

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


@pytest.fixture(params=["one-statement", "orm"])
def both_paths(request, monkeypatch):
    if request.param == "orm":
        monkeypatch.setattr(statements, "FAST_SQL", False)
    return request.param


@pytest.fixture
def ranker(volunteer, client):
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    client.force_login(volunteer)
    return volunteer


@pytest.fixture
def api(ranker) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(ranker)[1]}")
    return api


def named_pair(*, a_passed=True, b_passed=False, **extra) -> Pair:
    return factories.PairWithOutcomesFactory(
        a_passed=a_passed,
        b_passed=b_passed,
        completion_a__model_version=factories.ModelVersionFactory(name="model-alpha-7"),
        completion_b__model_version=factories.ModelVersionFactory(name="model-beta-9"),
        **extra,
    )


def shown_pair(html: str) -> int:
    match = re.search(r'data-pair="(\d+)"', html)
    assert match, "no pair on the page"
    return int(match.group(1))


def form_key(html: str) -> str:
    return re.search(r'name="key" value="([0-9a-f]{32})"', html).group(1)


def cast(user, pair_id, choice="left", key="k1"):
    return votes.vote_record(user=user, pair_id=pair_id, screen_choice=choice, key=key).vote


# --- blind before, revealed after ---------------------------------------------------------------------


def test_nothing_on_the_page_or_in_the_api_names_the_models_or_verdicts_before_the_vote(client, ranker, api):
    named_pair()
    html = client.get(reverse("rank")).content.decode()
    body = api.get("/api/v1/pairs/next/").content.decode()
    for text in (html, body):
        assert "model-alpha-7" not in text and "model-beta-9" not in text
        assert "passed" not in text and "failed" not in text
        assert "data-reveal" not in text
    assert set(api.get("/api/v1/pairs/next/").json()) == {"pair", "prompt", "left", "right"}


@pytest.mark.parametrize("left_is_a", [True, False])
def test_the_fragment_after_a_vote_reveals_each_side_as_it_was_shown(client, ranker, left_is_a, both_paths):
    pair = named_pair()
    page = client.get(reverse("rank")).content.decode()
    assert shown_pair(page) == pair.pk
    factories.PairFactory()  # the next pair: blind again
    Assignment.objects.filter(volunteer=ranker, pair=pair).update(left_is_a=left_is_a)
    html = client.post(
        reverse("rank-vote"), {"pair": pair.pk, "choice": "right", "key": form_key(page)}, **FETCH
    ).content.decode()
    left, right = ("model-alpha-7", "model-beta-9") if left_is_a else ("model-beta-9", "model-alpha-7")
    assert re.search(r'data-reveal-model="left">([^<]+)<', html).group(1) == left
    assert re.search(r'data-reveal-model="right">([^<]+)<', html).group(1) == right
    outcomes = dict(re.findall(r'data-reveal-outcome="(\w+)">tests: (\w+)<', html))
    assert outcomes == ({"left": "passed", "right": "failed"} if left_is_a else {"left": "failed", "right": "passed"})
    assert "Your last vote: B (right) is better" in html
    assert shown_pair(html) != pair.pk


def test_a_plain_form_vote_reveals_on_the_page_after_the_redirect_once(client, ranker):
    pair = named_pair()
    page = client.get(reverse("rank")).content.decode()
    response = client.post(reverse("rank-vote"), {"pair": pair.pk, "choice": "tie", "key": form_key(page)})
    assert response.status_code == 302
    after = client.get(reverse("rank")).content.decode()
    assert "model-alpha-7" in after and "model-beta-9" in after
    assert "model-alpha-7" not in client.get(reverse("rank")).content.decode()


def test_without_tests_the_reveal_names_the_models_only(client, ranker, api):
    pair = named_pair(prompt=factories.PromptFactory(tests="", test_style="none"))
    api.get("/api/v1/pairs/next/")
    response = api.post("/api/v1/votes/", {"pair": pair.pk, "choice": "left", "idempotency_key": "x1"}, format="json")
    assert response.status_code == 201
    reveal = response.json()["reveal"]
    assert reveal["has_tests"] is False
    assert {reveal["left"]["model"], reveal["right"]["model"]} == {"model-alpha-7", "model-beta-9"}
    assert reveal["left"]["passes"] is None and reveal["left"]["outcome"] is None


def test_the_api_vote_answer_carries_the_reveal_and_its_undo_deadline(api, ranker, both_paths):
    pair = named_pair()
    api.get("/api/v1/pairs/next/")
    assignment = Assignment.objects.get(volunteer=ranker, pair=pair)
    body = api.post(
        "/api/v1/votes/", {"pair": pair.pk, "choice": "left", "idempotency_key": "k-api"}, format="json"
    ).json()
    reveal = body["reveal"]
    vote = Vote.objects.get(volunteer=ranker)
    left = "model-alpha-7" if assignment.left_is_a else "model-beta-9"
    assert (reveal["vote"], reveal["pair"], reveal["choice"]) == (vote.pk, pair.pk, "left")
    assert reveal["left"]["model"] == left
    assert reveal["left"]["passes"] is assignment.left_is_a
    assert reveal["right"]["passes"] is (not assignment.left_is_a)
    deadline = timezone.datetime.fromisoformat(reveal["undo_until"])
    assert abs((deadline - vote.created_at).total_seconds() - 10) < 0.01
    assert reveal["undo_blocked"] == ""


@pytest.mark.parametrize(
    ("tests", "style", "outcomes", "snapshot"),
    [
        ("assert f() == 1", "asserts", ("passed", "timeout"), None),
        (" \n\t", "asserts", ("failed", "error"), ("building", 3)),  # whitespace only: no tests
        ("assert f() == 1", "none", ("passed", "failed"), ("published", 5)),
        ("def check(candidate): pass", "humaneval", ("not_run", "passed"), ("failed", 2)),
    ],
)
def test_the_vote_statements_reveal_is_the_one_read_back_later(ranker, tests, style, outcomes, snapshot):
    """The one-statement path reads the reveal with the vote; it must say what reveal.vote_reveal says."""
    pair = named_pair(prompt=factories.PromptFactory(tests=tests, test_style=style))
    pair.completion_a.__class__.objects.filter(pk=pair.completion_a_id).update(outcome=outcomes[0])
    pair.completion_b.__class__.objects.filter(pk=pair.completion_b_id).update(outcome=outcomes[1])
    if snapshot is not None:  # a watermark ahead of every vote: a snapshot being built holds the new one
        DatasetSnapshot.objects.create(version=snapshot[1], state=snapshot[0], last_vote_id=10**12)
    claims.assignment_claim_next(user=ranker)
    result = votes.vote_record(user=ranker, pair_id=pair.pk, screen_choice="right", key="k-same")
    assert result.reveal is not None, "the one-statement path read no reveal"
    later = reveal.vote_reveal(vote_id=result.vote.pk, user=ranker)
    assert result.reveal == later
    blocked = snapshot is not None and snapshot[0] != "failed"
    assert (result.reveal["undo_until"] is None) is blocked
    assert result.reveal["has_tests"] is (style != "none" and bool(tests.strip()))


# --- undo -------------------------------------------------------------------------------------------


def test_undo_removes_the_vote_and_restores_the_counts_and_the_assignment(volunteer, other_volunteer, both_paths):
    pair = factories.PairFactory(votes_wanted=2)
    for user in (other_volunteer, volunteer):
        claims.assignment_claim_next(user=user)
    cast(other_volunteer, pair.pk, key="o1")
    vote = cast(volunteer, pair.pk, key="v1")
    pair.refresh_from_db()
    assert (pair.state, pair.votes_count, pair.claims_count) == ("complete", 2, 2)

    assert undo.vote_undo(user=volunteer, vote_id=vote.pk) == pair.pk

    pair.refresh_from_db()
    assert not Vote.objects.filter(pk=vote.pk).exists()
    assert (pair.state, pair.votes_count, pair.claims_count) == ("open", 1, 2)
    assert pair.last_vote_at == Vote.objects.get(volunteer=other_volunteer).created_at
    assignment = Assignment.objects.get(volunteer=volunteer, pair=pair)
    assert (assignment.voted_at, assignment.released_at) == (None, None)
    # The pair comes back to its volunteer, who can vote again, with a new key or the old one.
    assert claims.assignment_claim_next(user=volunteer).pair_id == pair.pk
    again = cast(volunteer, pair.pk, choice="right", key="v1")
    pair.refresh_from_db()
    assert (again.screen_choice, pair.votes_count, pair.state) == ("right", 2, "complete")


def test_undo_is_refused_after_the_window(volunteer, settings):
    pair = factories.PairFactory()
    claims.assignment_claim_next(user=volunteer)
    vote = cast(volunteer, pair.pk)
    Vote.objects.filter(pk=vote.pk).update(created_at=timezone.now() - timedelta(seconds=11))
    with pytest.raises(Conflict, match="for 10 seconds only"):
        undo.vote_undo(user=volunteer, vote_id=vote.pk)
    settings.CODEPREF = {**settings.CODEPREF, "UNDO_SECONDS": 60}
    undo.vote_undo(user=volunteer, vote_id=vote.pk)
    assert not Vote.objects.exists()


@pytest.mark.parametrize("state", ["published", "building"])
def test_a_vote_in_a_dataset_snapshot_cannot_be_undone(volunteer, state):
    pair = factories.PairFactory()
    claims.assignment_claim_next(user=volunteer)
    vote = cast(volunteer, pair.pk)
    DatasetSnapshot.objects.create(version=4, state=state, last_vote_id=vote.pk)
    with pytest.raises(Conflict, match="already in dataset v4"):
        undo.vote_undo(user=volunteer, vote_id=vote.pk)
    assert Vote.objects.filter(pk=vote.pk).exists()
    assert Pair.objects.get(pk=pair.pk).votes_count == 1


def test_a_failed_snapshot_does_not_block_undo(volunteer):
    pair = factories.PairFactory()
    claims.assignment_claim_next(user=volunteer)
    vote = cast(volunteer, pair.pk)
    DatasetSnapshot.objects.create(version=1, state="failed", last_vote_id=vote.pk)
    undo.vote_undo(user=volunteer, vote_id=vote.pk)


def test_nobody_undoes_another_volunteers_vote(volunteer, other_volunteer):
    pair = factories.PairFactory()
    claims.assignment_claim_next(user=volunteer)
    vote = cast(volunteer, pair.pk)
    with pytest.raises(ServiceError, match="not one of yours"):
        undo.vote_undo(user=other_volunteer, vote_id=vote.pk)
    for bad in (0, -1, True, "1", 2**63):
        with pytest.raises(ServiceError, match="positive integer"):
            undo.vote_undo(user=volunteer, vote_id=bad)
    assert Vote.objects.count() == 1


def test_the_page_undoes_and_shows_the_pair_again(client, ranker):
    pair = named_pair()
    page = client.get(reverse("rank")).content.decode()
    factories.PairFactory()
    after = client.post(
        reverse("rank-vote"), {"pair": pair.pk, "choice": "left", "key": form_key(page)}, **FETCH
    ).content.decode()
    vote = Vote.objects.get(volunteer=ranker)
    assert f'name="vote" value="{vote.pk}"' in after and 'data-key="u"' in after
    response = client.post(reverse("rank-undo"), {"vote": vote.pk}, **FETCH)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Vote undone" in html
    assert shown_pair(html) == pair.pk
    assert not Vote.objects.exists()
    again = client.post(reverse("rank-undo"), {"vote": vote.pk}, **FETCH)
    assert again.status_code == 400 and "not one of yours" in again.content.decode()
    assert client.post(reverse("rank-undo"), {"vote": "x"}, **FETCH).status_code == 400


def test_the_page_says_when_a_vote_is_already_in_a_published_snapshot(client, ranker):
    pair = named_pair()
    page = client.get(reverse("rank")).content.decode()
    client.post(reverse("rank-vote"), {"pair": pair.pk, "choice": "left", "key": form_key(page)})
    vote = Vote.objects.get()
    DatasetSnapshot.objects.create(version=2, state="published", last_vote_id=vote.pk)
    html = client.get(reverse("rank")).content.decode()
    assert "already published in dataset v2. It cannot be undone." in html
    assert 'data-key="u"' not in html
    response = client.post(reverse("rank-undo"), {"vote": vote.pk}, **FETCH)
    assert response.status_code == 409
    assert "already in dataset v2" in response.content.decode()


def test_the_api_undoes_once_and_answers_409_when_too_late(api, ranker):
    pair = named_pair()
    api.get("/api/v1/pairs/next/")
    vote_id = api.post(
        "/api/v1/votes/", {"pair": pair.pk, "choice": "left", "idempotency_key": "u1"}, format="json"
    ).json()["id"]
    response = api.post(f"/api/v1/votes/{vote_id}/undo/")
    assert response.status_code == 200
    assert response.json()["vote"] == vote_id and response.json()["next"]["pair"] == pair.pk
    assert api.post(f"/api/v1/votes/{vote_id}/undo/").status_code == 404  # gone: not one of yours any more
    second = api.post(
        "/api/v1/votes/", {"pair": pair.pk, "choice": "right", "idempotency_key": "u2"}, format="json"
    ).json()["id"]
    Vote.objects.filter(pk=second).update(created_at=timezone.now() - timedelta(seconds=30))
    late = api.post(f"/api/v1/votes/{second}/undo/")
    assert late.status_code == 409
    assert "10 seconds" in late.json()["error"]


def test_a_hostile_model_name_in_the_reveal_is_escaped(client, ranker):
    hostile = factories.ModelVersionFactory(name='<img src=x onerror="alert(1)">')
    pair = factories.PairWithOutcomesFactory(completion_a__model_version=hostile)
    page = client.get(reverse("rank")).content.decode()
    html = client.post(
        reverse("rank-vote"), {"pair": pair.pk, "choice": "left", "key": form_key(page)}, **FETCH
    ).content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_undo_works_as_a_plain_form_too(client, ranker):
    pair = named_pair()
    page = client.get(reverse("rank")).content.decode()
    client.post(reverse("rank-vote"), {"pair": pair.pk, "choice": "left", "key": form_key(page)})
    vote = Vote.objects.get()
    response = client.post(reverse("rank-undo"), {"vote": vote.pk})
    assert response.status_code == 302 and response["Location"] == reverse("rank")
    after = client.get(reverse("rank")).content.decode()
    assert "Vote undone" in after and shown_pair(after) == pair.pk
    assert not Vote.objects.exists()
