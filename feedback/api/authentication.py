"""Token authentication for the API: knox's hashed, expiring tokens, looked up at most every few seconds.

knox stores only a sha512 digest of each token. Its own ``TokenAuthentication`` runs two queries per
request (the token with its user, then the user's other tokens to purge expired ones); on the vote path
that was most of the authentication cost. Here a successful lookup is kept in this process for
``API_TOKEN_CACHE_SECONDS`` (default 5), keyed by the digest, never by the token itself. Every hit
re-checks the expiry; deleting a token (logout, revocation, expiry) drops its entry at once in this
process, and other processes hold theirs at most those few seconds.

The cache is a plain dict of pickled tokens (each hit unpickles its own copy of the token and its user, so
no two requests share a model instance), not Django's local-memory cache: that one validated every key
character by character and took a lock on every read, a twentieth of a worker's CPU on the vote path.
"""

from __future__ import annotations

import binascii
import pickle
import time
from hmac import compare_digest

from django.conf import settings
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions

# digest -> (time.monotonic() deadline, the pickled AuthToken with its user)
_cached: dict[str, tuple[float, bytes]] = {}
MAX_CACHED_TOKENS = 50_000


def cache_seconds() -> float:
    return settings.API_TOKEN_CACHE_SECONDS


def _recall(digest: str) -> AuthToken | None:
    entry = _cached.get(digest)
    if entry is None:
        return None
    if entry[0] <= time.monotonic():
        _cached.pop(digest, None)
        return None
    return pickle.loads(entry[1])


def _remember(digest: str, auth_token: AuthToken) -> None:
    now = time.monotonic()
    if len(_cached) >= MAX_CACHED_TOKENS:
        for key, (deadline, _) in list(_cached.items()):
            if deadline <= now:
                _cached.pop(key, None)
        if len(_cached) >= MAX_CACHED_TOKENS:
            _cached.clear()
    _cached[digest] = (now + cache_seconds(), pickle.dumps(auth_token, pickle.HIGHEST_PROTOCOL))


def forget(digest: str) -> None:
    _cached.pop(digest, None)


def forget_all() -> None:
    """Drop every cached lookup in this process (tests; an operator's shell after mass revocation)."""
    _cached.clear()


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <token>``: one indexed query per token every few seconds, then the cache."""

    def authenticate_credentials(self, token: bytes):
        invalid = exceptions.AuthenticationFailed("Invalid token.")
        try:
            text = token.decode("ascii")
            if "\x00" in text or len(text) > 200:
                raise invalid
            digest = hash_token(text)
        except (UnicodeDecodeError, TypeError, binascii.Error):
            raise invalid
        now = timezone.now()
        auth_token = _recall(digest) if cache_seconds() > 0 else None
        if auth_token is None:
            auth_token = self._lookup(text, digest)
            if auth_token is None:
                raise invalid
            if auth_token.expiry is not None and auth_token.expiry <= now:
                # knox's behaviour: an expired token is deleted as it is presented.
                auth_token.delete()
                raise invalid
            if cache_seconds() > 0:
                _remember(digest, auth_token)
        elif auth_token.expiry is not None and auth_token.expiry <= now:
            forget(digest)
            raise invalid
        return self.validate_user(auth_token)

    @staticmethod
    def _lookup(token: str, digest: str) -> AuthToken | None:
        candidates = AuthToken.objects.filter(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user")
        for candidate in candidates:
            if compare_digest(digest, candidate.digest):
                return candidate
        return None


@receiver(post_delete, sender=AuthToken, dispatch_uid="feedback.api.token_cache_drop")
def _drop_cached_token(sender, instance, **kwargs):
    forget(instance.digest)


class CachedTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: the same header as knox's."""

    target_class = CachedTokenAuthentication
    name = "tokenAuth"
