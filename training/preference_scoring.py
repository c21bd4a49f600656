"""The policy's own preference on preference pairs: log p(chosen | prompt) against log p(rejected | prompt).

DPO's reported ``rewards/accuracies`` compares the policy with its reference, so it is 0 before training by
construction. This measures the policy alone: the share of pairs where the summed log-probability of the chosen
completion's tokens is strictly above the rejected one's, and the mean of their difference (the margin).

Tokenized the way TRL's DPOTrainer tokenizes non-chat data: the completion gets EOS appended, the prompt is
``tokenizer(prompt)`` and the completion's tokens are those of ``tokenizer(prompt + completion)`` after the part
the two share (the rows come from ``training.data.preference_rows``, so prompts end on a token boundary and that
part is the whole prompt). Sequences longer than ``max_length`` keep their start, as DPOTrainer's collator does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def completion_tokens(tokenizer, prompt: str, completion: str, *, eos: bool = True) -> tuple[list[int], int]:
    """(ids of prompt + completion [+ EOS], the number of leading ids that belong to the prompt)."""
    end = tokenizer.eos_token or ""
    if eos and end and not completion.endswith(end):
        completion += end
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = tokenizer(prompt + completion)["input_ids"]
    shared = 0
    while shared < min(len(prompt_ids), len(ids)) and prompt_ids[shared] == ids[shared]:
        shared += 1
    return ids, shared


def completion_logprobs(
    model, tokenizer, prompts: Sequence[str], completions: Sequence[str], *, max_length=None, batch_size: int = 8
) -> list[tuple[float, int]]:
    """(sum of log p(token | everything before it) over the completion's tokens, their number), one per row."""
    import torch

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [completion_tokens(tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
    if max_length:
        encoded = [(ids[:max_length], min(shared, max_length)) for ids, shared in encoded]
    sums: list[tuple[float, int]] = []
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        scored = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, (ids, shared) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
            scored[row, max(shared, 1) : len(ids)] = True  # the first token has nothing before it to predict it
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
        totals = (logp * scored[:, 1:]).sum(dim=1).tolist()
        sums.extend(zip(totals, scored.sum(dim=1).tolist(), strict=True))
    return sums


def policy_preference(model, tokenizer, rows: Sequence[dict], *, max_length=None, batch_size: int = 8) -> dict:
    """{"accuracy": share of pairs with log p(chosen) > log p(rejected), "mean_margin": mean of their difference,
    "per_token_accuracy": the same with each log-probability divided by its number of tokens, "pairs"} of a causal
    LM (put in eval mode for the measurement, then back in the mode it was in). Summed log-probabilities favour
    the shorter completion; the per-token share does not."""
    if not rows:
        return {"accuracy": None, "mean_margin": None, "per_token_accuracy": None, "pairs": 0}
    was_training = model.training
    model.eval()
    try:
        prompts = [r["prompt"] for r in rows]
        kwargs: dict[str, Any] = {"max_length": max_length, "batch_size": batch_size}
        chosen = completion_logprobs(model, tokenizer, prompts, [r["chosen"] for r in rows], **kwargs)
        rejected = completion_logprobs(model, tokenizer, prompts, [r["rejected"] for r in rows], **kwargs)
    finally:
        model.train(was_training)
    margins = [c - r for (c, _), (r, _) in zip(chosen, rejected, strict=True)]
    per_token = [c / max(n, 1) > r / max(m, 1) for (c, n), (r, m) in zip(chosen, rejected, strict=True)]
    return {
        "accuracy": sum(m > 0 for m in margins) / len(margins),
        "mean_margin": sum(margins) / len(margins),
        "per_token_accuracy": sum(per_token) / len(per_token),
        "pairs": len(margins),
    }
