from django.contrib.auth import get_user_model
from django.db.models import Q
from knox.models import AuthToken
from rest_framework.permissions import BasePermission

from feedback.models import Volunteer


class DenyAll(BasePermission):
    """The default: a view that does not name its permissions serves nobody."""

    def has_permission(self, request, view) -> bool:
        return False


TERMS_MESSAGE = "Accept the contribution terms first (the ranking page at /rank/ asks for them)."


class IsVolunteer(BasePermission):
    """An authenticated, active account that accepted the contribution terms (its votes are released under them).

    A token is only issued to an account that accepted them, so token requests skip that query.
    """

    message = TERMS_MESSAGE

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if isinstance(request.auth, AuthToken):
            return True
        return Volunteer.objects.filter(user=user, accepted_terms_at__isnull=False).exists()


MAINTAINER_GROUP = "maintainer"


class IsMaintainer(BasePermission):
    """Members of the "maintainer" group (and superusers), as the database says now.

    A token's user may come from another process's lookup cache, seconds old: the flags are read again here,
    so a demotion ends maintainer access at once (maintainer endpoints are not on the vote path).
    """

    message = "Maintainers only."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return (
            get_user_model()
            .objects.filter(pk=user.pk, is_active=True)
            .filter(Q(is_superuser=True) | Q(groups__name=MAINTAINER_GROUP))
            .exists()
        )
