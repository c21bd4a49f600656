"""/readyz: every part a request or a task needs, each checked; 503 naming the part that is down."""

from __future__ import annotations

import pytest
from celery import current_app
from django.db import OperationalError
from django.test import Client

from feedback import health

pytestmark = pytest.mark.django_db


def test_with_tasks_inline_every_part_is_ready(monkeypatch):
    monkeypatch.setitem(health.CHECKS, "sandbox", lambda: "rlimits")
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["checks"]["database"] == {"ok": True, "detail": "ok"}
    assert body["checks"]["broker"]["detail"].startswith("inline")
    assert body["checks"]["sandbox"] == {"ok": True, "detail": "rlimits"}


@pytest.fixture
def unreachable_broker():
    conf = current_app.conf
    before = {"task_always_eager": conf.task_always_eager, "broker_url": conf.broker_url}
    conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    yield
    conf.update(**before)


@pytest.mark.usefixtures("unreachable_broker")
def test_a_broker_that_does_not_answer_makes_it_unready(monkeypatch):
    monkeypatch.setitem(health.CHECKS, "sandbox", lambda: "rlimits")
    response = Client().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False and checks["database"]["ok"] is True
    assert checks["workers"] == {"ok": False, "detail": "not checked: no broker to reach them through"}


def test_a_database_that_fails_makes_it_unready_with_the_reason(monkeypatch):
    def down():
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", down)
    monkeypatch.setitem(health.CHECKS, "sandbox", lambda: "rlimits")
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "detail": "OperationalError: connection refused"}
