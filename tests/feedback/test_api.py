"""The public JSON API under /api/v1/: tokens, the next pair, votes, skips, reports, and every error code."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.api import authentication
from feedback.api.permissions import DenyAll
from feedback.errors import ServiceError
from feedback.models import Assignment, Flag, Pair, Volunteer, Vote
from feedback.ranking import claims, services, statements, votes
from tests import factories

pytestmark = pytest.mark.django_db

NEXT = "/api/v1/pairs/next/"
VOTES = "/api/v1/votes/"
REPORTS = "/api/v1/reports/"
TOKEN = "/api/v1/token/"


def skip_url(pair_id) -> str:
    return f"/api/v1/pairs/{pair_id}/skip/"


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    # Throttle counts live in the cache: no test sees another's (token lookups: tests/conftest.py).
    cache.clear()
    # Password hashing at full strength is most of these tests' time; its strength is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    cache.clear()


def accept_terms(user):
    Volunteer.objects.filter(user=user).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    return user


@pytest.fixture
def ranker(volunteer):
    return accept_terms(volunteer)


@pytest.fixture
def token(ranker) -> str:
    return AuthToken.objects.create(ranker)[1]


@pytest.fixture
def client(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture(params=["one-statement", "orm"])
def both_paths(request, monkeypatch):
    """On PostgreSQL the vote path runs as single statements, elsewhere through the ORM: both keep the contract."""
    if request.param == "orm":
        monkeypatch.setattr(statements, "FAST_SQL", False)
    return request.param


def vote(client, pair_id, choice="left", key="k1", **extra):
    return client.post(VOTES, {"pair": pair_id, "choice": choice, "idempotency_key": key, **extra}, format="json")


# --- tokens -----------------------------------------------------------------------------------
def test_a_right_username_and_password_get_a_token_that_is_stored_only_hashed(ranker):
    response = APIClient().post(TOKEN, {"username": "vera", "password": factories.PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    stored = AuthToken.objects.get(user=ranker)
    assert stored.token_key == token[:15] and token not in stored.digest
    assert stored.expiry > timezone.now() + timedelta(days=1)
    follow = APIClient()
    follow.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    factories.PairFactory()
    assert follow.get(NEXT).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "vera", "password": "wrong"},
        {"username": "nobody", "password": factories.PASSWORD},
        {"username": "vera"},
        {"username": 7, "password": factories.PASSWORD},
        {"username": "ve\x00ra", "password": factories.PASSWORD},
        ["vera", factories.PASSWORD],
    ],
)
def test_wrong_or_missing_credentials_get_a_400_with_a_message_and_no_token(ranker, body):
    response = APIClient().post(TOKEN, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]
    assert AuthToken.objects.count() == 0


def test_a_token_request_that_is_not_json_gets_a_400(ranker):
    response = APIClient().post(TOKEN, data="username=vera", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_an_account_that_has_not_accepted_the_terms_gets_no_token(volunteer):
    response = APIClient().post(TOKEN, {"username": "vera", "password": factories.PASSWORD}, format="json")
    assert response.status_code == 403
    assert "terms" in response.json()["error"]
    assert AuthToken.objects.count() == 0


def test_password_guessing_is_throttled(ranker, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token": "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    settings.AXES_FAILURE_LIMIT = 100  # the throttle alone, not the lock-out
    client = APIClient()
    codes = [
        client.post(TOKEN, {"username": "vera", "password": "guess"}, format="json").status_code for _ in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    right = client.post(TOKEN, {"username": "vera", "password": factories.PASSWORD}, format="json")
    assert right.status_code == 429 and "throttled" in right.json()["error"].lower()
    assert AuthToken.objects.count() == 0


# --- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize("method,url", [("get", NEXT), ("post", VOTES), ("post", skip_url(1)), ("post", REPORTS)])
def test_requests_without_credentials_are_refused_with_401(db, method, url):
    response = getattr(APIClient(), method)(url, {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token nonsense", "Token " + "0" * 64, "Token", "Token a b"])
def test_a_bad_token_is_refused_with_401(ranker, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get(NEXT).status_code == 401


def test_a_revoked_token_is_refused_even_right_after_a_cached_use(client, ranker):
    factories.PairFactory()
    assert client.get(NEXT).status_code == 200
    AuthToken.objects.filter(user=ranker).delete()
    response = client.get(NEXT)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token."}


def test_an_expired_token_is_refused_and_deleted(ranker):
    _, token = AuthToken.objects.create(ranker, expiry=timedelta(seconds=-1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(NEXT).status_code == 401
    assert AuthToken.objects.count() == 0


def test_a_cached_token_stops_working_when_it_expires(ranker, monkeypatch):
    factories.PairFactory()
    _, token = AuthToken.objects.create(ranker, expiry=timedelta(minutes=5))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(NEXT).status_code == 200
    later = timezone.now() + timedelta(minutes=6)
    monkeypatch.setattr(authentication.timezone, "now", lambda: later)
    assert client.get(NEXT).status_code == 401


def test_a_token_of_a_deactivated_account_is_refused(client, ranker):
    ranker.is_active = False
    ranker.save()
    authentication.forget_all()  # a cached lookup may serve a deactivated account for API_TOKEN_CACHE_SECONDS
    assert client.get(NEXT).status_code == 401


def test_token_lookups_are_cached_between_requests(client):
    factories.PairFactory()
    with CaptureQueriesContext(connection) as first:
        assert client.get(NEXT).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get(NEXT).status_code == 200
    assert sum("knox_authtoken" in (q["sql"] or "") for q in first.captured_queries) == 1
    assert sum("knox_authtoken" in (q["sql"] or "") for q in second.captured_queries) == 0


def test_each_cached_hit_is_its_own_copy_of_the_token_and_user(ranker):
    _, token = AuthToken.objects.create(ranker)
    scheme = authentication.CachedTokenAuthentication()
    user_one, token_one = scheme.authenticate_credentials(token.encode())
    user_two, token_two = scheme.authenticate_credentials(token.encode())  # from the cache
    assert (user_one.pk, token_one.pk) == (user_two.pk, token_two.pk) == (ranker.pk, token_one.pk)
    assert user_one is not user_two and token_one is not token_two  # no instance shared between requests


def test_the_token_cache_stays_bounded(ranker, monkeypatch):
    monkeypatch.setattr(authentication, "MAX_CACHED_TOKENS", 3)
    scheme = authentication.CachedTokenAuthentication()
    for _ in range(5):
        _, token = AuthToken.objects.create(ranker)
        scheme.authenticate_credentials(token.encode())
        assert len(authentication._cached) <= 3
    assert authentication._recall(hash_token(token)) is not None  # the newest is kept


def test_with_the_cache_off_every_request_looks_the_token_up(client, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    factories.PairFactory()
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(NEXT).status_code == 200
        assert sum("knox_authtoken" in (q["sql"] or "") for q in queries.captured_queries) == 1


def test_the_session_of_a_signed_in_volunteer_works_too(ranker):
    pair = factories.PairFactory()
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="vera", password=factories.PASSWORD)
    response = client.get(NEXT)
    assert response.status_code == 200 and response.json()["pair"] == pair.pk
    # Unsafe methods over a session need the CSRF token, as on the site.
    assert vote(client, pair.pk).status_code == 403
    assert Vote.objects.count() == 0


def test_a_session_without_accepted_terms_is_refused_with_403(volunteer):
    factories.PairFactory()
    client = APIClient()
    assert client.login(username="vera", password=factories.PASSWORD)
    response = client.get(NEXT)
    assert response.status_code == 403
    assert "terms" in response.json()["error"]
    assert Assignment.objects.count() == 0


def _api_views(resolver=None):
    for entry in (resolver or get_resolver("feedback.api.urls")).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry)
        elif isinstance(entry, URLPattern):
            yield entry.callback.cls


def test_the_default_permission_denies_and_every_api_view_opts_in(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] == ["feedback.api.permissions.DenyAll"]
    views = list(_api_views())
    assert len(views) >= 7
    for view in views:
        assert not any(isinstance(p, DenyAll) for p in view().get_permissions()), view


# --- the next pair ----------------------------------------------------------------------------
@pytest.mark.usefixtures("both_paths")
def test_the_next_pair_is_shown_with_sides_as_the_assignment_placed_them(client, ranker):
    pair = factories.PairFactory()
    response = client.get(NEXT)
    assert response.status_code == 200
    body = response.json()
    assignment = Assignment.objects.get(volunteer=ranker)
    left, right = (
        (pair.completion_a, pair.completion_b) if assignment.left_is_a else (pair.completion_b, pair.completion_a)
    )
    assert body == {
        "pair": pair.pk,
        "prompt": {"text": pair.prompt.text, "language": "python", "suffix": ""},
        "left": {"text": left.text},
        "right": {"text": right.text},
    }
    assert client.get(NEXT).json() == body  # a reload shows the same pair


def test_no_pair_left_is_a_204_with_no_body(client):
    response = client.get(NEXT)
    assert response.status_code == 204
    assert response.content == b""


# --- votes ------------------------------------------------------------------------------------
@pytest.mark.usefixtures("both_paths")
def test_a_vote_is_stored_in_terms_of_completions_and_the_answer_carries_the_next_pair(client, ranker):
    first, second = factories.PairFactory.create_batch(2)
    shown = client.get(NEXT).json()
    response = vote(client, shown["pair"], "left", key="abc", rationale="  clearer   names ")
    assert response.status_code == 201
    body = response.json()
    stored = Vote.objects.get()
    assignment = Assignment.objects.get(pair_id=shown["pair"])
    assert body["id"] == stored.pk and body["pair"] == shown["pair"]
    assert (body["choice"], body["rationale"]) == ("left", "clearer names")
    assert stored.choice == ("a" if assignment.left_is_a else "b")
    assert stored.left_is_a == assignment.left_is_a and assignment.voted_at is not None
    assert Pair.objects.get(pk=shown["pair"]).votes_count == 1
    other = ({first.pk, second.pk} - {shown["pair"]}).pop()
    assert body["next"]["pair"] == other
    assert body["next"] == client.get(NEXT).json()


@pytest.mark.usefixtures("both_paths")
def test_the_time_taken_is_measured_by_the_server_and_a_client_claim_is_ignored(client):
    pair = factories.PairFactory()
    client.get(NEXT)
    Assignment.objects.filter(pair=pair).update(created_at=timezone.now() - timedelta(seconds=42))
    response = vote(client, pair.pk, "left", time_taken_ms=999_999)
    assert response.status_code == 201
    stored = Vote.objects.get().time_taken_ms
    assert 42_000 <= stored < 60_000
    assert response.json()["time_taken_ms"] == stored


@pytest.mark.usefixtures("both_paths")
def test_a_vote_long_after_its_hand_out_stores_no_time(client):
    pair = factories.PairFactory()
    client.get(NEXT)
    Assignment.objects.filter(pair=pair).update(created_at=timezone.now() - timedelta(hours=7))
    assert vote(client, pair.pk, "left").status_code == 201
    assert Vote.objects.get().time_taken_ms is None


@pytest.mark.usefixtures("both_paths")
def test_the_last_vote_answers_with_no_next_pair(client):
    pair = factories.PairFactory()
    client.get(NEXT)
    response = vote(client, pair.pk, "tie")
    assert response.status_code == 201
    assert response.json()["next"] is None
    assert Vote.objects.get().choice == "tie"


@pytest.mark.usefixtures("both_paths")
def test_a_replayed_vote_gets_200_with_the_same_body_and_counts_nothing(client):
    pair, _ = factories.PairFactory.create_batch(2)
    client.get(NEXT)
    pair_id = Assignment.objects.get().pair_id
    first = vote(client, pair_id, "right", key="same-key", rationale="why")
    again = vote(client, pair_id, "right", key="same-key", rationale="why")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content
    assert Vote.objects.count() == 1
    assert Pair.objects.get(pk=pair_id).votes_count == 1


@pytest.mark.usefixtures("both_paths")
def test_another_choice_on_a_voted_pair_is_a_409_and_the_first_vote_stands(client):
    factories.PairFactory.create_batch(2)
    pair_id = client.get(NEXT).json()["pair"]
    assert vote(client, pair_id, "left", key="one").status_code == 201
    response = vote(client, pair_id, "right", key="two")
    assert response.status_code == 409
    assert "already voted" in response.json()["error"]
    assert Vote.objects.get().screen_choice == "left"
    assert Pair.objects.get(pk=pair_id).votes_count == 1


@pytest.mark.usefixtures("both_paths")
def test_a_key_reused_for_another_pair_is_a_409(client):
    factories.PairFactory.create_batch(2)
    first = client.get(NEXT).json()["pair"]
    second = vote(client, first, key="reused").json()["next"]["pair"]
    response = vote(client, second, key="reused")
    assert response.status_code == 409
    assert "idempotency_key" in response.json()["error"]
    assert Vote.objects.count() == 1


@pytest.mark.usefixtures("both_paths")
def test_a_vote_on_a_pair_not_assigned_to_the_caller_is_a_404(client, other_volunteer):
    pair = factories.PairFactory()
    response = vote(client, pair.pk)
    assert response.status_code == 404
    assert "not assigned" in response.json()["error"]
    assert Vote.objects.count() == 0 and Pair.objects.get().votes_count == 0


@pytest.mark.parametrize(
    "change,message",
    [
        ({"pair": None}, "pair: is required"),
        ({"pair": "abc"}, "pair: must be a positive integer"),
        ({"pair": "1"}, "pair: must be a positive integer"),
        ({"pair": 1.5}, "pair: must be a positive integer"),
        ({"pair": True}, "pair: must be a positive integer"),
        ({"pair": 0}, "pair: must be a positive integer"),
        ({"pair": 2**63}, "pair: must be a positive integer"),
        ({"pair": 10**30}, "pair: must be a positive integer"),
        ({"choice": "middle"}, "choice: must be one of"),
        ({"choice": 1}, "choice: must be one of"),
        ({"choice": None}, "choice: is required"),
        ({"idempotency_key": None}, "idempotency_key: is required"),
        ({"idempotency_key": "   "}, "idempotency_key: must not be blank"),
        ({"idempotency_key": "k" * 65}, "idempotency_key: must be at most 64"),
        ({"idempotency_key": ["k"]}, "idempotency_key: must be a string"),
        ({"idempotency_key": "a\x00b"}, "NUL"),
        ({"rationale": "x" * 281}, "rationale: must be at most 280"),
        ({"rationale": "x" * 2000}, "rationale: must be at most"),
        ({"rationale": "a\x00b"}, "NUL"),
        ({"rationale": 12}, "rationale: must be a string"),
    ],
)
def test_bad_vote_fields_get_a_400_with_a_message_and_store_nothing(client, change, message):
    factories.PairFactory()
    pair_id = client.get(NEXT).json()["pair"]
    body = {"pair": pair_id, "choice": "left", "idempotency_key": "k", **change}
    body = {name: value for name, value in body.items() if value is not None}
    response = client.post(VOTES, body, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(
    "raw,content_type,code",
    [
        (b"pair=1&choice=left", "application/json", 400),
        (b'{"pair": 1, "choice": "left",', "application/json", 400),
        (b'"\\ud800"', "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"", "application/json", 400),
        (b"pair=1&choice=left&idempotency_key=k", "application/x-www-form-urlencoded", 415),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_a_message(client, raw, content_type, code):
    factories.PairFactory()
    client.get(NEXT)
    response = client.generic("POST", VOTES, raw, content_type=content_type)
    assert response.status_code == code
    assert response.json()["error"]
    assert Vote.objects.count() == 0


@pytest.mark.usefixtures("both_paths")
def test_a_vote_on_a_skipped_pair_is_a_409(client):
    factories.PairFactory.create_batch(2)
    pair_id = client.get(NEXT).json()["pair"]
    assert client.post(skip_url(pair_id)).status_code == 200
    response = vote(client, pair_id)
    assert response.status_code == 409
    assert "skipped" in response.json()["error"]


@pytest.mark.usefixtures("both_paths")
def test_votes_close_a_pair_at_k_through_the_api():
    pair = factories.PairFactory(votes_wanted=2)
    for name in ("a1", "a2"):
        user = accept_terms(factories.UserFactory(username=name))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
        assert client.get(NEXT).json()["pair"] == pair.pk
        assert vote(client, pair.pk, "both_bad", key=name).status_code == 201
    pair.refresh_from_db()
    assert (pair.votes_count, pair.state) == (2, Pair.State.COMPLETE)


@pytest.mark.usefixtures("both_paths")
def test_a_late_vote_on_an_expired_assignment_takes_its_claim_back(client, ranker):
    pair = factories.PairFactory(votes_wanted=2)
    client.get(NEXT)
    Assignment.objects.filter(volunteer=ranker).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert claims.assignments_release_expired() == 1
    assert Pair.objects.get(pk=pair.pk).claims_count == 0
    assert vote(client, pair.pk).status_code == 201
    pair.refresh_from_db()
    assert (pair.votes_count, pair.claims_count) == (1, 1)


@pytest.mark.usefixtures("both_paths")
def test_a_claim_loads_what_a_page_shows_in_its_own_queries(ranker, django_assert_num_queries):
    pair = factories.PairFactory()
    assignment = claims.assignment_claim_next(user=ranker)
    with django_assert_num_queries(0):
        shown = (
            assignment.pair.prompt.text,
            assignment.pair.prompt.language,
            assignment.pair.completion_a.text,
            assignment.pair.completion_a.outcome,
            assignment.pair.completion_b.text,
            assignment.left_is_a,
            assignment.pair_id,
        )
    assert shown[:5] == (pair.prompt.text, "python", pair.completion_a.text, "not_run", pair.completion_b.text)
    assert shown[6] == pair.pk
    assert assignment.pair.prompt.tests == pair.prompt.tests  # deferred fields still load on access
    assert Assignment.objects.get(volunteer=ranker).left_is_a == assignment.left_is_a


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("both_paths")
def test_claims_made_at_the_same_time_never_share_a_pair():
    factories.PairFactory.create_batch(4, votes_wanted=4)
    users = factories.UserFactory.create_batch(4)
    start, all_claimed = threading.Barrier(4), threading.Barrier(4)
    first: dict[int, int] = {}
    errors = []

    def claim(user):
        from django.db import connection as thread_connection

        try:
            start.wait()
            with transaction.atomic():
                first[user.pk] = claims.assignment_claim_next(user=user).pair_id
                # Every claim stays open until all four are made: they overlap for certain, whatever the
                # scheduling (a volunteer who starts late may fairly get a pair already claimed once).
                all_claimed.wait(timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=claim, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(first.values())) == 4, first
    assert sorted(Pair.objects.values_list("claims_count", flat=True)) == [1, 1, 1, 1]


# --- skips and reports ------------------------------------------------------------------------
@pytest.mark.usefixtures("both_paths")
def test_a_skipped_pair_is_not_shown_again_and_the_answer_carries_the_next(client, ranker):
    first, second = factories.PairFactory.create_batch(2)
    shown = client.get(NEXT).json()["pair"]
    response = client.post(skip_url(shown))
    assert response.status_code == 200
    other = ({first.pk, second.pk} - {shown}).pop()
    assert response.json()["pair"] == shown and response.json()["next"]["pair"] == other
    assert Assignment.objects.get(volunteer=ranker, pair_id=shown).skipped_at is not None
    assert client.get(NEXT).json()["pair"] == other


def test_skip_errors_are_4xx_with_a_message(client):
    pair, unassigned = factories.PairFactory.create_batch(2)
    pair_id = client.get(NEXT).json()["pair"]
    other = ({pair.pk, unassigned.pk} - {pair_id}).pop()
    assert client.post(skip_url(other)).status_code == 404
    assert client.post(skip_url(2**64)).status_code == 400
    vote(client, pair_id)
    response = client.post(skip_url(pair_id))
    assert response.status_code == 409 and "already voted" in response.json()["error"]


def test_a_report_is_stored_once(client, ranker):
    pair = factories.PairFactory()
    client.get(NEXT)
    body = {"pair": pair.pk, "reason": "harmful", "note": "asks for  a keylogger"}
    first = client.post(REPORTS, body, format="json")
    again = client.post(REPORTS, body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    flag = Flag.objects.get()
    assert (flag.reporter, flag.pair, flag.reason, flag.note) == (ranker, pair, "harmful", "asks for a keylogger")
    assert flag.prompt_id == pair.prompt_id


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({"reason": "boring"}, 400, "reason: must be one of"),
        ({"reason": None}, 400, "reason: is required"),
        ({"pair": "x"}, 400, "pair: must be a positive integer"),
        ({"pair": 999999}, 404, "does not exist"),
        ({"note": "n" * 501}, 400, "note: must be at most 500"),
    ],
)
def test_bad_reports_get_a_4xx_with_a_message(client, body, status, message):
    pair = factories.PairFactory()
    client.get(NEXT)
    payload = {"pair": pair.pk, "reason": "broken", **body}
    payload = {name: value for name, value in payload.items() if value is not None}
    response = client.post(REPORTS, payload, format="json")
    assert response.status_code == status
    assert message in response.json()["error"]
    assert Flag.objects.count() == 0


def test_a_report_on_a_pair_never_assigned_is_a_404(client):
    pair = factories.PairFactory()
    response = client.post(REPORTS, {"pair": pair.pk, "reason": "broken"}, format="json")
    assert response.status_code == 404 and "not assigned" in response.json()["error"]


# --- schema -----------------------------------------------------------------------------------
def test_the_openapi_schema_and_docs_are_served(db):
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/token/", NEXT, VOTES, "/api/v1/pairs/{pair_id}/skip/", REPORTS} <= set(paths)
    assert set(paths[VOTES]["post"]["responses"]) >= {"200", "201", "400", "401", "409"}
    assert APIClient().get("/api/v1/docs/").status_code == 200


def test_the_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/votes/" in (tmp_path / "schema.yaml").read_text()


def _documented(component: str) -> dict:
    """A request body's properties as the OpenAPI schema documents them (enums resolved)."""
    from drf_spectacular.generators import SchemaGenerator

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]

    def resolved(prop: dict) -> dict:
        if "oneOf" in prop:  # a blank-allowed string with a pattern: [the string's schema, the empty string]
            prop = {**prop, **prop.pop("oneOf")[0]}
        ref = prop.get("$ref") or next((p["$ref"] for p in prop.get("allOf", []) if "$ref" in p), None)
        return {**prop, **schemas[ref.rsplit("/", 1)[1]]} if ref else prop

    return {name: resolved(prop) for name, prop in schemas[component]["properties"].items()}


@pytest.mark.parametrize("field", ["idempotency_key", "rationale"])
def test_a_vote_field_at_its_documented_length_is_accepted_and_one_more_is_refused(client, field):
    limit = _documented("VoteRequest")[field]["maxLength"]
    pairs = factories.PairFactory.create_batch(2)
    at_limit = {"idempotency_key": "k" * limit} if field == "idempotency_key" else {"rationale": "r" * limit}
    over = {field: "o" * (limit + 1)}
    shown = client.get(NEXT).json()["pair"]
    assert vote(client, shown, **{"key": "first", **at_limit}).status_code == 201
    refused = vote(client, ({p.pk for p in pairs} - {shown}).pop(), **{"key": "second", **over})
    assert refused.status_code == 400 and f"{field}: must be at most {limit}" in refused.json()["error"]
    assert Vote.objects.count() == 1


def test_every_documented_choice_and_the_documented_id_range_are_what_the_api_accepts(client):
    documented = _documented("VoteRequest")
    choices = documented["choice"]["enum"]
    assert sorted(choices) == sorted(["left", "right", "tie", "both_bad"])
    pairs = factories.PairFactory.create_batch(len(choices))
    for n, choice in enumerate(choices):
        assert vote(client, client.get(NEXT).json()["pair"], choice, key=f"k{n}").status_code == 201
    assert Vote.objects.count() == len(pairs)
    top = documented["pair"]["maximum"]
    assert (documented["pair"]["minimum"], top) == (1, 2**63 - 1)
    assert vote(client, top + 1, key="over").status_code == 400
    assert vote(client, top, key="top").json()["error"] == f"pair {top} is not assigned to you"


@pytest.mark.parametrize("key", [" ", "\x1f", "\x85", "\u3000 ", "\ufeff", "k"])
def test_the_documented_key_pattern_refuses_exactly_the_keys_the_api_calls_blank(client, key):
    """Python strips more kinds of space than a schema's \\s (ECMA-262: no \\x1c-\\x1f, no \\x85; schemathesis
    found the gap): the pattern spells out Python's set, so a key the schema allows is a key the API takes.
    Judged as a schema validator does (jsonschema-rs, ECMA regular expressions; Python's re would agree
    with the server either way)."""
    import jsonschema_rs

    pattern = _documented("VoteRequest")["idempotency_key"]["pattern"]
    allowed = jsonschema_rs.validator_for({"type": "string", "pattern": pattern}).is_valid(key)
    factories.PairFactory()
    answer = vote(client, client.get(NEXT).json()["pair"], key=key)
    assert answer.status_code == (201 if allowed else 400)
    assert allowed is bool(key.strip())


def test_a_report_note_at_its_documented_length_is_accepted_and_one_more_is_refused(client):
    limit = _documented("ReportRequest")["note"]["maxLength"]
    pair = factories.PairFactory()
    client.get(NEXT)
    refused = client.post(REPORTS, {"pair": pair.pk, "reason": "broken", "note": "n" * (limit + 1)}, format="json")
    assert refused.status_code == 400 and f"note: must be at most {limit}" in refused.json()["error"]
    accepted = client.post(REPORTS, {"pair": pair.pk, "reason": "broken", "note": "n" * limit}, format="json")
    assert accepted.status_code == 201 and len(Flag.objects.get().note) == limit


# --- the services behind the API, called by the site's views too ----------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda user, pair: votes.vote_record(user=user, pair_id=2**64, screen_choice="left", key="k"),
        lambda user, pair: services.pair_skip(user=user, pair_id=2**64),
        lambda user, pair: services.pair_report(user=user, pair_id=pair.pk, reason="broken", note="a\x00b"),
        lambda user, pair: services.pair_report(user=user, pair_id=-1, reason="broken"),
    ],
)
def test_out_of_range_input_is_a_service_error_not_a_database_error(ranker, call):
    pair = factories.PairFactory()
    claims.assignment_claim_next(user=ranker)
    with pytest.raises(ServiceError):
        call(ranker, pair)
    assert Vote.objects.count() == 0 and Flag.objects.count() == 0


def test_the_shared_request_validator_gives_each_thread_its_own_answer():
    """One bound serializer serves every request of a worker's threads: no answer may leak into another."""
    from concurrent.futures import ThreadPoolExecutor

    from rest_framework.exceptions import ValidationError

    from feedback.api.validation import validated
    from feedback.ranking.serializers import VoteRequestSerializer

    def check(n: int) -> bool:
        if n % 3 == 0:
            try:
                validated(VoteRequestSerializer, {"pair": "x", "choice": "left", "idempotency_key": f"k{n}"})
            except ValidationError as exc:
                return set(exc.detail) == {"pair"}
            return False
        body = {"pair": n + 1, "choice": ("left", "right")[n % 2], "idempotency_key": f"k{n}", "rationale": f"r{n}"}
        return validated(VoteRequestSerializer, body) == body

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(check, range(4000)))
