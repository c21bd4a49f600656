"""DB_STATEMENT_TIMEOUT reaches PostgreSQL (connection option ``-c statement_timeout``): a statement running
longer is cancelled, and the request that ran it gets a 503 with a message, not a 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db import OperationalError, connection, transaction
from django.test import RequestFactory

from feedback.middleware import RequestGuardMiddleware
from tests.celery_worker import ROOT, _database_url

pytestmark = [pytest.mark.postgres]

PROBE = """
import json, time, django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    shown = cursor.fetchone()[0]
    started = time.monotonic()
    try:
        cursor.execute("SELECT pg_sleep(3)")
        outcome = "finished"
    except Exception as exc:
        outcome = type(exc.__cause__ or exc).__name__
print(json.dumps({"shown": shown, "outcome": outcome, "seconds": time.monotonic() - started}))
"""


def _probe(statement_timeout: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "feedback.settings",
        "DATABASE_URL": _database_url(),
        "DB_STATEMENT_TIMEOUT": statement_timeout,
    }
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_statement_over_the_limit_is_cancelled(db):
    found = _probe("0.3")
    assert found["shown"] == "300ms"
    assert found["outcome"] == "QueryCanceled"
    assert found["seconds"] < 2.0


def test_zero_turns_the_limit_off(db):
    found = _probe("0")
    assert found["shown"] == "0"
    assert found["outcome"] == "finished" and found["seconds"] >= 3.0


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_statement_answers_503_json():
    with pytest.raises(OperationalError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 50")
        cursor.execute("SELECT pg_sleep(2)")
    guard = RequestGuardMiddleware(lambda request: None)
    response = guard.process_exception(RequestFactory().post("/api/v1/votes/"), caught.value)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert json.loads(response.content) == {"error": "the database took too long to answer; retry shortly"}
    page = guard.process_exception(RequestFactory().get("/rank/"), caught.value)
    assert page.status_code == 503 and page["Content-Type"].startswith("text/plain")
