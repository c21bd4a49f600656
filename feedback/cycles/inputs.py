"""What a cycle trains on: a dataset snapshot with enough new preferences, and the base model."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from feedback.datasets.services import snapshot_build
from feedback.errors import ServiceError
from feedback.models import DatasetSnapshot, ModelVersion, TrainingRun

from .runs import Progress, say

logger = logging.getLogger(__name__)


def snapshot_for_cycle(progress: Progress | None) -> DatasetSnapshot | None:
    """A snapshot of the votes as they are now, or the latest published one when that cannot be built.

    The build is skipped (and the last snapshot returned) when no vote was added or removed since it.
    """
    try:
        result = snapshot_build(slot=f"training:{timezone.now():%Y-%m-%dT%H:%M:%S}")
    except Exception as exc:  # a failed build must not stop training on the last good snapshot
        logger.warning("snapshot build for a training cycle failed", exc_info=True)
        say(progress, f"snapshot build failed ({exc!r}); using the latest published snapshot")
    else:
        snapshot = result.snapshot
        if snapshot is not None and snapshot.state == DatasetSnapshot.State.PUBLISHED:
            return snapshot
        reason = result.reason or "not published"
        say(progress, f"snapshot build gave no published snapshot ({reason}); using the latest published one")
    return DatasetSnapshot.objects.filter(state=DatasetSnapshot.State.PUBLISHED).order_by("-version").first()


def preference_rows(snapshot: DatasetSnapshot | None) -> int:
    """How many preference (chosen/rejected) rows a snapshot holds, train and test, from its counts."""
    if snapshot is None:
        return 0
    counts = snapshot.counts or {}
    if "preference_train" in counts or "preference_test" in counts:
        return int(counts.get("preference_train") or 0) + int(counts.get("preference_test") or 0)
    value = counts.get("preference")
    return int(value) if isinstance(value, int) else 0


def last_successful_cycle() -> TrainingRun | None:
    return (
        TrainingRun.objects.filter(stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.SUCCEEDED)
        .select_related("snapshot")
        .order_by("-finished_at", "-pk")
        .first()
    )


def new_preferences(snapshot: DatasetSnapshot | None) -> tuple[int, TrainingRun | None]:
    """Preference rows in ``snapshot`` beyond those of the snapshot the last successful cycle trained on."""
    last = last_successful_cycle()
    if snapshot is None:
        return 0, last
    if last is None or last.snapshot is None:
        return preference_rows(snapshot), last
    if last.snapshot_id == snapshot.pk or snapshot.last_vote_id <= last.snapshot.last_vote_id:
        return 0, last
    return max(0, preference_rows(snapshot) - preference_rows(last.snapshot)), last


TRAINABLE = (ModelVersion.Backend.TRANSFORMERS, ModelVersion.Backend.OPENAI)


def base_model() -> tuple[ModelVersion | None, str]:
    """The version a cycle trains from and its weights: the newest active local or served version, else the
    bootstrap model. A served (OpenAI-compatible) version is trained from the weights it names
    (``ModelVersion.weights``); one that names none cannot be trained and the cycle fails saying so, rather
    than silently training something else."""
    active = ModelVersion.objects.filter(is_active=True, backend__in=TRAINABLE).order_by("-created_at").first()
    if active is not None and active.backend == ModelVersion.Backend.OPENAI:
        if not active.weights.strip():
            raise ServiceError(
                f"cannot train the active model version {active.name!r}: it is served by an OpenAI-compatible "
                "endpoint and names no weights. Set its weights (the folder or hub id the server loads) in the "
                "admin, or activate a local version"
            )
        return active, active.weights.strip()
    if active is not None and active.target:
        return active, active.target
    bootstrap = str(settings.CODEPREF["MODEL"])
    registered = (
        ModelVersion.objects.filter(backend=ModelVersion.Backend.TRANSFORMERS, target=bootstrap)
        .order_by("created_at")
        .first()
    )
    return registered, bootstrap
