"""The lock-out and the rate limits against real processes: nginx (deploy/nginx.conf) in front of TWO
gunicorn processes on PostgreSQL, counts in Redis. Every request carries a made-up, rotated
X-Forwarded-For; nginx appends the real address and the app trusts one proxy (NUM_PROXIES=1).
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid

import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone

from feedback.models import Volunteer
from tests import factories
from tests.live_stack import NGINX, request, start_gunicorn, start_nginx, stop

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(NGINX) and os.environ.get("CI") != "true", reason="needs nginx"),
]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
PASSWORD = "a long and right password"
COOLOFF = 4
TOKEN = "/api/v1/token/"


def rotated() -> dict[str, str]:
    """A made-up client chain, different on every request."""
    return {
        "X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7, 198.51.100.{time.time_ns() % 250}"
    }


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("limits-live")
    counts = redis.Redis.from_url(REDIS_URL)
    for key in counts.scan_iter(match="*throttle:*"):
        counts.delete(key)
    env = {
        "NUM_PROXIES": "1",
        "CACHE_URL": REDIS_URL,
        "LOGIN_FAILURE_LIMIT": "5",
        "LOGIN_COOLOFF_SECONDS": str(COOLOFF),
        "API_TOKEN_RATE": "1000/min",
        "API_ANON_RATE": "1000/min",
        "API_VOTE_RATE": "4/hour",
    }
    processes = []
    try:
        first, first_port, first_log = start_gunicorn(workdir, "gunicorn-a", env)
        processes.append(first)
        second, second_port, second_log = start_gunicorn(workdir, "gunicorn-b", env)
        processes.append(second)
        proxy, port = start_nginx(workdir, [first_port, second_port])
        processes.append(proxy)
        yield {"port": port, "logs": (first_log, second_log)}
    finally:
        for process in reversed(processes):
            stop(process)


def _user(username: str, **extra):
    # The servers hash as production does (the test settings' MD5 hasher is theirs only).
    encoded = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user = get_user_model().objects.create(
        username=username, email=f"{username}@example.org", password=encoded, **extra
    )
    Volunteer.objects.filter(user=user).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    return user


def _token(port: int, username: str, password: str, source: str = "127.0.0.1"):
    return request(
        port, "POST", TOKEN, body={"username": username, "password": password}, headers=rotated(), source=source
    )


def _served_by_both(logs, path: str) -> None:
    for log in logs:
        assert path in log.read_text(), f"{log.name} served no {path}: the requests did not reach both processes"


def _admin_login(port: int, username: str, password: str, source: str = "127.0.0.1"):
    page = request(port, "GET", "/admin/login/", source=source)
    cookie = re.search(r"csrftoken=([^;]+)", page.headers["set-cookie"])[1]
    field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body.decode())[1]
    form = f"csrfmiddlewaretoken={field}&username={username}&password={password}&next=/admin/"
    headers = {"Cookie": f"csrftoken={cookie}", "Content-Type": "application/x-www-form-urlencoded", **rotated()}
    return request(port, "POST", "/admin/login/", body=form, headers=headers, source=source)


def test_token_guessing_is_locked_out_across_processes_and_rotated_forwarded_for(stack):
    port = stack["port"]
    _user("vera")
    codes = [_token(port, "vera", f"guess-{i}").status for i in range(12)]
    # Five failures lock (account, address): the fifth answer is already the lock-out.
    assert codes == [400] * 4 + [429] * 8
    right = _token(port, "vera", PASSWORD)
    assert right.status == 429
    assert "too many failed logins" in right.json()["error"]
    assert int(right.headers["retry-after"]) == COOLOFF
    _served_by_both(stack["logs"], TOKEN)

    # The same account, the same address, another way in: locked as well (a page, not JSON).
    page = _admin_login(port, "vera", PASSWORD)
    assert page.status == 429 and b"Too many failed logins" in page.body
    assert page.headers["content-type"].startswith("text/html")

    # The owner from another address was never locked out.
    elsewhere = _token(port, "vera", PASSWORD, source="127.0.0.2")
    assert elsewhere.status == 200 and len(elsewhere.json()["token"]) > 20

    # After the cool-off (the last guess started it), the right password works from the guesser's address too.
    time.sleep(COOLOFF + 0.5)
    later = _token(port, "vera", PASSWORD)
    assert later.status == 200, later.body


def test_admin_login_is_locked_out_and_opens_after_the_cooloff(stack):
    port = stack["port"]
    _user("root", is_staff=True, is_superuser=True)
    codes = [_admin_login(port, "root", f"guess-{i}").status for i in range(8)]
    assert codes == [200] * 4 + [429] * 4  # 200: the form again with its error; then the lock-out page
    assert _admin_login(port, "root", PASSWORD).status == 429
    # The token endpoint counts the same failures: the e-mail address names the same account.
    assert _token(port, "root@example.org", PASSWORD).status == 429
    _served_by_both(stack["logs"], "/admin/login/")
    time.sleep(COOLOFF + 0.5)
    done = _admin_login(port, "root", PASSWORD)
    assert done.status == 302 and done.headers["location"] == "/admin/"


def test_votes_are_throttled_per_volunteer_across_processes(stack):
    port = stack["port"]
    volunteer = _user("vote-fast")
    for _ in range(8):
        factories.PairFactory()
    token = _token(port, "vote-fast", PASSWORD, source="127.0.0.3").json()["token"]
    auth = {"Authorization": f"Token {token}", **rotated()}
    pair = request(port, "GET", "/api/v1/pairs/next/", headers=auth).json()["pair"]
    statuses = []
    for _ in range(6):
        vote = {"pair": pair, "choice": "left", "idempotency_key": uuid.uuid4().hex}
        answer = request(port, "POST", "/api/v1/votes/", body=vote, headers={**auth, **rotated()})
        statuses.append(answer.status)
        if answer.status == 201:
            pair = answer.json()["next"]["pair"]
    assert statuses == [201] * 4 + [429] * 2
    body = answer.json()
    assert "throttled" in body["error"].lower() and int(answer.headers["retry-after"]) > 0
    assert volunteer.votes.count() == 4
    _served_by_both(stack["logs"], "/api/v1/votes/")


def test_slow_uploads_hold_nginx_not_gunicorn(stack):
    """More stalled uploads than the two gunicorns have threads (2 x 4): nginx holds them, /healthz answers."""
    port = stack["port"]
    stalled = []
    try:
        for _ in range(12):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(
                b"POST /api/v1/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 900000\r\n\r\n{"username": "'
            )
            stalled.append(sock)
        time.sleep(0.5)
        answers = [request(port, "GET", "/healthz", timeout=10) for _ in range(4)]
        assert [answer.status for answer in answers] == [200] * 4
        assert max(answer.seconds for answer in answers) < 3.0
        too_large = request(port, "POST", TOKEN, body="x" * 1_000_001, headers={"Content-Type": "application/json"})
        assert too_large.status == 413 and "larger than the API takes" in too_large.json()["error"]
    finally:
        for sock in stalled:
            sock.close()
