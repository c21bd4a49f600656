"""Every place training/ loads a model or tokenizer goes through here, so that one flag decides whether a
checkpoint's own Python code may run.

Some seed models (Replit Code V1: ``MPTForCausalLM`` in the hub repository's ``modeling_mpt.py``) ship their
modelling code with the weights: ``config.json`` names it under ``auto_map``, and loading it means running
that code. transformers refuses unless ``trust_remote_code=True``; here the flag is off by default, set per
model version on the platform (``ModelVersion.trust_remote_code``) or per run (``--trust_remote_code true``),
and a refusal becomes one message saying which flag to set, instead of transformers' interactive prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class RemoteCodeRefused(ValueError):
    """The checkpoint needs its own code to load and trust_remote_code is off."""


def default_device() -> str:
    """Where a model goes when nothing says otherwise: the first CUDA GPU when torch sees one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def needs_remote_code(path: str | Path) -> bool:
    """Whether a local model folder names its own classes (``auto_map`` in config.json or tokenizer_config.json)."""
    import json

    folder = Path(path)
    for name in ("config.json", "tokenizer_config.json"):
        try:
            data = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("auto_map"):
            return True
    return False


def _refusal(target: str, exc: Exception) -> RemoteCodeRefused:
    return RemoteCodeRefused(
        f"{target} ships its own modelling code (auto_map in its config), and loading it would run that code. "
        "Set trust_remote_code on the model version in the admin (or pass --trust_remote_code true) only for a "
        f"repository you trust. ({exc})"
    )


def _call(loader, target: str, trust_remote_code: bool, kwargs: dict[str, Any]):
    # transformers asks on stdin when the flag is unset; None here would hang a worker, so it is always a bool.
    try:
        return loader(str(target), trust_remote_code=bool(trust_remote_code), **kwargs)
    except ValueError as exc:
        if not trust_remote_code and "trust_remote_code" in str(exc):
            raise _refusal(str(target), exc) from exc
        raise


def tokenizer(target: str | Path, *, trust_remote_code: bool = False, **kwargs):
    from transformers import AutoTokenizer

    return _call(AutoTokenizer.from_pretrained, str(target), trust_remote_code, kwargs)


def causal_lm(target: str | Path, *, trust_remote_code: bool = False, **kwargs):
    from transformers import AutoModelForCausalLM

    return _call(AutoModelForCausalLM.from_pretrained, str(target), trust_remote_code, kwargs)


def sequence_classifier(target: str | Path, *, trust_remote_code: bool = False, **kwargs):
    from transformers import AutoModelForSequenceClassification

    return _call(AutoModelForSequenceClassification.from_pretrained, str(target), trust_remote_code, kwargs)


def peft_model(adapter_dir: str | Path, *, task: str, trust_remote_code: bool = False, **kwargs):
    """A saved LoRA adapter on its base model (the base's remote code too, when allowed)."""
    from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification

    if task == "reward":
        kwargs.setdefault("num_labels", 1)
        return _call(
            AutoPeftModelForSequenceClassification.from_pretrained, str(adapter_dir), trust_remote_code, kwargs
        )
    return _call(AutoPeftModelForCausalLM.from_pretrained, str(adapter_dir), trust_remote_code, kwargs)
