"""Inputs that once reached code that failed with a 500: each is now a 4xx with a message, and stores nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.models import DatasetSnapshot, Vote
from tests import factories

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000 + b"]" * 100_000


def api(user) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return client


def test_a_task_id_with_a_nul_byte_is_a_json_404(maintainer):
    response = api(maintainer).get("/api/v1/datasets/tasks/%00/")
    assert response.status_code == 404
    assert "no dataset build" in response.json()["error"]


@pytest.mark.parametrize("url", ["/api/v1/datasets/", "/api/v1/votes/", "/api/v1/reports/"])
def test_a_body_nested_100000_deep_is_a_400(maintainer, url):
    response = api(maintainer).generic("POST", url, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert DatasetSnapshot.objects.count() == 0 and Vote.objects.count() == 0


def test_a_multipart_body_does_not_queue_a_build(maintainer):
    response = api(maintainer).post("/api/v1/datasets/", {"filters": "garbage"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"]
    assert DatasetSnapshot.objects.count() == 0


@pytest.mark.parametrize("url", ["/api/v1/token/", "/api/v1/datasets/", "/api/v1/votes/"])
def test_a_body_over_the_limit_is_a_413_before_it_is_read(maintainer, settings, url):
    settings.API_MAX_BODY_BYTES = 1000
    body = b'{"username": "' + b"a" * 2000 + b'", "password": "x"}'
    response = api(maintainer).generic("POST", url, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == f"the body is {len(body)} bytes; the API takes at most 1000"
    small = api(maintainer).generic("POST", url, b'{"a": 1}', content_type="application/json")
    assert small.status_code in (400, 401), small.content  # read and refused on its merits


def test_a_content_length_that_is_not_a_number_is_a_400(maintainer):
    response = api(maintainer).generic(
        "POST", "/api/v1/votes/", b"{}", content_type="application/json", CONTENT_LENGTH="lots"
    )
    assert response.status_code == 400 and "Content-Length" in response.json()["error"]


@pytest.mark.parametrize(
    "query",
    ["created_at__year=99999999999", "created_at__month=13", "created_at__day=0", "created_at__year=-1"],
)
@pytest.mark.parametrize("model", ["vote", "assignment", "datasetsnapshot", "pair", "trainingrun"])
def test_an_admin_date_lookup_out_of_range_is_a_400(model, query):
    admin = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    response = client.get(f"/admin/feedback/{model}/?{query}")
    assert response.status_code == 400
    assert b"must be a whole number from" in response.content
    assert client.get(f"/admin/feedback/{model}/?created_at__year=2026").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_build_the_broker_refuses_is_a_503_not_a_202_building(maintainer, monkeypatch):
    """As in production (autocommit, no request-wide transaction): the build is sent as the row is created."""
    from tests.fake_tasks import RecordingTask

    RecordingTask(fail=True).install(monkeypatch)
    response = api(maintainer).post("/api/v1/datasets/", {}, format="json")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.state == DatasetSnapshot.State.FAILED
    assert response.json()["error"] == f"snapshot v{snapshot.version} {snapshot.error}"
    assert "could not be queued" in snapshot.error


@pytest.mark.parametrize("url,json_body", [("/api/v1/pairs/next/", True), ("/rank/", False)])
def test_the_database_going_away_is_a_503_with_retry_after_not_a_500(maintainer, monkeypatch, url, json_body):
    from django.db import OperationalError

    from feedback.accounts.services import volunteer_terms_accept
    from feedback.ranking import claims

    def unreachable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(claims, "_next_pair_orm", unreachable)
    monkeypatch.setattr(claims, "one_statement_paths", lambda: False)
    volunteer_terms_accept(user=maintainer)
    client = api(maintainer)
    client.raise_request_exception = False
    client.force_login(maintainer)
    response = client.get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    if json_body:
        assert response.json() == {"error": "the database is unavailable; retry shortly"}
    else:
        assert response.content.decode() == "the database is unavailable; retry shortly\n"
