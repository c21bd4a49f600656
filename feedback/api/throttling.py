"""Rate limits counted in Django's cache: Redis in production (``CACHE_URL``), so one count holds for every
gunicorn worker and host; per-process memory in the SQLite demo.

Each limit is a fixed-window counter: one ``INCR`` of the window's key, which a new key's ``EXPIRE`` follows
(every limit of a request in one script, one command to Redis; ``add`` then ``incr`` on other caches). It is
atomic, so concurrent requests in different processes cannot read the same count and all pass (DRF's own
throttles read a list of timestamps and write it back: a race, and a list as long as the rate on every
request). A window lets at most twice the rate through across its boundary; that is the price of one small
key.

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
    return windows_take([(scope, ident, rate)])


def windows_take(takes: list[tuple[str, str, str | None]]) -> float | None:
    """Count one request in each (scope, ident, rate), in one round trip to the cache: None if every limit
    allows it, else the longest wait among those exceeded. A limit without a rate is not counted."""
    global _cache_down_until
    takes = [take for take in takes if take[2]]
    if not takes or time.monotonic() < _cache_down_until:
        return None
    now = time.time()
    windows = []
    for scope, ident, rate in takes:
        limit, window = parse_rate(rate)
        started = int(now // window) * window
        windows.append((f"throttle:{scope}:{ident}:{started}", window + 1, limit, started + window))
    try:
        counts = _count([(key, lifetime) for key, lifetime, _limit, _end in windows])
    except Exception:
        _cache_down_until = time.monotonic() + CACHE_PAUSE_SECONDS
        log.warning("rate limits off for %.0f s: the cache did not answer", CACHE_PAUSE_SECONDS, exc_info=True)
        return None
    waits = [end - now for (_key, _life, limit, end), count in zip(windows, counts, strict=True) if count > limit]
    return max(max(waits), 0.001) if waits else None


# One call for every window: INCR each key, and give a new key (count 1) its lifetime, atomically.
_TAKE_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then redis.call('EXPIRE', key, ARGV[i]) end
    counts[i] = count
end
return counts
"""


def _count(keys: list[tuple[str, int]]) -> list[int]:
    """Add one to each key (created with its lifetime in seconds) and return the counts."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # One command for all of them, run by Redis as one script (EVALSHA): Django's incr asks whether the key
        # exists first and add is another call; a pipeline of INCR + EXPIRE per key cost more CPU to pack and
        # parse here than the script's one command.
        return _take_script(backend)(keys=[backend.make_key(key) for key, _ in keys], args=[life for _, life in keys])
    return [_count_one(backend, key, lifetime) for key, lifetime in keys]


def _take_script(backend: RedisCache):
    """The counting script on the backend's Redis client, both made once: Django's ``get_client`` builds a new
    client on every call, which cost more CPU than the round trip. ``caches`` gives each thread its own
    backend, so each its own client. redis-py's Script loads the script again if Redis forgot it."""
    script = getattr(backend, "_codepref_take", None)
    if script is None:
        script = backend._cache.get_client(write=True).register_script(_TAKE_SCRIPT)
        backend._codepref_take = script
    return script


def _count_one(backend, key: str, lifetime: int) -> int:
    backend.add(key, 0, timeout=lifetime)
    try:
        return backend.incr(key)
    except ValueError:  # the key expired between add and incr: a new window
        backend.add(key, 1, timeout=lifetime)
        return 1


class CountingThrottle(BaseThrottle):
    """A DRF throttle over ``windows_take``: subclasses name the scopes and whom a request counts against;
    the scopes of one throttle are counted in one round trip."""

    scopes: tuple[str, ...] = ()

    def ident(self, request, view) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self._wait = None
        rates = [(scope, rate_for(scope)) for scope in self.scopes]
        ident = self.ident(request, view) if any(rate for _scope, rate in rates) else None
        if ident is None:
            return True
        self._wait = windows_take([(scope, ident, rate) for scope, rate in rates])
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class AnonThrottle(CountingThrottle):
    """Requests without an account, per client address."""

    scopes = ("anon",)

    def ident(self, request, view):
        return None if request.user and request.user.is_authenticated else client_ip(request)


class UserThrottle(CountingThrottle):
    """Requests with an account (token or session), per account."""

    scopes = ("user",)

    def ident(self, request, view):
        return str(request.user.pk) if request.user and request.user.is_authenticated else None


class TokenThrottle(CountingThrottle):
    """``POST /api/v1/token/`` (and ``/admin/login/``, in ``middleware.py``), per client address; the lock-out
    counts per account and address."""

    scope = "token"
    scopes = (scope,)

    def ident(self, request, view):
        return client_ip(request)


class VoteThrottle(UserThrottle):
    """Votes per volunteer, the API's and the page's together (``vote_rate_wait``); counted with the
    volunteer's requests (``UserThrottle``) in the same round trip."""

    scope = "votes"
    scopes = ("user", scope)


def vote_rate_wait(user) -> float | None:
    """For the ranking page: None if ``user`` may vote now, else the seconds to wait (same count as the API)."""
    return window_take(VoteThrottle.scope, str(user.pk), rate_for(VoteThrottle.scope))
