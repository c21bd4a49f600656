"""The leaderboard refresh (queue "default"): beat every 10 minutes, and on demand."""

from __future__ import annotations

from celery import shared_task

from feedback.retries import TRANSIENT_ERRORS

from .services import leaderboard_refresh as refresh


@shared_task(
    name="feedback.tasks.leaderboard_refresh",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=3,
    soft_time_limit=600,
    time_limit=660,
)
def leaderboard_refresh() -> dict:
    """Recompute the model and contributors leaderboards into the Leaderboard table."""
    return refresh()
