"""python manage.py create_maintainer_token USER [--name N] [--days D] [--grant]

Creates a knox API token for a maintainer and prints it once (only its digest is stored). --days sets the
expiry (default: REST_KNOX TOKEN_TTL; 0 = never). --grant first adds the user to the "maintainer" group.
Revoke a token by deleting it in the admin (Knox: Auth tokens).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from feedback.accounts.services import api_token_issue
from feedback.api.permissions import MAINTAINER_GROUP


class Command(BaseCommand):
    help = "Create a named, expiring API token for a maintainer and print it once."

    def add_arguments(self, parser):
        parser.add_argument("user", help="Username of the maintainer.")
        parser.add_argument("--name", default="", help='What the token is for (shown in the admin), e.g. "CI export".')
        parser.add_argument("--days", type=int, default=None, help="Days until it expires (0: never).")
        parser.add_argument("--grant", action="store_true", help='Add the user to the "maintainer" group first.')

    def handle(self, *args, user: str, name: str, days: int | None, grant: bool, **options):
        if days is not None and days < 0:
            raise CommandError("--days must be 0 (never expires) or more")
        if len(name) > 100:
            raise CommandError("--name must be at most 100 characters")
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"no user {user!r}")
        if not account.is_active:
            raise CommandError(f"user {user!r} is not active")
        with transaction.atomic():
            if grant:
                account.groups.add(Group.objects.get_or_create(name=MAINTAINER_GROUP)[0])
            elif not (account.is_superuser or account.groups.filter(name=MAINTAINER_GROUP).exists()):
                raise CommandError(
                    f"user {user!r} is not a maintainer: add them to the {MAINTAINER_GROUP!r} group, or pass --grant"
                )
            ttl = {} if days is None else {"ttl": timedelta(days=days) if days else None}
            instance, token = api_token_issue(user=account, name=name or "command line", **ttl)
        expires = instance.expiry.isoformat() if instance.expiry else "never"
        self.stderr.write(f"token {name or 'command line'!r} for {user}, expires {expires}; it is shown only once:")
        self.stdout.write(token)
