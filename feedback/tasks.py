"""Celery tasks: thin wrappers that take ids and call one service. Each is safe to run twice.

Routing (settings.CELERY_TASK_ROUTES): generation -> "generation", tests -> "sandbox",
training -> "training", everything else -> "default".
"""

from __future__ import annotations

from celery import shared_task  # noqa: F401


# --- training (queue "training") ----------------------------------------------------------------
def _training_time_limits() -> tuple[int, int]:
    from django.conf import settings

    # Above the pipeline's own timeout, so that the watcher kills it and records why before Celery steps in.
    timeout = int(settings.CODEPREF["TRAINING_TIMEOUT_SECONDS"])
    return timeout + 600, timeout + 900


@shared_task(soft_time_limit=_training_time_limits()[0], time_limit=_training_time_limits()[1])
def train_cycle(recipe: str | None = None, force: bool = False) -> str:
    """One training cycle (feedback.training_cycles); refused while another runs, skipped without new data."""
    from .services import Conflict
    from .training_cycles import training_cycle_execute

    try:
        run = training_cycle_execute(recipe=recipe, force=force)
    except Conflict as exc:
        return str(exc)
    return f"cycle {run.pk} {run.state}: {run.message}"


@shared_task
def train_arena_pairs(model_version_id: int, prompt_ids: list[int]) -> int:
    """After a new policy's completions are generated: pair them against its parent's (the arena loop)."""
    from .training_cycles import arena_pairs_form

    return arena_pairs_form(model_version_id=model_version_id, prompt_ids=prompt_ids)


# --- sandbox (queue "sandbox") ------------------------------------------------------------------
@shared_task(name="feedback.tasks.run_tests")
def run_tests(completion_ids: list[int], force: bool = False) -> dict:
    """Run the completions' unit tests in the sandbox; a re-run skips those this sandbox version already ran."""
    from .evaluation import completions_run_tests

    return completions_run_tests(completion_ids=completion_ids, force=force)


# --- generation (queue "generation") ------------------------------------------------------------
@shared_task(name="feedback.tasks.generate_completions")
def generate_completions(prompt_ids: list[int], model_version_id: int, n: int = 4, params: dict | None = None) -> dict:
    """n completions per prompt from one model version, paired and queued for tests; a re-run adds nothing."""
    from .generation import completions_generate

    completions = completions_generate(prompt_ids=prompt_ids, model_version_id=model_version_id, n=n, params=params)
    return {"model_version": model_version_id, "prompts": len(set(prompt_ids)), "completions": len(completions)}


# --- datasets and housekeeping (queue "default") ------------------------------------------------
def _transient_errors() -> tuple[type[BaseException], ...]:
    # Only failures that a later attempt can get past: the database or the broker away for a moment.
    from django.db import InterfaceError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


@shared_task(
    bind=True,
    autoretry_for=_transient_errors(),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def build_snapshot(self, slot: str | None = None, filters: dict | None = None, snapshot_id: int | None = None) -> dict:
    """Build a dataset snapshot (feedback.snapshots): a beat slot ("hourly"), a requested row, or a fresh one.

    A redelivered or retried message carries the same task id and finds the row its first run claimed.
    """
    from .snapshots import snapshot_build

    return snapshot_build(slot=slot, filters=filters, snapshot_id=snapshot_id, task_id=self.request.id or "").as_dict()


@shared_task(autoretry_for=_transient_errors(), retry_backoff=5, retry_backoff_max=120, max_retries=3)
def release_expired_assignments() -> int:
    """Give back the claims of assignments that expired unanswered (beat, every 5 minutes)."""
    from .services import assignments_release_expired

    released = total = assignments_release_expired()
    while released >= 1000:  # the service releases at most 1000 per call
        released = assignments_release_expired()
        total += released
    return total
