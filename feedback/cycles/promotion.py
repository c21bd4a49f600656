"""A cycle's policy as a model version, and its promotion to the active generator when it is not worse."""

from __future__ import annotations

from django.db import transaction

from feedback.coders.registry import model_version_register
from feedback.models import ModelVersion, TrainingRun


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


def _pass_at_1(evaluation: dict) -> tuple[float | None, float | None]:
    scores = evaluation.get("pass@1") if isinstance(evaluation, dict) else None
    if not isinstance(scores, dict):
        return None, None

    def number(value):
        return float(value) if isinstance(value, (int, float)) else None

    return number(scores.get("policy")), number(scores.get("parent"))


@transaction.atomic
def model_version_promote(*, version: ModelVersion, evaluation: dict) -> tuple[bool, str]:
    """Make ``version`` the active generator if its pass@1 is not worse than its parent's.

    Returns (activated, why). Without a pass@1 for the new policy nothing is activated: promotion needs
    evidence. Without one for the parent (no parent, or it was not evaluated) the policy's own counts.
    """
    policy, parent = _pass_at_1(evaluation)
    if policy is None:
        return False, "registered, not activated: the evaluation reported no pass@1 for it"
    if parent is not None and policy < parent:
        return False, f"registered, not activated: pass@1 {policy:.3f} is worse than the parent's {parent:.3f}"
    # One trained lineage generates: other local models step down; served endpoints are left as they are.
    others = ModelVersion.objects.filter(is_active=True, backend=ModelVersion.Backend.TRANSFORMERS)
    others.exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    against = f" (parent {parent:.3f})" if parent is not None else ""
    return True, f"activated: pass@1 {policy:.3f}{against}"
