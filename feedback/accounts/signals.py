"""What follows from a change to an account: a volunteer profile for a new one, and no API token surviving a
new password, a deactivation or a demotion from maintainer or superuser."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from feedback.api.permissions import MAINTAINER_GROUP
from feedback.models import Volunteer

from .services import api_tokens_revoke

# Fields whose change ends every token the account holds (True -> False for the flags).
_REVOKING_FIELDS = {"password", "is_active", "is_superuser", "is_staff"}


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def volunteer_for_new_user(sender, instance, created, **kwargs):
    """Every account can rank: give it a Volunteer profile as it is created."""
    if created:
        Volunteer.objects.get_or_create(user=instance)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="feedback.accounts.tokens_revoke_check")
def _note_revoking_change(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None or (update_fields is not None and not _REVOKING_FIELDS & set(update_fields)):
        return  # a new account, or a save that cannot touch these fields (the login's last_login, say)
    before = (
        get_user_model().objects.filter(pk=instance.pk).values("password", "is_active", "is_superuser", "is_staff")
    ).first()
    if before is None:
        return
    instance._revoke_tokens = before["password"] != instance.password or any(
        before[flag] and not getattr(instance, flag) for flag in ("is_active", "is_superuser", "is_staff")
    )


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="feedback.accounts.tokens_revoke")
def _revoke_after_change(sender, instance, created, **kwargs):
    if getattr(instance, "_revoke_tokens", False):
        instance._revoke_tokens = False
        api_tokens_revoke(user=instance)


@receiver(m2m_changed, sender=get_user_model().groups.through, dispatch_uid="feedback.accounts.demotion")
def _revoke_on_leaving_maintainers(sender, instance, action, reverse, pk_set, **kwargs):
    """Removed from the maintainer group (from either side of the relation): the account's tokens end."""
    if action not in ("pre_remove", "pre_clear"):
        return
    group = Group.objects.filter(name=MAINTAINER_GROUP).first()
    if group is None:
        return
    if not reverse:  # user.groups.remove(...) / clear()
        if action == "pre_remove":
            leaving = group.pk in (pk_set or ())
        else:
            leaving = instance.groups.filter(pk=group.pk).exists()
        if leaving:
            api_tokens_revoke(user=instance)
    elif instance.pk == group.pk:  # group.user_set.remove(...) / clear()
        users = get_user_model().objects.filter(groups=group)
        if action == "pre_remove":
            users = users.filter(pk__in=pk_set or ())
        for user in users:
            api_tokens_revoke(user=user)
