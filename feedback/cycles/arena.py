"""The arena loop: completions from a promoted policy, paired against its parent's, reach volunteers."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count

from feedback import dispatch
from feedback.coders.pairing import pairs_form_for_model
from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, Prompt

ARENA_SAMPLES = 2  # completions per prompt from a new policy: one self pair, and arena pairs


def arena_prompt_ids(*, version: ModelVersion, limit: int) -> list[int]:
    """Prompts for a new policy, newest first: those its parent answered (so new-vs-old pairs can form),
    then others; only prompts with room for two more pairs under MAX_PAIRS_PER_PROMPT."""
    room = Prompt.objects.annotate(pairs_count=Count("pairs")).filter(
        pairs_count__lte=int(settings.CODEPREF["MAX_PAIRS_PER_PROMPT"]) - ARENA_SAMPLES
    )
    ids: list[int] = []
    if version.parent_id:
        answered = Completion.objects.filter(model_version_id=version.parent_id).values("prompt_id")
        ids = list(room.filter(pk__in=answered).order_by("-pk").values_list("pk", flat=True)[:limit])
    if len(ids) < limit:
        ids.extend(room.exclude(pk__in=ids).order_by("-pk").values_list("pk", flat=True)[: limit - len(ids)])
    return ids


def arena_generation_enqueue(*, version_id: int) -> None:
    """Completions from the new policy on the generation queue, then pairs of it against its parent.

    ``completions_generate`` pairs by the PAIRING_POLICY setting; the follow-up task forms the arena
    (new-versus-parent) pairs whatever that setting says.
    """
    version = ModelVersion.objects.get(pk=version_id)
    prompt_ids = arena_prompt_ids(version=version, limit=int(settings.CODEPREF["TRAINING_ARENA_PROMPTS"]))
    if not prompt_ids:
        return
    dispatch.enqueue(
        "feedback.tasks.train_arena_generation",
        model_version_id=version.pk,
        prompt_ids=prompt_ids,
        samples=ARENA_SAMPLES,
        on_commit=False,
    )


def arena_pairs_form(*, model_version_id: int, prompt_ids: list[int]) -> int:
    """Pairs of the version's completions against its parent's (and other active versions'); returns how many."""
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        raise ServiceError(f"model version {model_version_id} does not exist")
    formed = 0
    for prompt in Prompt.objects.filter(pk__in=prompt_ids):
        formed += len(pairs_form_for_model(prompt=prompt, model_version=version, policy="arena"))
    return formed
