"""Training tasks (queue "training") and the arena chain that follows a promoted model."""

from __future__ import annotations

from celery import chain, shared_task
from django.conf import settings

from feedback.coders.tasks import generate_completions
from feedback.cycles.arena import arena_pairs_form
from feedback.cycles.services import training_cycle_execute
from feedback.errors import Conflict


def _training_time_limits() -> tuple[int, int]:
    # Above the pipeline's own timeout, so that the watcher kills it and records why before Celery steps in.
    timeout = int(settings.CODEPREF["TRAINING_TIMEOUT_SECONDS"])
    return timeout + 600, timeout + 900


@shared_task(
    name="feedback.tasks.train_cycle",
    soft_time_limit=_training_time_limits()[0],
    time_limit=_training_time_limits()[1],
)
def train_cycle(recipe: str | None = None, force: bool = False) -> str:
    """One training cycle; refused while another runs, skipped without new data."""
    try:
        run = training_cycle_execute(recipe=recipe, force=force)
    except Conflict as exc:
        return str(exc)
    return f"cycle {run.pk} {run.state}: {run.message}"


@shared_task(name="feedback.tasks.train_arena_pairs")
def train_arena_pairs(model_version_id: int, prompt_ids: list[int]) -> int:
    """After a new policy's completions are generated: pair them against its parent's (the arena loop)."""
    return arena_pairs_form(model_version_id=model_version_id, prompt_ids=prompt_ids)


@shared_task(name="feedback.tasks.train_arena_generation")
def train_arena_generation(model_version_id: int, prompt_ids: list[int], samples: int) -> None:
    """Completions from the new policy on the generation queue, then its pairs against its parent.

    Sent by name from the cycle after commit; the chain of tasks lives here, with the tasks.
    """
    chain(
        generate_completions.si(prompt_ids, model_version_id, samples, {}),
        train_arena_pairs.si(model_version_id, prompt_ids),
    ).delay()
