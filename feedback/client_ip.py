"""The client's address, as every limit counts it: the API throttles, the login lock-out (django-axes) and
allauth's sign-up and login rate limits all ask this one function.

``X-Forwarded-For`` is believed only as far as the proxies we run: with ``NUM_PROXIES = n`` (compose: 1, the
nginx in front of gunicorn) the address is the n-th entry from the right, the one our outermost proxy
appended; whatever a client wrote to the left of it (a rotated, made-up chain) is never read. With 0 proxies
the header is ignored and the socket's address counts.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def trusted_proxy_count() -> int:
    return int(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0)


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR") or ""
    proxies = trusted_proxy_count()
    if proxies <= 0:
        return remote
    chain = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not chain:
        return remote
    candidate = chain[-min(proxies, len(chain))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        # Our proxy writes addresses only: anything else did not come from it.
        return remote
