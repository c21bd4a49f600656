"""A model version's loading and prompting settings (issue 14), checked in one place for the admin form and
``manage.py register_model``: remote code, the weights a served version names, prompt prefix, stop
sequences and the fill-in-the-middle template."""

from __future__ import annotations

from django.db import transaction

from feedback.errors import ServiceError
from feedback.models import ModelVersion
from training import fim

MAX_STOP_SEQUENCES, MAX_STOP_LENGTH = 16, 32


def stop_sequences_clean(stops, *, name: str = "stop_sequences") -> list[str]:
    """A list of stop sequences as a version or a generation request gives it; ServiceError names ``name``."""
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_LENGTH for s in stops)
    ):
        raise ServiceError(
            f"{name} must be a list of at most {MAX_STOP_SEQUENCES} strings of 1 to {MAX_STOP_LENGTH} characters"
        )
    return stops


def fim_template_clean(template: str) -> str:
    template = (template or "").strip()
    if template:
        try:
            fim.check_template(template)
        except fim.FimError as exc:
            raise ServiceError(str(exc)) from exc
    return template


@transaction.atomic
def model_version_configure(version: ModelVersion, **settings) -> ModelVersion:
    """Set some of: weights, trust_remote_code, prompt_prefix, stop_sequences, fim_template."""
    known = {"weights", "trust_remote_code", "prompt_prefix", "stop_sequences", "fim_template"}
    unknown = set(settings) - known
    if unknown:
        raise ServiceError(f"unknown model version setting(s): {', '.join(sorted(unknown))}")
    if "stop_sequences" in settings:
        settings["stop_sequences"] = stop_sequences_clean(settings["stop_sequences"])
    if "fim_template" in settings:
        settings["fim_template"] = fim_template_clean(settings["fim_template"])
    if "weights" in settings:
        settings["weights"] = (settings["weights"] or "").strip()
    for name, value in settings.items():
        setattr(version, name, value)
    if settings:
        version.save(update_fields=sorted(settings))
    return version
