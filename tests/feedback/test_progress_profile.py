"""Progress on the ranking page ("N ranked today / M in total", a streak) and the profile page /me/: votes,
agreement with the final labels, votes in a published dataset, model versions trained on them."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from feedback.models import DatasetSnapshot, ModelVersion, Pair, TrainingRun, Volunteer, Vote
from feedback.ranking.selectors import progress_of
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def ranker(volunteer, client):
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    client.force_login(volunteer)
    return volunteer


def vote(user, pair, choice="a", *, days_ago=0, rationale=""):
    return Vote.objects.create(
        pair=pair, volunteer=user, choice=choice, left_is_a=True, idempotency_key=uuid.uuid4().hex,
        rationale=rationale, created_at=timezone.now() - timedelta(days=days_ago),
    )  # fmt: skip


def test_progress_counts_today_the_total_and_the_streak(volunteer):
    for days_ago in (0, 0, 1, 2, 4):
        vote(volunteer, factories.PairFactory(), days_ago=days_ago)
    assert progress_of(volunteer) == {"today": 2, "total": 5, "streak": 3}


def test_a_streak_still_counts_before_the_days_first_vote_and_breaks_after_a_gap(volunteer):
    for days_ago in (1, 2):
        vote(volunteer, factories.PairFactory(), days_ago=days_ago)
    assert progress_of(volunteer) == {"today": 0, "total": 2, "streak": 2}
    assert progress_of(volunteer, today=timezone.localdate() + timedelta(days=1))["streak"] == 0
    assert progress_of(factories.UserFactory()) == {"today": 0, "total": 0, "streak": 0}


def test_the_ranking_page_shows_the_progress_line(client, ranker):
    vote(ranker, factories.PairFactory(), days_ago=1)
    vote(ranker, factories.PairFactory())
    factories.PairFactory()
    html = client.get(reverse("rank")).content.decode()
    text = re.sub(r"<[^>]+>", "", re.search(r'<p class="progress".*?</p>', html, re.S).group(0))
    assert " ".join(text.split()) == "1 ranked today / 2 in total · 2-day streak · your impact"


def test_the_profile_shows_agreement_datasets_and_models(client, ranker, other_volunteer):
    third = factories.UserFactory(username="tess")
    agreed, differed, alone = factories.PairFactory.create_batch(3)
    for pair, mine, theirs in ((agreed, "a", "a"), (differed, "b", "a")):
        vote(ranker, pair, mine, rationale="shorter and right" if pair == agreed else "")
        vote(other_volunteer, pair, theirs)
        vote(third, pair, theirs)
    vote(ranker, alone, "tie")
    last_in = Vote.objects.filter(volunteer=ranker).order_by("id")[1].pk  # the first two of mine
    snapshot = DatasetSnapshot.objects.create(version=3, state="published", last_vote_id=last_in)
    DatasetSnapshot.objects.create(version=2, state="failed", last_vote_id=10**9)
    cycle = TrainingRun.objects.create(stage="cycle", state="succeeded", snapshot=snapshot)
    ModelVersion.objects.create(name="cycle-trained-on-you", backend="transformers", training_run=cycle)
    ModelVersion.objects.create(name="unrelated-model", backend="imported")

    html = client.get(reverse("me")).content.decode()

    def figure(name):
        found = re.search(rf'data-figure="{name}">(.*?)</dd>', html, re.S).group(1)
        return " ".join(re.sub(r"<[^>]+>", "", found).split())

    assert figure("total") == "3"
    assert figure("agreement") == "50% (1 of 2)"
    assert figure("in-dataset") == "2 in dataset v3"
    assert figure("models") == "cycle-trained-on-you"
    assert html.count("data-vote=") == 3
    assert "shorter and right" in html and "agrees" in html and "differs" in html and "pending" in html


def test_a_retired_pair_is_not_counted_in_the_dataset(client, ranker):
    pair = factories.PairFactory()
    mine = vote(ranker, pair)
    DatasetSnapshot.objects.create(version=1, state="published", last_vote_id=mine.pk)
    Pair.objects.filter(pk=pair.pk).update(state="retired")
    html = client.get(reverse("me")).content.decode()
    assert re.search(r'data-figure="in-dataset">0 ', html)


def test_the_profile_of_a_new_volunteer_says_nothing_yet(client, ranker):
    html = client.get(reverse("me")).content.decode()
    assert "You have not ranked a pair yet." in html
    assert "no dataset published yet" in html and "none yet" in html


def test_the_profile_needs_a_login(client):
    response = client.get(reverse("me"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
