"""Ranking's housekeeping task (queue "default")."""

from __future__ import annotations

from celery import shared_task

from feedback.retries import TRANSIENT_ERRORS

from .claims import assignments_release_expired


@shared_task(
    name="feedback.tasks.release_expired_assignments",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=3,
)
def release_expired_assignments() -> int:
    """Give back the claims of assignments that expired unanswered (beat, every 5 minutes)."""
    released = total = assignments_release_expired()
    while released >= 1000:  # the service releases at most 1000 per call
        released = assignments_release_expired()
        total += released
    return total
