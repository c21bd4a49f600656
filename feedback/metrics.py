"""codepref's own Prometheus counters, and ``/metrics`` (with django-prometheus's request metrics when
``METRICS_REQUESTS=1``).

- ``codepref_votes_total{outcome}``: votes stored (``created``) and retries answered with the stored vote
  (``replayed``), from the API and the ranking page;
- ``codepref_tasks_total{task,state}``: Celery tasks finished (``succeeded``/``failed``/``retried``), by name;
- ``codepref_sandbox_outcomes_total{outcome}``: test outcomes stored by ``feedback.tasks.run_tests``;
- ``codepref_training_runs_total{state}``: training cycles finished, by final state.

Counters live in each process. With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty folder shared by gunicorn's
workers and the Celery workers of one host, as compose does), ``/metrics`` adds up every process's values;
without it, each process answers with its own. ``/metrics`` answers loopback clients, the addresses in
``METRICS_ALLOWED_IPS``, and requests carrying ``Authorization: Bearer <METRICS_TOKEN>``; anyone else gets 404.
"""

from __future__ import annotations

import functools
import hmac
import os

from celery import signals
from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess

VOTES = Counter("codepref_votes", "Votes recorded, by outcome (created, replayed).", ["outcome"])
TASKS = Counter("codepref_tasks", "Celery tasks finished, by task name and state.", ["task", "state"])
SANDBOX_OUTCOMES = Counter("codepref_sandbox_outcomes", "Unit-test outcomes stored, by outcome.", ["outcome"])
TRAINING_RUNS = Counter("codepref_training_runs", "Training cycles finished, by final state.", ["state"])


def vote_counted(created: bool) -> None:
    VOTES.labels(outcome="created" if created else "replayed").inc()


def training_run_counted(state: str) -> None:
    TRAINING_RUNS.labels(state=state).inc()


# --- Celery ------------------------------------------------------------------------------------
@signals.task_success.connect
def _task_succeeded(sender=None, result=None, **kwargs) -> None:
    name = getattr(sender, "name", "?")
    TASKS.labels(task=name, state="succeeded").inc()
    if name == "feedback.tasks.run_tests" and isinstance(result, dict):
        for outcome, count in result.items():  # completions_run_tests' counts: one key per outcome, and others
            if isinstance(count, int) and outcome in _outcomes():
                SANDBOX_OUTCOMES.labels(outcome=outcome).inc(count)


@signals.task_failure.connect
def _task_failed(sender=None, **kwargs) -> None:
    TASKS.labels(task=getattr(sender, "name", "?"), state="failed").inc()


@signals.task_retry.connect
def _task_retried(sender=None, **kwargs) -> None:
    TASKS.labels(task=getattr(sender, "name", "?"), state="retried").inc()


@functools.cache
def _outcomes() -> frozenset[str]:
    from feedback.models import Completion  # here: this module loads before the app registry is ready

    return frozenset(Completion.Outcome.values)


# --- the endpoint ------------------------------------------------------------------------------
def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    return request.META.get("REMOTE_ADDR") in settings.METRICS_ALLOWED_IPS


@never_cache
def metrics_view(request):
    if not _allowed(request):
        return HttpResponseNotFound(b"Not Found", content_type="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
