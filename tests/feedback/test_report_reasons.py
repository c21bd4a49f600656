"""Reports: six reasons (broken, harmful, personal data, wrong language, duplicate, other with a note), none
preselected on the page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.errors import ServiceError
from feedback.models import Flag, Volunteer
from feedback.ranking import claims, services
from tests import factories

pytestmark = pytest.mark.django_db

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


@pytest.fixture
def ranker(volunteer, client):
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    client.force_login(volunteer)
    return volunteer


def test_the_page_offers_six_reasons_and_preselects_none(client, ranker):
    factories.PairFactory()
    html = client.get(reverse("rank")).content.decode()
    radios = re.findall(r'<input type="radio" name="reason" value="(\w+)"([^>]*)>', html)
    assert [value for value, _ in radios] == [
        "broken", "harmful", "personal_data", "wrong_language", "duplicate", "other"
    ]  # fmt: skip
    assert all("checked" not in rest for _, rest in radios)


@pytest.mark.parametrize("reason", ["wrong_language", "duplicate"])
def test_the_new_reasons_are_stored_from_the_page(client, ranker, reason):
    pair = factories.PairFactory()
    client.get(reverse("rank"))
    response = client.post(reverse("rank-report"), {"pair": pair.pk, "reason": reason}, **FETCH)
    assert response.status_code == 200
    assert Flag.objects.get().reason == reason


def test_other_needs_a_note(client, ranker):
    pair = factories.PairFactory()
    client.get(reverse("rank"))
    response = client.post(reverse("rank-report"), {"pair": pair.pk, "reason": "other", "note": "  "}, **FETCH)
    assert response.status_code == 400
    assert "needs a note" in response.content.decode()
    assert not Flag.objects.exists()
    response = client.post(
        reverse("rank-report"), {"pair": pair.pk, "reason": "other", "note": "prompt asks for Rust"}, **FETCH
    )
    assert response.status_code == 200
    assert (Flag.objects.get().reason, Flag.objects.get().note) == ("other", "prompt asks for Rust")


def test_a_report_without_a_reason_is_refused(client, ranker):
    pair = factories.PairFactory()
    client.get(reverse("rank"))
    response = client.post(reverse("rank-report"), {"pair": pair.pk}, **FETCH)
    assert response.status_code == 400 and "reason" in response.content.decode()


def test_the_api_takes_the_new_reasons_and_refuses_other_without_a_note(ranker):
    pair = factories.PairFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(ranker)[1]}")
    api.get("/api/v1/pairs/next/")
    bare = api.post("/api/v1/reports/", {"pair": pair.pk, "reason": "other"}, format="json")
    assert bare.status_code == 400 and "needs a note" in bare.json()["error"]
    ok = api.post("/api/v1/reports/", {"pair": pair.pk, "reason": "duplicate"}, format="json")
    assert ok.status_code == 201 and ok.json()["reason"] == "duplicate"


def test_the_service_refuses_other_without_a_note(volunteer):
    pair = factories.PairFactory()
    claims.assignment_claim_next(user=volunteer)
    with pytest.raises(ServiceError, match="needs a note"):
        services.pair_report(user=volunteer, pair_id=pair.pk, reason="other")
