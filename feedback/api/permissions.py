from rest_framework.permissions import BasePermission


class DenyAll(BasePermission):
    """The default: a view that does not name its permissions serves nobody."""

    def has_permission(self, request, view) -> bool:
        return False


class IsVolunteer(BasePermission):
    """An authenticated, active account with a volunteer profile."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)


MAINTAINER_GROUP = "maintainer"


class IsMaintainer(BasePermission):
    """Members of the "maintainer" group (and superusers)."""

    message = "Maintainers only."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return user.is_superuser or user.groups.filter(name=MAINTAINER_GROUP).exists()
