"""Operating it: /metrics (who may read it, and the counters moving), request ids in responses and log lines,
the log formats, and a pg_dump backup restored into a fresh database with every vote in it."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback import dispatch, metrics
from feedback.accounts.services import volunteer_terms_accept
from feedback.cycles.runs import run_finish
from feedback.models import TrainingRun, Vote
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _value(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def _voter(user) -> APIClient:
    volunteer_terms_accept(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return client


# --- /metrics ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_metrics_answer_loopback_and_the_token_and_no_one_else(settings):
    settings.METRICS_TOKEN = "s3cret-metrics"
    local = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert local.status_code == 200 and local["Content-Type"].startswith("text/plain")
    body = local.content.decode()
    assert "codepref_votes_total" in body and "process_cpu_seconds_total" in body
    outside = Client(REMOTE_ADDR="203.0.113.9")
    assert outside.get("/metrics").status_code == 404
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics").status_code == 200
    settings.METRICS_ALLOWED_IPS = ["203.0.113.9"]
    assert outside.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_request_metrics_when_turned_on(settings):
    settings.MIDDLEWARE = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *settings.MIDDLEWARE,
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ]
    client = Client(REMOTE_ADDR="127.0.0.1")
    before = _value("django_http_responses_total_by_status_total", status="200")
    assert client.get("/healthz").status_code == 200
    assert _value("django_http_responses_total_by_status_total", status="200") == before + 1
    assert "django_http_requests_latency_seconds_by_view_method" in client.get("/metrics").content.decode()


@pytest.mark.django_db
def test_a_vote_and_its_replay_move_the_vote_counters(volunteer):
    factories.PairFactory.create_batch(2)
    client = _voter(volunteer)
    pair = client.get("/api/v1/pairs/next/").json()["pair"]
    created, replayed = (
        _value("codepref_votes_total", outcome="created"),
        _value("codepref_votes_total", outcome="replayed"),
    )
    body = {"pair": pair, "choice": "left", "idempotency_key": "k1"}
    assert client.post("/api/v1/votes/", body, format="json").status_code == 201
    assert client.post("/api/v1/votes/", body, format="json").status_code == 200
    assert _value("codepref_votes_total", outcome="created") == created + 1
    assert _value("codepref_votes_total", outcome="replayed") == replayed + 1


@pytest.mark.django_db
def test_tasks_sandbox_outcomes_and_training_runs_are_counted():
    before = _value("codepref_tasks_total", task="feedback.tasks.run_tests", state="succeeded")
    dispatch.task("feedback.tasks.run_tests").apply(kwargs={"completion_ids": []})
    assert _value("codepref_tasks_total", task="feedback.tasks.run_tests", state="succeeded") == before + 1

    passed, failed = (
        _value("codepref_sandbox_outcomes_total", outcome="passed"),
        _value("codepref_sandbox_outcomes_total", outcome="failed"),
    )
    task = type("Task", (), {"name": "feedback.tasks.run_tests"})
    metrics._task_succeeded(sender=task, result={"passed": 3, "failed": 2, "missing": 7, "pairs_decided": 1})
    assert _value("codepref_sandbox_outcomes_total", outcome="passed") == passed + 3
    assert _value("codepref_sandbox_outcomes_total", outcome="failed") == failed + 2
    assert _value("codepref_sandbox_outcomes_total", outcome="missing") == 0  # not an outcome

    runs = _value("codepref_training_runs_total", state="failed")
    run = TrainingRun.objects.create(stage=TrainingRun.Stage.values[0])
    run_finish(run, TrainingRun.State.FAILED, "the pipeline exited with 1")
    assert _value("codepref_training_runs_total", state="failed") == runs + 1


# --- request ids and logs ---------------------------------------------------------------------
@pytest.fixture
def console():
    """The root logger's console handler (as settings.LOGGING made it), writing into a buffer."""
    handler = next(
        h for h in logging.getLogger().handlers if any(type(f).__name__ == "RequestIdFilter" for f in h.filters)
    )
    buffer = io.StringIO()
    stream, formatter = handler.setStream(buffer), handler.formatter
    yield handler, buffer
    handler.setStream(stream)
    handler.setFormatter(formatter)


@pytest.mark.django_db
def test_every_response_carries_a_request_id_and_a_good_one_given_is_kept():
    client = Client()
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    assert client.get("/healthz")["X-Request-ID"] != made
    assert client.get("/healthz", HTTP_X_REQUEST_ID="edge-4f2a.7")["X-Request-ID"] == "edge-4f2a.7"
    for bad in ("has space", "x" * 65, "<script>", ""):
        assert client.get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"] != bad
    refused = APIClient().generic("POST", "/api/v1/votes/", b"{}", content_type="application/json", CONTENT_LENGTH="x")
    assert refused.status_code == 400 and len(refused["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_log_lines_carry_the_request_id_plain_and_json(console):
    handler, buffer = console
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/no-such-thing/")  # django.request logs the 404 as a warning
    assert response.status_code == 404 and response.json()["error"]
    line = next(line for line in buffer.getvalue().splitlines() if "no-such-thing" in line)
    assert f"[{response['X-Request-ID']}]" in line and "WARNING django.request" in line

    from feedback.log_format import JsonFormatter

    handler.setFormatter(JsonFormatter())
    response = client.get("/api/v1/still-nothing/", HTTP_X_REQUEST_ID="trace-42")
    entry = json.loads(next(line for line in buffer.getvalue().splitlines() if "still-nothing" in line))
    assert entry["request_id"] == "trace-42" and entry["level"] == "WARNING" and entry["logger"] == "django.request"
    assert entry["message"] == "Not Found: /api/v1/still-nothing/"


def test_an_unknown_log_format_is_refused():
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CODEPREF_"))}
    result = subprocess.run(
        [".venv/bin/python" if (ROOT / ".venv").exists() else "python", "manage.py", "check"],
        cwd=ROOT, env={**environ, "LOG_FORMAT": "xml"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "LOG_FORMAT='xml': expected plain or json" in result.stderr


# --- backup and restore -----------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backup_restored_into_a_fresh_database_holds_every_vote(tmp_path, volunteer, other_volunteer):
    for user in (volunteer, other_volunteer):
        client = _voter(user)
        factories.PairFactory.create_batch(3)
        for n in range(3):
            pair = client.get("/api/v1/pairs/next/").json()["pair"]
            assert (
                client.post(
                    "/api/v1/votes/", {"pair": pair, "choice": "tie", "idempotency_key": f"r{n}"}, format="json"
                ).status_code
                == 201
            )
    votes = sorted(Vote.objects.values_list("id", "volunteer_id", "pair_id", "choice", "idempotency_key"))
    assert len(votes) == 6

    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    fresh = f"{db['NAME']}_restored_{uuid.uuid4().hex[:6]}"
    dump = tmp_path / "codepref.dump"
    backup = subprocess.run(
        ["bash", "scripts/backup.sh", f"{server}/{db['NAME']}", str(dump)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert backup.returncode == 0, backup.stderr
    assert dump.stat().st_size > 0 and not Path(f"{dump}.partial").exists()
    try:
        restore = subprocess.run(
            ["bash", "scripts/restore.sh", str(dump), f"{server}/{fresh}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert restore.returncode == 0, restore.stderr
        assert "(6 votes)" in restore.stdout
        with psycopg.connect(f"{server}/{fresh}") as conn:
            restored = sorted(
                conn.execute("SELECT id, volunteer_id, pair_id, choice, idempotency_key FROM feedback_vote").fetchall()
            )
        assert restored == votes
        again = subprocess.run(
            ["bash", "scripts/restore.sh", str(dump), f"{server}/{fresh}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 1 and "restore into a new database" in again.stderr
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
