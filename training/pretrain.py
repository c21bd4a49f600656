"""Pretraining a small Llama-style causal LM from scratch on this machine's Python standard library: the
corpus as token blocks, a warm-up and cosine learning-rate schedule, the AdamW loop. training/bootstrap.py
builds (and caches) the bootstrap model with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from training import loading, tiny

logger = logging.getLogger("training.bootstrap")


@dataclass(frozen=True)
class LadderMix:
    """Training-split task-ladder tasks (prompt + reference solution, training/ladder.py) mixed into the corpus."""

    tasks: int = field(metadata={"help": "Training-split ladder tasks generated (each one document)."})
    seed: int = field(default=0, metadata={"help": "Seed of the ladder generator (not the held-out seed)."})
    levels: tuple[int, ...] = field(default=(1, 2, 3), metadata={"help": "Difficulty levels (steps per task)."})
    repeats: int = field(default=1, metadata={"help": "Times the ladder documents appear in the corpus."})


@dataclass(frozen=True)
class Preset:
    vocab_size: int = field(metadata={"help": "Tokenizer vocabulary (BPE merges + 256 bytes + 2 specials)."})
    corpus_bytes: int | None = field(metadata={"help": "Standard-library source used, in bytes (None: all)."})
    hidden: int = field(metadata={"help": "Hidden size of the Llama-style model."})
    layers: int = field(metadata={"help": "Transformer layers."})
    heads: int = field(metadata={"help": "Attention heads."})
    seq_len: int = field(metadata={"help": "Tokens per training sequence."})
    batch_size: int = field(metadata={"help": "Sequences per step."})
    lr: float = field(metadata={"help": "Peak AdamW learning rate (linear warm-up, cosine decay to 10%)."})
    warmup_steps: int = field(metadata={"help": "Warm-up steps."})
    max_steps: int = field(metadata={"help": "Step budget: the run ends here (deterministic)."})
    minutes: float = field(metadata={"help": "Time budget: a guard that ends a slow run early."})
    bf16: bool = field(
        metadata={
            "help": "bf16 autocast: on a CUDA GPU always; on CPU where the CPU does bf16 (about twice as fast for the "
            "demo size), fp32 on one that does not (cpu_does_bf16)."
        }
    )
    max_positions: int = field(default=1024, metadata={"help": "Context length of the model."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    val_fraction: float = field(default=0.02, metadata={"help": "Share of sequences held out for a val loss."})
    ladder: LadderMix | None = field(default=None, metadata={"help": "Ladder tasks mixed into the corpus."})


def cpu_does_bf16() -> bool:
    """Whether this CPU has bf16 kernels (oneDNN's test: AVX-512 BW/VL/DQ, or AMX). Without them bf16 autocast
    is emulated: on an AVX2-only AMD EPYC 50 matmuls of 1024 x 1024 took 123 s in bf16 against 1.06 s in fp32,
    and the ladder bootstrap ran at 390 tokens/s, so its 15-minute guard would have cut it at about step 80 of 200.
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN: no bf16 kernels either
        return False


def _blocks(tokenizer, texts: list[str], seq_len: int):
    """The corpus as one token stream (files joined by EOS) cut into rows of seq_len + 1 tokens."""
    import torch

    ids: list[int] = []
    eos = tokenizer.eos_token_id
    # Batches keep the fast tokenizer busy without holding every encoding at once.
    for start in range(0, len(texts), 64):
        for encoded in tokenizer(texts[start : start + 64], add_special_tokens=False)["input_ids"]:
            ids.extend(encoded)
            ids.append(eos)
    rows = len(ids) // (seq_len + 1)
    if rows < 2:
        raise ValueError(f"corpus too small: {len(ids)} tokens for sequences of {seq_len + 1}")
    return torch.tensor(ids[: rows * (seq_len + 1)], dtype=torch.long).view(rows, seq_len + 1), len(ids)


def _lr_at(step: int, preset: Preset) -> float:
    if step < preset.warmup_steps:
        return preset.lr * (step + 1) / preset.warmup_steps
    progress = (step - preset.warmup_steps) / max(1, preset.max_steps - preset.warmup_steps)
    return preset.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(tmp: Path, *, preset: Preset, seed: int, minutes: float, log_every: int = 25) -> dict:
    """Train tokenizer and model into ``tmp``; returns the facts for training_info.json."""
    import torch
    import transformers

    started = time.monotonic()
    tokenizer, blocks, corpus = _corpus(preset)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(blocks), generator=generator)
    n_val = max(1, int(len(blocks) * preset.val_fraction))
    val, train_rows = blocks[order[:n_val]], blocks[order[n_val:]]
    # The first CUDA GPU when torch sees one, else the CPU. A model built on either is the same preset (the cache
    # key leaves the device out, as it leaves bf16 out); training_info.json says which.
    device = loading.default_device()
    model = _model(tokenizer, preset).to(device)
    params = sum(p.numel() for p in model.parameters())
    logger.info(
        "model: %d parameters, %d training sequences of %d tokens, %d held out, on %s",
        params,
        len(train_rows),
        preset.seq_len,
        n_val,
        device,
    )
    bf16 = preset.bf16 and (device == "cuda" or cpu_does_bf16())
    if preset.bf16 and not bf16:
        logger.warning("this CPU has no bf16 kernels (AVX-512 or AMX): training in fp32, not bf16 autocast")
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)
    losses, stopped_by, train_seconds = _loop(
        model, train_rows.to(device), generator, preset=preset, autocast=autocast, minutes=minutes, log_every=log_every
    )
    val_loss = _val_loss(model, val.to(device), preset=preset, autocast=autocast)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.to("cpu").save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    tail = losses[-10:]
    return {
        "steps": len(losses),
        "stopped_by": stopped_by,
        "final_loss": round(sum(tail) / len(tail), 4) if tail else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "val_loss": round(val_loss, 4),
        "bf16": bf16,
        "device": device,
        "params": params,
        "tokens_seen": len(losses) * preset.batch_size * preset.seq_len,
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
        "corpus": corpus,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _corpus(preset: Preset):
    """The tokenizer trained on the corpus, the corpus as blocks, and the corpus's size."""
    started = time.monotonic()
    files = tiny.python_source_files(preset.corpus_bytes)
    texts = list(tiny.read_texts(files))
    ladder_texts = ladder_documents(preset.ladder) if preset.ladder else []
    texts = _interleave(texts, ladder_texts * (preset.ladder.repeats if preset.ladder else 0))
    corpus_bytes = sum(len(t.encode("utf-8")) for t in texts)
    tokenizer = tiny.make_tokenizer(vocab_size=preset.vocab_size, texts=texts)
    logger.info(
        "tokenizer: vocab %d from %d files (%d bytes) in %.1fs",
        len(tokenizer),
        len(files),
        corpus_bytes,
        time.monotonic() - started,
    )
    blocks, corpus_tokens = _blocks(tokenizer, texts, preset.seq_len)
    facts = {"files": len(files), "bytes": corpus_bytes, "tokens": corpus_tokens}
    if preset.ladder:
        facts["ladder_documents"] = len(ladder_texts)
        facts["ladder_templates"] = len(set(ladder_templates(preset.ladder)))
    return tokenizer, blocks, facts


def ladder_documents(mix: LadderMix) -> list[str]:
    """Each training-split ladder task as the program a model should write: its prompt and reference body.

    Only ``split="train"`` tasks: a held-out template never enters the corpus (training/ladder.py splits by
    template, so no renamed or re-parameterised copy of a held-out task can either).
    """
    from training.ladder import ladder_tasks

    return [t.prompt + t.canonical_solution for t in ladder_tasks(n=mix.tasks, seed=mix.seed, levels=mix.levels)]


def ladder_templates(mix: LadderMix) -> list[str]:
    """The templates of the ladder documents (what a decontamination check compares with the held-out split)."""
    from training.ladder import ladder_tasks

    return [t.template for t in ladder_tasks(n=mix.tasks, seed=mix.seed, levels=mix.levels)]


def _interleave(files: list[str], extra: list[str]) -> list[str]:
    """The extra documents spread evenly among the files, so that every stretch of the stream holds some."""
    if not extra:
        return files
    if not files:
        return list(extra)
    out: list[str] = []
    per_file = len(extra) / len(files)
    taken = 0
    for index, text in enumerate(files, start=1):
        out.append(text)
        upto = round(index * per_file)
        out.extend(extra[taken:upto])
        taken = upto
    out.extend(extra[taken:])
    return out


def _model(tokenizer, preset: Preset):
    from transformers import AutoModelForCausalLM

    config = tiny.make_config(
        "llama",
        tokenizer,
        hidden=preset.hidden,
        layers=preset.layers,
        heads=preset.heads,
        max_positions=preset.max_positions,
    )
    return AutoModelForCausalLM.from_config(config)


def _next_token_loss(model, rows):
    import torch

    logits = model(input_ids=rows[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))


def _loop(model, rows, generator, *, preset: Preset, autocast, minutes: float, log_every: int):
    """AdamW until the step budget (or the time guard) ends it; (losses, what stopped it, seconds)."""
    import torch

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": preset.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=preset.lr,
        betas=(0.9, 0.95),
    )
    model.train()
    deadline = time.monotonic() + minutes * 60
    started = time.monotonic()
    losses: list[float] = []
    step, stopped_by, cursor = 0, "steps", 0
    while step < preset.max_steps:
        if time.monotonic() > deadline:
            stopped_by = "time"
            break
        if cursor + preset.batch_size > len(rows):  # a new epoch in a new (seeded) order
            rows = rows[torch.randperm(len(rows), generator=generator)]
            cursor = 0
        batch = rows[cursor : cursor + preset.batch_size]
        cursor += preset.batch_size
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, preset)
        with autocast:
            loss = _next_token_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if step % log_every == 0 or step == preset.max_steps:
            logger.info(
                "step %d/%d loss %.3f lr %.2e %.0f tokens/s",
                step,
                preset.max_steps,
                losses[-1],
                _lr_at(step - 1, preset),
                step * preset.batch_size * preset.seq_len / (time.monotonic() - started),
            )
    return losses, stopped_by, time.monotonic() - started


def _val_loss(model, val, *, preset: Preset, autocast) -> float:
    """Mean loss over (at most 64 of) the held-out sequences."""
    import torch

    model.eval()
    with torch.no_grad(), autocast:
        losses = [
            _next_token_loss(model, val[start : start + preset.batch_size]).item()
            for start in range(0, min(len(val), 64), preset.batch_size)
        ]
    return sum(losses) / len(losses)
