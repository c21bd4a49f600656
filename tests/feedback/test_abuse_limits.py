"""The lock-out and the rate limits in one process (the live drill, test_limits_live.py, runs them across
processes behind nginx): one client address for all of them, one lock-out for every way in, throttles that
answer JSON 429 with Retry-After, the vote rate shared by the page and the API, sign-ups per address."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.test import RequestFactory
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.api import throttling
from feedback.client_ip import client_ip
from feedback.models import Vote
from tests import factories
from tests.feedback.test_api import accept_terms
from tests.feedback.test_web import form_key, shown_pair

TOKEN = "/api/v1/token/"


def _rates(settings, **rates):
    merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}


# --- the client's address ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "192.0.2.1"),  # no proxy of ours: the header is anyone's, ignored
        (1, "203.0.113.9", "203.0.113.9"),  # our proxy appended it
        (1, "10.0.0.1, 10.0.0.2, 203.0.113.9", "203.0.113.9"),  # the client's made-up entries to the left
        (2, "10.0.0.1, 203.0.113.9, 172.18.0.5", "203.0.113.9"),  # two proxies: the outer one's entry
        (1, "", "192.0.2.1"),
        (1, "not-an-address", "192.0.2.1"),
    ],
)
def test_the_client_address_trusts_only_our_proxies(settings, proxies, forwarded, expected):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


# --- the lock-out --------------------------------------------------------------------------------
@pytest.fixture
def ranker(volunteer):
    return accept_terms(volunteer)


def _token(client, username, password, **extra):
    return client.post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def test_token_guessing_locks_the_account_for_that_address_only(ranker, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = APIClient()
    codes = [_token(client, "vera", "guess", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(4)]
    assert codes == [400, 400, 429, 429]  # rotated X-Forwarded-For, no proxy of ours: one address
    locked = _token(client, "vera", factories.PASSWORD)
    assert locked.status_code == 429 and locked["Content-Type"] == "application/json"
    assert locked.json() == {
        "error": "too many failed logins for this account from your address; try again in 15 minutes"
    }
    assert locked["Retry-After"] == "900"
    assert AuthToken.objects.count() == 0
    elsewhere = _token(APIClient(REMOTE_ADDR="192.0.2.44"), "vera", factories.PASSWORD)
    assert elsewhere.status_code == 200 and AuthToken.objects.count() == 1


def test_web_login_admin_login_and_token_share_one_count(client, ranker, settings):
    settings.AXES_FAILURE_LIMIT = 3
    # Username on the web form, e-mail address (other case) on the token API: the same account.
    assert client.post(reverse("account_login"), {"login": "vera", "password": "x"}).status_code == 200
    assert _token(APIClient(), "VERA@example.org", "y").status_code == 400
    page = client.post("/admin/login/", {"username": "vera", "password": "z"})
    assert page.status_code == 429
    assert "Too many failed logins" in page.content.decode() and page["Retry-After"] == "900"
    assert _token(APIClient(), "vera", factories.PASSWORD).status_code == 429
    web = client.post(reverse("account_login"), {"login": "vera", "password": factories.PASSWORD})
    assert web.status_code == 429 and "_auth_user_id" not in client.session


def test_the_right_password_works_again_after_the_cooloff(ranker, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    client = APIClient()
    assert [_token(client, "vera", "guess").status_code for _ in range(3)] == [400, 429, 429]
    assert _token(client, "vera", factories.PASSWORD).status_code == 429
    time.sleep(1.2)
    assert _token(client, "vera", factories.PASSWORD).status_code == 200
    # A success clears the count: two more failures are needed to lock again.
    assert _token(client, "vera", "guess").status_code == 400


def test_admin_login_attempts_are_limited_per_address_across_accounts(client, db, settings):
    _rates(settings, token="3/hour")
    codes = [client.post("/admin/login/", {"username": f"name{i}", "password": "x"}).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]  # four accounts, one address
    refused = client.post("/admin/login/", {"username": "other", "password": "x"})
    assert refused.status_code == 429 and b"Too many login attempts" in refused.content
    assert int(refused["Retry-After"]) > 0
    # The same count as the token endpoint's.
    assert _token(APIClient(), "someone", "x").status_code == 429
    assert client.get("/admin/login/").status_code == 200  # only attempts are counted


def test_unknown_accounts_are_counted_too(db, settings):
    settings.AXES_FAILURE_LIMIT = 2
    codes = [_token(APIClient(), "nobody", "guess").status_code for _ in range(3)]
    assert codes == [400, 429, 429]


# --- API throttles -------------------------------------------------------------------------------
def test_anonymous_requests_are_throttled_per_address(db, settings):
    # Anonymous requests to closed endpoints stop at the permission check (401); open ones are counted.
    _rates(settings, anon="2/hour")
    client = APIClient()
    codes = [
        client.get("/api/v1/schema/?format=json", HTTP_X_FORWARDED_FOR=f"10.1.0.{i}").status_code for i in range(3)
    ]
    assert codes == [200, 200, 429]
    refused = client.get("/api/v1/schema/?format=json")
    assert refused.status_code == 429 and "throttled" in refused.json()["error"].lower()
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert APIClient(REMOTE_ADDR="192.0.2.8").get("/api/v1/schema/?format=json").status_code == 200


def test_requests_are_throttled_per_account(ranker, settings):
    _rates(settings, user="2/hour")
    token = AuthToken.objects.create(ranker)[1]
    other = AuthToken.objects.create(accept_terms(factories.UserFactory(username="otto")))[1]
    codes = [
        APIClient(REMOTE_ADDR=f"192.0.2.{i}").get("/api/v1/pairs/next/", HTTP_AUTHORIZATION=f"Token {token}")
        for i in range(3)
    ]
    assert [answer.status_code for answer in codes] == [204, 204, 429]  # a new address does not help
    assert APIClient().get("/api/v1/pairs/next/", HTTP_AUTHORIZATION=f"Token {other}").status_code == 204


def test_votes_are_throttled_on_the_api_and_the_page_together(client, ranker, settings):
    _rates(settings, votes="3/hour")
    factories.PairFactory.create_batch(5)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(ranker)[1]}")
    pair = api.get("/api/v1/pairs/next/").json()["pair"]
    for i in range(2):
        answer = api.post(
            "/api/v1/votes/", {"pair": pair, "choice": "left", "idempotency_key": f"k{i}"}, format="json"
        )
        assert answer.status_code == 201
        pair = answer.json()["next"]["pair"]
    client.force_login(ranker)
    page = client.get(reverse("rank"))
    third = client.post(reverse("rank-vote"), {"pair": shown_pair(page), "choice": "tie", "key": form_key(page)})
    assert third.status_code == 302
    page = client.get(reverse("rank"))
    fourth = client.post(reverse("rank-vote"), {"pair": shown_pair(page), "choice": "tie", "key": form_key(page)})
    assert fourth.status_code == 429 and int(fourth["Retry-After"]) > 0
    assert "Votes are coming faster than anyone can read" in fourth.content.decode()
    fifth = api.post("/api/v1/votes/", {"pair": pair, "choice": "left", "idempotency_key": "k9"}, format="json")
    assert fifth.status_code == 429 and "throttled" in fifth.json()["error"].lower()
    assert Vote.objects.filter(volunteer=ranker).count() == 3


def test_a_cache_that_does_not_answer_lets_requests_through(ranker, settings, monkeypatch):
    _rates(settings, user="1/hour")

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(throttling, "_count", broken)
    token = AuthToken.objects.create(ranker)[1]
    codes = [APIClient().get("/api/v1/pairs/next/", HTTP_AUTHORIZATION=f"Token {token}").status_code for _ in range(3)]
    assert codes == [204, 204, 204]
    assert throttling._cache_down_until > time.monotonic()  # left alone for a few seconds


@pytest.mark.redis
def test_in_redis_a_vote_counts_against_both_limits_in_one_round_trip(ranker, settings):
    """The vote answer's two limits (requests and votes per volunteer) are one command to Redis (the counting
    script): both counts go up on every vote, each window key expires, and the tighter limit refuses."""
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    backend = "django.core.cache.backends.redis.RedisCache"
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": url, "KEY_PREFIX": prefix}}
    _rates(settings, user="1000/min", votes="2/min")
    factories.PairFactory.create_batch(4)
    sent = []
    execute = redis.Redis.execute_command

    def counted(client, *args, **kwargs):
        sent.append(args[0])
        return execute(client, *args, **kwargs)

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(ranker)[1]}")
    pair = api.get("/api/v1/pairs/next/").json()["pair"]
    sent.clear()
    with mock.patch.object(redis.Redis, "execute_command", counted):
        codes = []
        for i in range(3):
            vote = {"pair": pair, "choice": "left", "idempotency_key": f"r{i}"}
            answer = api.post("/api/v1/votes/", vote, format="json")
            codes.append(answer.status_code)
            if answer.status_code == 201:
                pair = answer.json()["next"]["pair"]
    assert codes == [201, 201, 429]
    assert sent == ["EVALSHA"] * 3  # one command per vote, both limits in it
    counts = redis.Redis.from_url(url)
    keys = {key.decode(): int(counts.get(key)) for key in counts.keys(f"{prefix}:*")}
    assert all(0 < counts.ttl(key) <= 61 for key in keys)  # a minute's window and a second
    # the user limit also counted the first GET of a pair
    assert {key.split(":")[3]: count for key, count in keys.items()} == {"user": 4, "votes": 3}
    counts.delete(*keys)


def test_a_bad_rate_setting_is_named():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="30/fortnight"):
        throttling.parse_rate("30/fortnight")
    assert throttling.parse_rate("30/min") == (30, 60)
    assert throttling.parse_rate("5/hour") == (5, 3600)


# --- sign-up -------------------------------------------------------------------------------------
def test_sign_ups_are_limited_per_address(client, db, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "2/h/ip"}
    codes = []
    for i in range(3):
        data = {
            "username": f"newbie{i}",
            "email": f"newbie{i}@example.org",
            "password1": factories.PASSWORD,
            "password2": factories.PASSWORD,
            "accept_terms": "on",
        }
        codes.append(client.post(reverse("account_signup"), data).status_code)
        client.logout()
    assert codes == [302, 302, 429]
