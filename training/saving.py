"""Saving a trained stage as a plain model folder (weights, config, tokenizer), LoRA adapters merged in."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_model(trainer, output_dir: str | Path, *, task: str = "causal-lm", dtype: str | None = None) -> Path:
    """Leave a plain model folder (weights, config, tokenizer) that the next stage loads like any other.

    With LoRA the adapter is saved to ``adapter/`` and merged into the base weights, so that the next stage
    (and the platform's generator) never needs peft to read it. Saving goes through ``trainer.save_model``,
    which gathers sharded weights under DeepSpeed ZeRO-3 and FSDP.
    """
    from accelerate.utils import is_peft_model

    output_dir = Path(output_dir)
    if not is_peft_model(trainer.model):
        trainer.save_model(str(output_dir))
        return output_dir
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        trust = bool(getattr(trainer.args, "trust_remote_code", False))
        merge_adapter(adapter_dir, output_dir, task=task, dtype=dtype, trust_remote_code=trust)
    trainer.accelerator.wait_for_everyone()
    return output_dir


def merge_adapter(
    adapter_dir: Path,
    output_dir: Path,
    *,
    task: str = "causal-lm",
    dtype: str | None = None,
    trust_remote_code: bool = False,
) -> None:
    """Load base + adapter on the CPU, fold the adapter into the weights and save the result."""
    import torch

    from training import loading

    kwargs: dict[str, Any] = {}
    if dtype and dtype != "auto":
        kwargs["dtype"] = getattr(torch, dtype)
    model = loading.peft_model(adapter_dir, task=task, trust_remote_code=trust_remote_code, **kwargs)
    merged = model.merge_and_unload()
    merged.save_pretrained(str(output_dir))
    loading.tokenizer(adapter_dir, trust_remote_code=trust_remote_code).save_pretrained(str(output_dir))
