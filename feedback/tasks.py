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
