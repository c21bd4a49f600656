"""Requests refused before any view reads them (bodies too large for the API, admin date lookups SQL cannot
hold), and the answer while the database is away: a 4xx or a 503 with a message, never a 500 page.
"""

from __future__ import annotations

import re
from math import ceil

from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from psycopg.errors import QueryCanceled
from redis.exceptions import RedisError

from feedback.api.throttling import TokenThrottle, rate_for, window_take
from feedback.client_ip import client_ip

ADMIN_LOGIN = "/admin/login/"

# Date parts an admin list filters by (``?created_at__year=2026``) and the values a database date can hold.
_DATE_PART = re.compile(r"__(year|iso_year|month|day|week|week_day|iso_week_day|quarter)(__(?:gte|lte|gt|lt|exact))?$")
_DATE_RANGES = {"year": (1, 9999), "iso_year": (1, 9999), "month": (1, 12), "day": (1, 31), "week": (1, 53)}
_DATE_RANGES.update({"week_day": (1, 7), "iso_week_day": (1, 7), "quarter": (1, 4)})


class RequestGuardMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/api/"):
            refused = _body_too_large(request)
        elif path == ADMIN_LOGIN and request.method == "POST":
            refused = _login_rate(request)
        elif path.startswith("/admin/") and request.GET:
            refused = _bad_date_lookup(request)
        else:
            refused = None
        return refused or self.get_response(request)

    def process_exception(self, request, exception):
        """The database unreachable or gone mid-request, a statement over DB_STATEMENT_TIMEOUT, or Redis (the
        cache, the broker) not answering within REDIS_TIMEOUT: 503 with Retry-After (JSON under /api/), and
        the next request connects again (Django's health check drops the broken connection)."""
        message = _unavailable(exception)
        if message is None:
            return None
        if request.path_info.startswith("/api/"):
            response = JsonResponse({"error": message}, status=503)
        else:
            response = HttpResponse(f"{message}\n".encode(), status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "5"
        return response


# A JSON answer loads nothing and is framed by nobody: the strictest policy, written as is (OWASP's advice for
# APIs). django-csp would build the pages' policy with a nonce for every vote's answer, a tenth of its CPU.
JSON_POLICY = "default-src 'none'; frame-ancestors 'none'"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy (settings.CONTENT_SECURITY_POLICY) on pages; ``JSON_POLICY`` on JSON answers."""

    def process_response(self, request, response):
        if response.get("Content-Type", "").startswith("application/json"):
            if CSP_HEADER not in response and not getattr(response, "_csp_exempt", False):
                response[CSP_HEADER] = JSON_POLICY
            return response
        return super().process_response(request, response)


def _unavailable(exception: BaseException) -> str | None:
    if isinstance(exception, (OperationalError, InterfaceError)):
        if isinstance(exception.__cause__, QueryCanceled):
            return "the database took too long to answer; retry shortly"
        return "the database is unavailable; retry shortly"
    if isinstance(exception, (RedisError, KombuOperationalError)):
        return "the cache or the task queue is unavailable; retry shortly"
    return None


def _login_rate(request) -> HttpResponse | None:
    """Password attempts at the admin per client address, in the token endpoint's count (API_TOKEN_RATE): the
    lock-out stops guesses at one account; this stops one address trying many."""
    wait = window_take(TokenThrottle.scope, client_ip(request), rate_for(TokenThrottle.scope) or "")
    if wait is None:
        return None
    response = HttpResponse(b"Too many login attempts from your address; wait and retry.\n", status=429)
    response["Content-Type"] = "text/plain; charset=utf-8"
    response["Retry-After"] = str(ceil(wait))
    return response


def _body_too_large(request) -> JsonResponse | None:
    limit = settings.API_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"error": "Content-Length must be a whole number of bytes"}, status=400)
    if length > limit:
        return JsonResponse({"error": f"the body is {length} bytes; the API takes at most {limit}"}, status=413)
    return None


def _bad_date_lookup(request) -> HttpResponseBadRequest | None:
    for name, values in request.GET.lists():
        match = _DATE_PART.search(name)
        if match is None:
            continue
        low, high = _DATE_RANGES[match[1]]
        for value in values:
            if not (value.isdigit() and low <= int(value) <= high):
                return HttpResponseBadRequest(f"{name} must be a whole number from {low} to {high}".encode())
    return None
