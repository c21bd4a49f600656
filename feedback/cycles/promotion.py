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


def model_version_register_policy(*, cycle: TrainingRun, policy_dir: str, evaluation: dict) -> ModelVersion:
    """The cycle's policy as a transformers ModelVersion (once: a re-run finds the same row)."""
    return model_version_register(
        name=f"cycle-{cycle.pk}",
        backend=ModelVersion.Backend.TRANSFORMERS,
        target=policy_dir,
        parent=cycle.base_model,
        training_run=cycle,
        metrics={"evaluation": evaluation},
    )


def promotion_decide(evaluation: dict) -> Decision:
    """The gate's decision on a cycle's evaluation, with the platform's evidence floor."""
    return decide_from_evaluation(
        evaluation if isinstance(evaluation, dict) else {},
        min_completions=int(settings.CODEPREF["PROMOTION_MIN_COMPLETIONS"]),
    )


@transaction.atomic
def model_version_promote(*, version: ModelVersion, evaluation: dict) -> Decision:
    """Make ``version`` the active generator if the promotion gate says so; return the gate's decision.

    Activating deactivates the other local (transformers) versions; served endpoints are left alone.
    """
    decision = promotion_decide(evaluation)
    if not decision.promote:
        return decision
    # One trained lineage generates: other local models step down; served endpoints are left as they are.
    others = ModelVersion.objects.filter(is_active=True, backend=ModelVersion.Backend.TRANSFORMERS)
    others.exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    return decision
