"""A request id for every request and task, in the ``X-Request-ID`` response header and in every log line.

The id comes from the client's (or the proxy's) ``X-Request-ID`` when it is a short token, or is made here;
a Celery task logs under its task id. ``RequestIdFilter`` puts it on each log record as ``request_id``
(``-`` outside a request or task), for both log formats (``LOG_FORMAT``).
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from celery import signals
from django.core.signals import request_finished

_CURRENT: ContextVar[str] = ContextVar("request_id", default="-")
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,64}")
HEADER = "X-Request-ID"


def current() -> str:
    return _CURRENT.get()


class RequestIdMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset on the way out: Django logs a 4xx/5xx (django.request) after the middleware returns. The
        # next request sets its own, and request_finished clears it.
        _CURRENT.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _CURRENT.get()
        return True


@request_finished.connect
def _request_finished(**kwargs) -> None:
    _CURRENT.set("-")


@signals.task_prerun.connect
def _task_started(task_id=None, **kwargs) -> None:
    _CURRENT.set(task_id or "-")


@signals.task_postrun.connect
def _task_finished(**kwargs) -> None:
    _CURRENT.set("-")
