"""Moderators suspending volunteers: a suspended volunteer's votes drop out of future snapshots (nothing is
deleted; lifting the suspension brings them back). Each action is logged (``feedback.audit``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from feedback.audit import audit_log
from feedback.errors import ServiceError
from feedback.models import Volunteer


@transaction.atomic
def volunteers_suspend(*, volunteer_ids: Iterable[int], by, reason: str = "", suspend: bool = True) -> int:
    """Suspend (or, with ``suspend=False``, reinstate) these volunteers; returns how many changed."""
    if by is None or not by.is_staff:
        raise ServiceError("only staff can suspend volunteers")
    reason = " ".join((reason or "").split())[:500]
    changed = 0
    for volunteer in Volunteer.objects.select_for_update().filter(pk__in=list(volunteer_ids)).select_related("user"):
        if (volunteer.suspended_at is not None) == suspend:
            continue
        volunteer.suspended_at = timezone.now() if suspend else None
        volunteer.save(update_fields=["suspended_at"])
        audit_log(by=by, obj=volunteer, action="suspended the volunteer" if suspend else "lifted the suspension",
                  reason=reason)  # fmt: skip
        changed += 1
    return changed
