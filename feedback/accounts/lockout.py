"""The one login lock-out (django-axes, counted in the database so every process sees it) for every way in:
the allauth login page, ``/admin/login/`` and ``POST /api/v1/token/``.

Failures count per account **and** client address (``client_ip``: ``X-Forwarded-For`` only through our own
proxies). After ``LOGIN_FAILURE_LIMIT`` failures that pair is locked for ``LOGIN_COOLOFF_SECONDS``; every
further guess while locked starts the cool-off again, so a guesser who keeps going stays locked, while the
account's owner, from their own address, is never locked by someone else's guesses. The account is one key
whichever name was typed: a username or an e-mail address resolves to the account's username (case-folded),
so switching between them does not buy more guesses.

A locked-out request gets 429 with ``Retry-After``: JSON ``{"error": ...}`` under ``/api/``, a page
elsewhere.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import render


class LockoutBackend(AxesStandaloneBackend):
    """axes' check, first among the backends. Every way in from outside passes its request; a call without
    one (the test client's ``login``, a shell) has no address to count and is left to the other backends."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


MESSAGE = "too many failed logins for this account from your address; try again in {minutes} minutes"


def cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def account_key(request, credentials: dict | None) -> str | None:
    """The name failures count against: the account's username when the name (or e-mail) is known."""
    credentials = credentials or {}
    typed = credentials.get("username") or credentials.get("email") or credentials.get("login")
    if not typed or not isinstance(typed, str):
        return None
    cached = getattr(request, "_codepref_account_key", None)  # axes asks several times per attempt
    if cached and cached[0] == typed:
        return cached[1]
    name = typed.strip()[:254]
    matches = get_user_model().objects.filter(Q(username__iexact=name) | Q(email__iexact=name))
    usernames = list(matches.values_list("username", flat=True)[:2])
    key = (usernames[0] if len(usernames) == 1 else name).casefold()
    request._codepref_account_key = (typed, key)
    return key


def lockout_response(request, original_response=None, credentials=None):
    seconds = cooloff_seconds()
    message = MESSAGE.format(minutes=max(1, round(seconds / 60)))
    if request.path_info.startswith("/api/"):
        response = JsonResponse({"error": message}, status=429)
    else:
        response = render(request, "account/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response
