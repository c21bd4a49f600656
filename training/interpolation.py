"""A trained policy's weights moved back part of the way towards the model it started from (WiSE-FT).

A policy stage (sft, dpo, online_rl) with ``--interpolate_with BASE --interpolation_weight W`` saves, in place of
its trained weights theta, ``W * theta + (1 - W) * theta_BASE``: the weight-space ensemble of Wortsman et al.,
"Robust fine-tuning of zero-shot models" (2022). Fine-tuning on a few dozen rows buys its gain with damage
elsewhere (in runs T-V the ladder's DPO models wrote 2.5-11.7% unparseable samples on unseen templates, against
their parents' 0.5-1.6%); halfway back to the parent the rate was 0.2-1.7% in runs X-Z and AA, where the parents
wrote 0.1-2.1% (bench/README.md).

Both models are loaded on the CPU in their saved dtype, so the step needs about twice the model's size in memory
(a 15B model in bf16: about 60 GB); it runs once, after training, on the main process.

The training cycle sets BASE to its parent (``merge_with_parent: {dpo: 0.5}`` in the pipeline recipe), so the
stage's folder, and what the next stage starts from, is the interpolated model. With ``--interpolated_output_dir
DIR`` (the recipe's ``merge_beside: true``) the mix is saved to DIR instead, and the stage's own folder keeps the
trained weights for the next stage to start from: in runs AB-AG, GRPO from the halfway model gained less than GRPO
from the DPO model itself in all 4 cycles that compare (bench/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

POLICY_STAGES = ("sft", "dpo", "online_rl")
MERGE_EXAMPLE = '{"dpo": 0.5}'


class InterpolationError(ValueError):
    pass


def check_weight(weight: float) -> None:
    """The trained weights' share must be in (0, 1]: 0 would throw the training away, above 1 extrapolates."""
    if not 0.0 < weight <= 1.0:
        raise InterpolationError(f"--interpolation_weight must be in (0, 1]; got {weight}")


def merge_weights(value, stages: list[str], *, beside: bool = False) -> dict[str, float]:
    """The pipeline's ``merge_with_parent`` (already parsed from JSON or YAML) as {stage: weight}: policy stages
    of this cycle, weights in (0, 1]; ``merge_beside`` needs at least one."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"--merge_with_parent must map policy stages to weights, e.g. {MERGE_EXAMPLE}; got {value!r}")
    weights = {}
    for stage, weight in value.items():
        if stage not in POLICY_STAGES or stage not in stages:
            raise ValueError(
                f"merge_with_parent: {stage} is not a policy stage of this cycle (stages: {', '.join(stages)}; "
                f"policy stages: {', '.join(POLICY_STAGES)})"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 < weight <= 1.0:
            raise ValueError(f"merge_with_parent: {stage}'s weight must be a number in (0, 1]; got {weight!r}")
        weights[stage] = float(weight)
    if beside and not weights:
        raise ValueError("merge_beside: true needs merge_with_parent (which stages to mix, and how much)")
    return weights


def interpolate(
    folder: str | Path,
    base: str,
    weight: float,
    *,
    output_dir: str | Path | None = None,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Rewrite the model in ``folder`` as ``weight`` x itself + (1 - ``weight``) x ``base`` (a folder or hub id of
    the same architecture), parameter by parameter in float32, saved in the folder's own dtype; with
    ``output_dir`` the mix (weights, config, tokenizer) is saved there and ``folder`` is left as it was. Returns
    what the stage's result.json records."""
    import torch

    from training import loading

    check_weight(weight)
    model = loading.causal_lm(str(folder), trust_remote_code=trust_remote_code, dtype="auto")
    other = loading.causal_lm(str(base), trust_remote_code=trust_remote_code, dtype="auto")
    mine, theirs = dict(model.named_parameters()), dict(other.named_parameters())
    differ = sorted(set(mine) ^ set(theirs)) or [n for n in mine if mine[n].shape != theirs[n].shape]
    if differ:
        raise InterpolationError(
            f"--interpolate_with {base}: not the architecture of {folder} (first differing parameter: {differ[0]})"
        )
    moved = 0.0
    with torch.no_grad():
        for name, param in mine.items():
            ours, base_value = param.float(), theirs[name].float()
            moved += float(((1.0 - weight) * (base_value - ours)).pow(2).sum())
            param.copy_((weight * ours + (1.0 - weight) * base_value).to(param.dtype))
    target = Path(output_dir or folder)
    model.save_pretrained(str(target))
    if output_dir:
        loading.tokenizer(str(folder), trust_remote_code=trust_remote_code).save_pretrained(str(target))
    return {
        "interpolated_dir": str(target),
        "interpolated_with": str(base),
        "interpolation_weight": weight,
        # how far the saved weights moved back (L2 norm over all parameters): 0 means the two were the same model
        "interpolation_distance": round(moved**0.5, 6),
    }


def after_training(script_args, training_args) -> dict[str, Any]:
    """A policy stage's last step after saving: interpolate its folder when ``--interpolate_with`` is set (on the
    main process only: the folder is written once)."""
    from training import run_record

    if not script_args.interpolate_with or not run_record.is_main_process():
        return {}
    return interpolate(
        training_args.output_dir,
        script_args.interpolate_with,
        script_args.interpolation_weight,
        output_dir=script_args.interpolated_output_dir,
        trust_remote_code=bool(getattr(training_args, "trust_remote_code", False)),
    )
