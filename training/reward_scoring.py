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
        device = loading.default_device()
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


def pair_accuracy(
    model,
    tokenizer,
    rows: Sequence[dict],
    *,
    batch_size: int = 16,
    examples_weight: float = 0.0,
    examples: tuple[list, list] | None = None,
    workers=None,
) -> dict[str, Any]:
    """Held-out accuracy of a reward model: the share of pairs where chosen scores strictly above rejected.

    With ``examples_weight`` > 0, also the *grounded* reward's (``training.doc_examples``: the learned score plus
    ``examples_weight`` for a completion that passes its prompt's own docstring examples in the sandbox):
    ``grounded_accuracy``, ``examples_accuracy`` (the examples alone, a pair they cannot tell counting 0.5),
    ``examples_pairs`` (pairs whose prompt has examples) and ``examples_decided`` (pairs where one side passes them
    and the other does not). ``accuracy`` stays the learned model's alone. ``examples``: the rows'
    ``examples_outcomes``, when the caller scores the same rows more than once (they do not depend on the model).
    ``wins`` (and ``grounded_wins``, ``examples_wins``) are per pair, for intervals drawn over groups of pairs."""
    if not rows:
        empty = {"accuracy": None, "pairs": 0, "mean_margin": None, "wins": []}
        grounded = {"grounded_accuracy": None, "examples_accuracy": None, "examples_pairs": 0, "examples_decided": 0}
        return empty | ({**grounded, "grounded_wins": [], "examples_wins": []} if examples_weight else {})
    prompts = [r["prompt"] for r in rows]
    chosen = score_texts(
        model, tokenizer, reward_texts(tokenizer, prompts, [r["chosen"] for r in rows]), batch_size=batch_size
    )
    rejected = score_texts(
        model, tokenizer, reward_texts(tokenizer, prompts, [r["rejected"] for r in rows]), batch_size=batch_size
    )
    wins = [c > r for c, r in zip(chosen, rejected, strict=True)]
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    result = {
        "accuracy": sum(wins) / len(wins),
        "pairs": len(wins),
        "mean_margin": sum(margins) / len(margins),
        "wins": [float(w) for w in wins],
    }
    if examples_weight > 0:
        chosen_ok, rejected_ok = examples if examples is not None else examples_outcomes(rows, workers=workers)
        result.update(grounded_accuracy(chosen, rejected, chosen_ok, rejected_ok, weight=examples_weight))
    return result


def examples_outcomes(rows: Sequence[dict], *, workers=None) -> tuple[list, list]:
    """Whether each pair's chosen and rejected completion pass the prompt's docstring examples in the sandbox
    (``training.doc_examples.examples_pass``; None where the prompt has none): two lists in the rows' order."""
    from training import doc_examples

    prompts = [r["prompt"] for r in rows]
    passed = doc_examples.examples_pass(
        prompts + prompts, [r["chosen"] for r in rows] + [r["rejected"] for r in rows], workers=workers
    )
    return passed[: len(rows)], passed[len(rows) :]


def grounded_accuracy(
    chosen: Sequence[float],
    rejected: Sequence[float],
    chosen_ok: Sequence[bool | None],
    rejected_ok: Sequence[bool | None],
    *,
    weight: float,
) -> dict[str, Any]:
    """Pair accuracy of the learned scores grounded in each prompt's docstring examples, and of the examples
    alone (see pair_accuracy)."""
    from training import doc_examples

    grounded_chosen = doc_examples.grounded_scores(chosen, chosen_ok, weight=weight)
    grounded_rejected = doc_examples.grounded_scores(rejected, rejected_ok, weight=weight)
    wins = [float(c > r) for c, r in zip(grounded_chosen, grounded_rejected, strict=True)]
    decided = [c is not None and c != r for c, r in zip(chosen_ok, rejected_ok, strict=True)]
    alone = [float(c) if d else 0.5 for c, d in zip(chosen_ok, decided, strict=True)]
    return {
        "grounded_accuracy": sum(wins) / len(wins),
        "examples_accuracy": sum(alone) / len(alone),
        "examples_pairs": sum(ok is not None for ok in chosen_ok),
        "examples_decided": sum(decided),
        "grounded_wins": wins,
        "examples_wins": alone,
    }
