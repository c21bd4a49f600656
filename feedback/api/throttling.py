"""Rate limits counted in Django's cache: Redis in production (``CACHE_URL``), so one count holds for every
gunicorn worker and host; per-process memory in the SQLite demo.

Each limit is a fixed-window counter: one ``INCR`` of the window's key (with its ``EXPIRE``, in one round
trip to Redis; ``add`` then ``incr`` on other caches). It is atomic, so concurrent requests in different
processes cannot read the same count and all pass (DRF's own throttles read a list of timestamps and write it
back: a race, and a list as long as the rate on every request). A window lets at most twice the rate through
across its boundary; that is the price of one small key.

Rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` entries (``"30/min"``, ``"5/hour"``), read when used,
so that a changed setting applies at once. A cache that does not answer lets requests through (logged) and
is left alone for a few seconds: a Redis outage must not turn into every request waiting for its timeout.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle

from feedback.client_ip import client_ip

log = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CACHE_PAUSE_SECONDS = 5.0
_cache_down_until = 0.0


def parse_rate(rate: str) -> tuple[int, int]:
    """``"30/min"`` -> (30, 60): requests per window, window seconds."""
    try:
        count, period = rate.split("/")
        return int(count), _PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError, IndexError):
        raise ImproperlyConfigured(f"bad rate {rate!r}: expected e.g. 30/min, 5/hour, 2/s") from None


def rate_for(scope: str) -> str | None:
    return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(scope)


def window_take(scope: str, ident: str, rate: str) -> float | None:
    """Count one request of ``ident`` in ``scope``: None if allowed, else the seconds until the window ends."""
    global _cache_down_until
    if not rate:
        return None
    limit, window = parse_rate(rate)
    now = time.time()
    if time.monotonic() < _cache_down_until:
        return None
    started = int(now // window) * window
    try:
        count = _count(f"throttle:{scope}:{ident}:{started}", window + 1)
    except Exception:
        _cache_down_until = time.monotonic() + CACHE_PAUSE_SECONDS
        log.warning("rate limits off for %.0f s: the cache did not answer", CACHE_PAUSE_SECONDS, exc_info=True)
        return None
    if count <= limit:
        return None
    return max(started + window - now, 0.001)


def _count(key: str, lifetime: int) -> int:
    """Add one to ``key`` (created with ``lifetime`` seconds to live) and return the count."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # One round trip (Django's incr asks whether the key exists first, and add is another).
        full = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(full, write=True).pipeline(transaction=False)
        pipe.incr(full)
        pipe.expire(full, lifetime)
        return pipe.execute()[0]
    backend.add(key, 0, timeout=lifetime)
    try:
        return backend.incr(key)
    except ValueError:  # the key expired between add and incr: a new window
        backend.add(key, 1, timeout=lifetime)
        return 1


class CountingThrottle(BaseThrottle):
    """A DRF throttle over ``window_take``; subclasses name the scope and whom a request counts against."""

    scope = ""

    def ident(self, request, view) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self._wait = None
        rate = rate_for(self.scope)
        ident = self.ident(request, view) if rate else None
        if ident is None:
            return True
        self._wait = window_take(self.scope, ident, rate)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class AnonThrottle(CountingThrottle):
    """Requests without an account, per client address."""

    scope = "anon"

    def ident(self, request, view):
        return None if request.user and request.user.is_authenticated else client_ip(request)


class UserThrottle(CountingThrottle):
    """Requests with an account (token or session), per account."""

    scope = "user"

    def ident(self, request, view):
        return str(request.user.pk) if request.user and request.user.is_authenticated else None


class TokenThrottle(CountingThrottle):
    """``POST /api/v1/token/`` (and ``/admin/login/``, in ``middleware.py``), per client address; the lock-out
    counts per account and address."""

    scope = "token"

    def ident(self, request, view):
        return client_ip(request)


class VoteThrottle(CountingThrottle):
    """Votes per volunteer, the API's and the page's together (``vote_rate_wait``)."""

    scope = "votes"

    def ident(self, request, view):
        return str(request.user.pk) if request.user and request.user.is_authenticated else None


def vote_rate_wait(user) -> float | None:
    """For the ranking page: None if ``user`` may vote now, else the seconds to wait (same count as the API)."""
    return window_take(VoteThrottle.scope, str(user.pk), rate_for(VoteThrottle.scope))
