"""The model registry: versions of generators (local transformers, OpenAI-compatible servers, imported).

Completions name the version that wrote them; training cycles register their policies here.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction

from feedback.errors import Conflict, ServiceError
from feedback.models import ModelVersion


def model_version_register(
    *,
    name: str,
    backend: str,
    target: str,
    base_url: str = "",
    parent: ModelVersion | None = None,
    training_run=None,
    activate: bool = False,
    metrics: dict | None = None,
) -> ModelVersion:
    """Add a model version, or return the one of that name if it is the same generator (idempotent).

    The same name for a different backend or target is a Conflict: completions name their generator.
    """
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ServiceError("name must be 1 to 200 characters")
    if backend not in ModelVersion.Backend.values:
        raise ServiceError(f"backend must be one of {', '.join(ModelVersion.Backend.values)}; got {backend!r}")
    target = (target or "").strip()
    base_url = (base_url or "").strip()
    if backend != ModelVersion.Backend.IMPORTED and not target:
        raise ServiceError(f"a {backend} model version needs a target (a folder, hub id or served model name)")
    if backend == ModelVersion.Backend.OPENAI and base_url and not base_url.startswith(("http://", "https://")):
        raise ServiceError(f"base_url must start with http:// or https://; got {base_url!r}")
    with transaction.atomic():
        version, created = ModelVersion.objects.select_for_update().get_or_create(
            name=name,
            defaults={
                "backend": backend,
                "target": target,
                "base_url": base_url,
                "parent": parent,
                "training_run": training_run,
                "is_active": activate,
                "metrics": metrics or {},
            },
        )
        if not created:
            if (version.backend, version.target, version.base_url) != (backend, target, base_url):
                raise Conflict(
                    f"model version {name!r} already exists for {version.backend} {version.target!r}; "
                    "choose another name"
                )
            changed = []
            if metrics and version.metrics != metrics:
                version.metrics, changed = metrics, [*changed, "metrics"]
            if activate and not version.is_active:
                version.is_active, changed = True, [*changed, "is_active"]
            if changed:
                version.save(update_fields=changed)
    return version


def model_version_activate(*, model_version_id: int, active: bool = True) -> ModelVersion:
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        raise ServiceError(f"model version {model_version_id} does not exist")
    if active and version.backend == ModelVersion.Backend.IMPORTED:
        raise ServiceError(f"model version {version.name!r} holds imported completions; it cannot be active")
    ModelVersion.objects.filter(pk=version.pk).update(is_active=active)
    version.is_active = active
    return version


def model_version_bootstrap(
    *, out: str | Path | None = None, preset: str = "demo", seed: int = 0, activate: bool = True, **build_options
) -> ModelVersion:
    """Build (or find cached) the bootstrap model and register it as a transformers model version."""
    from training import bootstrap

    out = Path(out or settings.CODEPREF["MODEL"])
    try:
        result = bootstrap.build(out, preset=preset, seed=seed, **build_options)
    except ValueError as exc:
        raise ServiceError(str(exc))
    keep = ("preset", "seed", "steps", "stopped_by", "final_loss", "val_loss", "params", "seconds")
    return model_version_register(
        name=f"bootstrap-{preset}-seed{seed}",
        backend=ModelVersion.Backend.TRANSFORMERS,
        target=str(out),
        activate=activate,
        metrics={"bootstrap": {k: result.info.get(k) for k in keep}},
    )


def model_version_default(*, preset: str = "demo", seed: int = 0) -> ModelVersion:
    """The generator named by settings CODEPREF["MODEL"], registered and active.

    A folder path is where the bootstrap model lives: built there once, unless the folder already holds
    some other transformers model, which is then used as it is. Anything else is a hub id.
    """
    from training.bootstrap import INFO_FILE

    model = settings.CODEPREF["MODEL"]
    path = Path(model).expanduser()
    is_path = path.is_absolute() or model.startswith((".", "~")) or path.is_dir()
    if is_path and not ((path / "config.json").exists() and not (path / INFO_FILE).exists()):
        return model_version_bootstrap(out=path, preset=preset, seed=seed)
    name = f"default:{model}"[:200]
    return model_version_register(name=name, backend=ModelVersion.Backend.TRANSFORMERS, target=model, activate=True)
