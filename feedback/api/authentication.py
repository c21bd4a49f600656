"""Token authentication for the API: knox's hashed, expiring tokens, looked up at most every few seconds.

knox stores only a sha512 digest of each token. Its own ``TokenAuthentication`` runs two queries per
request (the token with its user, then the user's other tokens to purge expired ones); on the vote path
that was most of the authentication cost. Here a successful lookup is kept in Django's cache for
``API_TOKEN_CACHE_SECONDS`` (default 5), keyed by the digest, never by the token itself. Every hit
re-checks the expiry; deleting a token (logout, revocation, expiry) drops its entry at once in this
process, and other processes hold theirs at most those few seconds.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions

CACHE_PREFIX = "api-token:"


def cache_seconds() -> float:
    return settings.API_TOKEN_CACHE_SECONDS


def _cache_key(digest: str) -> str:
    return CACHE_PREFIX + digest


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
        key = _cache_key(digest)
        auth_token = cache.get(key) if cache_seconds() > 0 else None
        if auth_token is None:
            auth_token = self._lookup(text, digest)
            if auth_token is None:
                raise invalid
            if auth_token.expiry is not None and auth_token.expiry <= now:
                # knox's behaviour: an expired token is deleted as it is presented.
                auth_token.delete()
                raise invalid
            if cache_seconds() > 0:
                cache.set(key, auth_token, cache_seconds())
        elif auth_token.expiry is not None and auth_token.expiry <= now:
            cache.delete(key)
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
    cache.delete(_cache_key(instance.digest))


class CachedTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: the same header as knox's."""

    target_class = CachedTokenAuthentication
    name = "tokenAuth"
