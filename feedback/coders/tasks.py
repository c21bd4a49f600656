"""Generation (queue "generation") and sandbox (queue "sandbox") tasks."""

from __future__ import annotations

from celery import shared_task

from .generation import completions_generate
from .verdicts import completions_run_tests


@shared_task(name="feedback.tasks.run_tests")
def run_tests(completion_ids: list[int], force: bool = False) -> dict:
    """Run the completions' unit tests in the sandbox; a re-run skips those this sandbox version already ran."""
    return completions_run_tests(completion_ids=completion_ids, force=force)


@shared_task(name="feedback.tasks.generate_completions")
def generate_completions(prompt_ids: list[int], model_version_id: int, n: int = 4, params: dict | None = None) -> dict:
    """n completions per prompt from one model version, paired and queued for tests; a re-run adds nothing."""
    completions = completions_generate(prompt_ids=prompt_ids, model_version_id=model_version_id, n=n, params=params)
    return {"model_version": model_version_id, "prompts": len(set(prompt_ids)), "completions": len(completions)}
