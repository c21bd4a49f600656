"""Scoring with a reward model: the texts RewardTrainer trained on, batched scores, held-out pair accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def reward_texts(tokenizer, prompts: Sequence[str], completions: Sequence[str], *, eos: bool = True) -> list[str]:
    """The exact text RewardTrainer trained on: prompt + completion + EOS (it appends EOS to non-chat data)."""
    end = tokenizer.eos_token or ""
    texts = []
    for prompt, completion in zip(prompts, completions, strict=True):
        text = prompt + completion
        if eos and end and not text.endswith(end):
            text += end
        texts.append(text)
    return texts


def score_texts(model, tokenizer, texts: Sequence[str], *, batch_size: int = 16) -> list[float]:
    """Reward-model scores, one per text, tokenized the way RewardTrainer tokenizes (``tokenizer(text)``) and
    padded on the right, since sequence-classification heads read the last non-pad token."""
    import torch

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        ids = [tokenizer(text=t)["input_ids"] for t in texts[start : start + batch_size]]
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[row, : len(x)] = 1
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        scores.extend(logits[:, 0].float().cpu().tolist())
    return scores


def load_reward_model(
    path: str | Path, *, device: str | None = None, dtype: str | None = None, trust_remote_code: bool = False
):
    """(model, tokenizer) of a reward-model folder, in eval mode, with the pad token the head needs."""
    import torch

    from training import loading

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kwargs: dict[str, Any] = {"num_labels": 1}
    if dtype and dtype != "auto":
        kwargs["dtype"] = getattr(torch, dtype)
    elif device == "cpu":
        kwargs["dtype"] = torch.float32
    tokenizer = loading.tokenizer(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = loading.sequence_classifier(path, trust_remote_code=trust_remote_code, **kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device).eval()
    return model, tokenizer


def pair_accuracy(model, tokenizer, rows: Sequence[dict], *, batch_size: int = 16) -> dict[str, Any]:
    """Held-out accuracy of a reward model: the share of pairs where chosen scores strictly above rejected."""
    if not rows:
        return {"accuracy": None, "pairs": 0, "mean_margin": None}
    prompts = [r["prompt"] for r in rows]
    chosen = score_texts(
        model, tokenizer, reward_texts(tokenizer, prompts, [r["chosen"] for r in rows]), batch_size=batch_size
    )
    rejected = score_texts(
        model, tokenizer, reward_texts(tokenizer, prompts, [r["rejected"] for r in rows]), batch_size=batch_size
    )
    wins = [c > r for c, r in zip(chosen, rejected, strict=True)]
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {
        "accuracy": sum(wins) / len(wins),
        "pairs": len(wins),
        "mean_margin": sum(margins) / len(margins),
    }
