"""Accounts' writes: accepting the contribution terms, issuing API tokens."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

from feedback.models import ApiTokenName, Volunteer

_DEFAULT_TTL = object()


def volunteer_terms_accept(*, user, languages: list[str] | None = None) -> Volunteer:
    """The account accepts the contribution licence (its votes are released under it); ``languages``, when
    given, are the languages it knows (their prompts come first)."""
    volunteer, _ = Volunteer.objects.get_or_create(user=user)
    volunteer.accepted_terms_at = timezone.now()
    volunteer.accepted_licence = settings.CODEPREF["CONTRIBUTION_LICENCE"]
    fields = ["accepted_terms_at", "accepted_licence"]
    if languages is not None:
        volunteer.languages = list(languages)
        fields.append("languages")
    volunteer.save(update_fields=fields)
    return volunteer


def volunteer_has_accepted_terms(user) -> bool:
    return Volunteer.objects.filter(user=user, accepted_terms_at__isnull=False).exists()


@transaction.atomic
def api_token_issue(*, user, name: str = "", ttl: timedelta | None | object = _DEFAULT_TTL) -> tuple[AuthToken, str]:
    """A new knox token for ``user``: (the stored row, the token itself, shown once; only its digest is kept).

    ``ttl``: knox's TOKEN_TTL unless given; None never expires. A ``name`` is recorded for the admin. The
    user's expired tokens are cleared here, since knox leaves them until they are presented.
    """
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    expiry = knox_settings.TOKEN_TTL if ttl is _DEFAULT_TTL else ttl
    instance, token = AuthToken.objects.create(user, expiry=expiry)
    if name:
        ApiTokenName.objects.create(token=instance, name=name)
    return instance, token


def api_tokens_revoke(*, user) -> int:
    """End every API token of ``user`` (each one's cached lookup goes with it in this process); how many."""
    tokens = list(AuthToken.objects.filter(user=user))
    for token in tokens:
        token.delete()  # one by one, so that post_delete drops each cached lookup
    return len(tokens)
