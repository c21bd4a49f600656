"""The dataset task (queue "default")."""

from __future__ import annotations

from celery import shared_task

from feedback.datasets.hub import snapshot_push_to_hub
from feedback.datasets.quality import quality_recompute
from feedback.datasets.services import snapshot_build
from feedback.errors import ServiceError
from feedback.retries import TRANSIENT_ERRORS


@shared_task(
    name="feedback.tasks.build_snapshot",
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def build_snapshot(self, slot: str | None = None, filters: dict | None = None, snapshot_id: int | None = None) -> dict:
    """Build a dataset snapshot: a beat slot ("hourly"), a requested row, or a fresh one.

    A redelivered or retried message carries the same task id and finds the row its first run claimed.
    """
    return snapshot_build(slot=slot, filters=filters, snapshot_id=snapshot_id, task_id=self.request.id or "").as_dict()


@shared_task(name="feedback.tasks.recompute_quality", autoretry_for=TRANSIENT_ERRORS, retry_backoff=30, max_retries=3)
def recompute_quality() -> dict:
    """Quality control off the vote path: flags, trust, vote weights, adaptive k (beat, every 10 minutes)."""
    return quality_recompute()


@shared_task(name="feedback.tasks.push_snapshot_to_hub")
def push_snapshot_to_hub(snapshot_id: int, repo: str, private: bool = False) -> dict:
    """Upload a published snapshot to a Hub dataset repository; the outcome in words either way."""
    try:
        return {"ok": True, "message": snapshot_push_to_hub(snapshot_id=snapshot_id, repo=repo, private=private)}
    except ServiceError as exc:
        return {"ok": False, "message": f"push to {repo} not done: {exc}"}
