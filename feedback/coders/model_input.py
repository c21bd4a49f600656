"""What a model version is sent for a prompt: its prompt prefix, the prompt, and for a fill-in-the-middle
prompt (one with a suffix) the version's FIM template around the gap (training/fim.py).

A served model without a template gets the suffix as the completions API's ``suffix`` parameter (OpenAI's
own); a local model without a template and without StarCoder's tokens cannot fill a gap, and the request is
refused naming the prompts, rather than generating as if the suffix were not there.
"""

from __future__ import annotations

from typing import NamedTuple

from feedback.errors import ServiceError
from feedback.models import ModelVersion, Prompt
from training import fim


class Row(NamedTuple):
    text: str  # what the model is sent (prefix + prompt, or the FIM string)
    key: str  # the sample's request key (its seed)
    stop: tuple[str, ...]
    suffix: str | None  # only for a served model that takes the suffix as a parameter


def version_fim_template(version: ModelVersion, *, tokenizer=None) -> str | None:
    """The version's own template, else StarCoder's when its (local) tokenizer has the tokens, else None."""
    if version.fim_template.strip():
        try:
            return fim.check_template(version.fim_template.strip())
        except fim.FimError as exc:
            raise ServiceError(f"model version {version.name!r}: {exc}") from exc
    return fim.template_for_tokenizer(tokenizer) if tokenizer is not None else None


def check_can_fill(version: ModelVersion, prompts: list[Prompt], *, template: str | None, suffix_parameter: bool):
    gaps = [p for p in prompts if p.suffix.strip()]
    if gaps and template is None and not suffix_parameter:
        names = ", ".join(str(p) for p in gaps[:5])
        raise ServiceError(
            f"model version {version.name!r} cannot fill in the middle (no FIM template, and its tokenizer has no "
            f"FIM tokens): prompt(s) {names} have a suffix. Set the version's fim_template, or use another model"
        )


def rows_for(
    version: ModelVersion,
    prompts: list[Prompt],
    keys: list[str],
    stops: list[tuple[str, ...]],
    *,
    template: str | None,
    suffix_parameter: bool,
) -> list[Row]:
    """One row per sample. ``suffix_parameter``: the backend takes a suffix parameter when there is no template."""
    check_can_fill(version, prompts, template=template, suffix_parameter=suffix_parameter)
    prefix = version.prompt_prefix or ""
    rows = []
    for prompt, key, stop in zip(prompts, keys, stops, strict=True):
        if not prompt.suffix.strip():
            rows.append(Row(prefix + prompt.text, key, stop, None))
        elif template is not None:
            rows.append(Row(fim.build(prefix + prompt.text, prompt.suffix, template), key, tuple(fim.FIM_STOP), None))
        else:
            rows.append(Row(prefix + prompt.text, key, tuple(fim.FIM_STOP), prompt.suffix))
    return rows
