"""Moderators' actions, logged as Django admin log entries (``LogEntry``): who did what to which object, and
why. They show in each object's history in the admin and in the admin's recent actions."""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType


def audit_log(*, by, obj, action: str, reason: str = "") -> LogEntry:
    """Record ``action`` ("hid the prompt", "suspended the volunteer") on ``obj`` by the user ``by``."""
    message = action + (f": {reason}" if reason else "")
    return LogEntry.objects.create(
        user_id=by.pk,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=CHANGE,
        change_message=message[:2000],
    )
