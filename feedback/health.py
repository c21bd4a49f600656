"""Liveness (``/healthz``: the process answers, and so does the database) and readiness (``/readyz``: every
part a request or a task needs, each checked with a short timeout, answered as JSON, 503 when one is down)."""

from __future__ import annotations

from celery import current_app
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from training.sandbox import isolation_available


@never_cache
def healthz(request):
    """Liveness for load balancers and compose: the process answers and the database does too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _broker() -> str:
    if current_app.conf.task_always_eager:
        return "inline (tasks run in the web process)"
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def _workers() -> str:
    if current_app.conf.task_always_eager:
        return "inline (tasks run in the web process)"
    answers = current_app.control.ping(timeout=1.0)
    if not answers:
        raise RuntimeError("no worker answered a ping within 1 s")
    return f"{len(answers)} answering"


CHECKS = {"database": _database, "broker": _broker, "workers": _workers, "sandbox": isolation_available}


@never_cache
def readyz(request):
    results, ready = {}, True
    for name, check in CHECKS.items():
        if name == "workers" and not results["broker"]["ok"]:
            ready = False
            results[name] = {"ok": False, "detail": "not checked: no broker to reach them through"}
            continue
        try:
            results[name] = {"ok": True, "detail": check()}
        except Exception as exc:  # every failure is an answer here, not an error page
            ready = False
            results[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    return JsonResponse({"ready": ready, "checks": results}, status=200 if ready else 503)
