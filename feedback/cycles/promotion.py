"""A cycle's policy as a model version, and its promotion to the active generator when the gate says so.

The gate (``training.promotion_gate``, Django-free) compares the policy with its parent on the evaluation's
per-prompt outcomes: same prompts, same seeds. It promotes only a policy that beats its parent beyond noise, on
at least ``CODEPREF["PROMOTION_MIN_COMPLETIONS"]`` completions, without writing degenerate output more often;
a tie never promotes. Its decision and evidence are recorded on the cycle (``metrics["promotion"]``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from feedback.coders.registry import model_version_register
from feedback.models import ModelVersion, TrainingRun
from training.promotion_gate import Decision, decide_from_evaluation

INHERITED = ("trust_remote_code", "prompt_prefix", "stop_sequences")


def model_version_register_policy(*, cycle: TrainingRun, policy_dir: str, evaluation: dict) -> ModelVersion:
    """The cycle's policy as a transformers ModelVersion (once: a re-run finds the same row).

    The platform loads the new weights itself (a local folder), whatever its parent was; a parent served by an
    OpenAI-compatible server hands on its loading settings, and the folder is what a server would load to serve
    the new version (docs/training.md: vLLM). ``metrics["serve"]`` says so."""
    parent = cycle.base_model
    metrics: dict = {"evaluation": evaluation}
    if parent is not None and parent.backend == ModelVersion.Backend.OPENAI:
        metrics["serve"] = {
            "weights": policy_dir,
            "parent_endpoint": parent.base_url,
            "how": f"vllm serve {policy_dir} (then register it as an openai version with weights={policy_dir})",
        }
    version = model_version_register(
        name=f"cycle-{cycle.pk}",
        backend=ModelVersion.Backend.TRANSFORMERS,
        target=policy_dir,
        parent=parent,
        training_run=cycle,
        metrics=metrics,
    )
    if parent is not None:
        inherited = {name: getattr(parent, name) for name in INHERITED}
        if any(getattr(version, name) != value for name, value in inherited.items()):
            ModelVersion.objects.filter(pk=version.pk).update(**inherited)
            for name, value in inherited.items():
                setattr(version, name, value)
    return version


def promotion_decide(evaluation: dict) -> Decision:
    """The gate's decision on a cycle's evaluation, with the platform's evidence floor."""
    return decide_from_evaluation(
        evaluation if isinstance(evaluation, dict) else {},
        min_completions=int(settings.CODEPREF["PROMOTION_MIN_COMPLETIONS"]),
    )


@transaction.atomic
def model_version_promote(*, version: ModelVersion, evaluation: dict) -> Decision:
    """Make ``version`` the active generator if the promotion gate says so; return the gate's decision.

    Activating deactivates the other local (transformers) versions and a served parent; other served endpoints
    are left alone.
    """
    decision = promotion_decide(evaluation)
    if not decision.promote:
        return decision
    # One trained lineage generates: other local models step down, and so does the served version this one
    # was trained from (it is replaced); other served endpoints are left as they are.
    others = ModelVersion.objects.filter(is_active=True, backend=ModelVersion.Backend.TRANSFORMERS)
    others.exclude(pk=version.pk).update(is_active=False)
    if version.parent_id is not None:
        ModelVersion.objects.filter(pk=version.parent_id, backend=ModelVersion.Backend.OPENAI).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    return decision
