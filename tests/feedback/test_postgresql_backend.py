"""The PostgreSQL backend's health check: no round trip for a healthy connection, a fresh one after the
server ended the old one (``pg_terminate_backend``), and no failed request because of it."""

from __future__ import annotations

import select
import time
from unittest import mock

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _terminate_backend() -> None:
    """End this connection's server process from another connection, and wait until its socket shows it."""
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"], dbname=settings["NAME"],
        autocommit=True,
    ) as other:  # fmt: skip
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    deadline = time.monotonic() + 5
    while not poller.poll(50):
        assert time.monotonic() < deadline, "the terminated backend's socket never became readable"


def _check() -> None:
    connection.health_check_done = False
    connection.close_if_health_check_failed()


def test_the_engine_is_ours():
    assert connection.settings_dict["ENGINE"] == "feedback.postgresql"
    assert connection.health_check_enabled


def test_a_healthy_idle_connection_is_checked_without_a_query():
    connection.ensure_connection()
    raw = connection.connection
    with mock.patch.object(type(raw), "cursor", side_effect=AssertionError("the check ran a query")):
        _check()
    assert connection.connection is raw  # kept


def test_a_connection_inside_a_transaction_is_checked_with_a_query():
    connection.ensure_connection()
    raw = connection.connection
    raw.execute("BEGIN")
    try:
        with mock.patch.object(type(raw), "cursor", side_effect=psycopg.OperationalError("down")) as cursor:
            assert connection.is_usable() is False
        assert cursor.called
    finally:
        raw.execute("ROLLBACK")


def test_a_terminated_backend_is_replaced_before_the_next_query():
    connection.ensure_connection()
    old_pid = connection.connection.info.backend_pid
    _terminate_backend()
    _check()
    assert connection.connection is None  # closed by the check, not by a failed query
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


def test_a_request_after_the_backend_was_terminated_succeeds(client):
    """What a volunteer sees: the request after a server-side disconnect is answered, not a 500.

    Django's test client leaves out the check that a served request starts with (``request_started`` ->
    ``close_old_connections``), so the test sends that signal itself first, as the WSGI handler does.
    """
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_started

    from feedback.models import Volunteer

    user = get_user_model().objects.create_user("hc", password="pw")
    Volunteer.objects.filter(user=user).update(accepted_terms_at="2026-01-01T00:00:00Z", accepted_licence="x")
    client.force_login(user)
    assert client.get("/api/v1/pairs/next/").status_code == 204
    _terminate_backend()
    request_started.send(sender=WSGIHandler, environ={})
    response = client.get("/api/v1/pairs/next/")
    assert response.status_code == 204, response.content
