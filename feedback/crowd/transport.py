"""How the simulated volunteers reach the API: ``requests`` against a running server on this machine, or
Django's test client inside this process. Both answer ``(status, body)``; a transient failure (no
connection, a 502/503/504) is retried with the same request, so a vote's idempotency key makes it land once.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from urllib.parse import urlsplit

TRANSIENT = (502, 503, 504)
ATTEMPTS = 4


class TransportError(RuntimeError):
    """The server could not be reached, or kept failing, after every attempt."""


def loopback_url_check(url: str) -> str:
    """The URL without a trailing slash if it is http(s) on this machine (a load generator stays on loopback)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL like http://127.0.0.1:8000")
    host = parts.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"{host!r} is not this machine: the simulator only talks to loopback (127.0.0.1, ::1)")
    if parts.path.strip("/") or parts.query:
        raise ValueError(f"{url!r}: give the server's root, without a path (the API is under /api/v1/)")
    return url.rstrip("/")


class HttpApi:
    """``requests`` with one keep-alive session per thread (volunteers share connections, not tokens)."""

    name = "http"

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = loopback_url_check(base_url)
        self.timeout = timeout
        self.retries = 0
        self._local = threading.local()

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = self._local.session = requests.Session()
        return session

    def request(self, method: str, path: str, *, token: str, body: dict | None = None) -> tuple[int, dict | None]:
        import requests

        headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        for attempt in range(ATTEMPTS):
            try:
                response = self._session().request(
                    method, self.base_url + path, json=body, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in TRANSIENT:
                    return response.status_code, (response.json() if response.content else None)
                failure = f"HTTP {response.status_code}"
            self.retries += 1
            time.sleep(0.2 * 2**attempt)
        raise TransportError(f"{method} {self.base_url}{path}: {failure} after {ATTEMPTS} attempts")

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


class InProcessApi:
    """Django's test client: the same URLs, middleware and views, without a server (one thread)."""

    name = "in-process"

    def __init__(self) -> None:
        from django.conf import settings
        from django.test import Client

        hosts = [h.lstrip(".") for h in settings.ALLOWED_HOSTS if h not in ("*", "")]
        self.client = Client(SERVER_NAME=hosts[0] if hosts else "localhost")
        self.retries = 0

    def request(self, method: str, path: str, *, token: str, body: dict | None = None) -> tuple[int, dict | None]:
        kwargs = {"HTTP_AUTHORIZATION": f"Token {token}", "HTTP_ACCEPT": "application/json"}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        response = getattr(self.client, method.lower())(path, **kwargs)
        return response.status_code, (json.loads(response.content) if response.content else None)

    def close(self) -> None:
        pass
