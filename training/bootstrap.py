"""Build the bootstrap coder model offline: a byte-level BPE tokenizer and a small Llama-style causal LM,
trained for a few minutes on the Python standard library of this machine.

    python -m training.bootstrap --out var/models/bootstrap --preset demo --seed 0
    python -m training.bootstrap --out /tmp/tiny --preset test --sample

The folder gets ``save_pretrained`` files for both and a ``training_info.json`` (seed, steps, losses,
parameters, seconds). A folder that already holds a model built with the same preset, seed and settings is
kept as it is (the cache); ``--force`` rebuilds. Given a seed, the weights are identical from run to run as
long as the step budget (not the time budget) ends training: ``stopped_by`` in training_info.json says which.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from training import tiny

logger = logging.getLogger(__name__)


INFO_FILE = "training_info.json"
FORMAT = 1  # bump when a change in this file should invalidate cached models


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
    bf16: bool = field(metadata={"help": "bf16 autocast on CPU (about twice as fast for the demo size)."})
    max_positions: int = field(default=1024, metadata={"help": "Context length of the model."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    val_fraction: float = field(default=0.02, metadata={"help": "Share of sequences held out for a val loss."})


PRESETS = {
    # ~5M parameters, 300 steps of 4,096 tokens; on a busy machine the time guard ends it earlier.
    "demo": Preset(
        vocab_size=4096,
        corpus_bytes=None,
        hidden=256,
        layers=4,
        heads=4,
        seq_len=512,
        batch_size=8,
        lr=2e-3,
        warmup_steps=30,
        # ~1.2M tokens: about 4.5 minutes at the ~4,500 tokens/s measured on a quiet 2-core machine, so the
        # step budget (deterministic), not the time guard, ends the run there.
        max_steps=300,
        minutes=8.0,
        bf16=True,
    ),
    # Seconds: for tests, where only the plumbing matters.
    "test": Preset(
        vocab_size=512,
        corpus_bytes=300_000,
        hidden=64,
        layers=2,
        heads=4,
        seq_len=64,
        batch_size=8,
        lr=3e-3,
        warmup_steps=2,
        max_steps=20,
        minutes=1.0,
        bf16=False,
        max_positions=256,
    ),
}


@dataclass
class BuildResult:
    path: Path
    info: dict
    cached: bool


def _identity(preset_name: str, seed: int, preset: Preset) -> dict:
    """What a cached model must match to be reused (the time budget is left out: it is only a guard)."""
    config = dataclasses.asdict(preset)
    config.pop("minutes")
    return {"format": FORMAT, "preset": preset_name, "seed": seed, "config": config}


def cached_info(out: Path, identity: dict) -> dict | None:
    """training_info.json of a complete model in ``out`` built with this identity, else None."""
    try:
        info = json.loads((out / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (out / "config.json").exists() or not (out / "tokenizer.json").exists():
        return None
    if not any(out.glob("*.safetensors")):
        return None
    return info if {k: info.get(k) for k in identity} == identity else None


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


@contextlib.contextmanager
def _torch_threads(threads: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _locked(out: Path):
    """One build per folder at a time: a second `make demo` waits and then finds the cache."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def train(
    tmp: Path,
    *,
    preset: Preset,
    seed: int,
    minutes: float,
    log_every: int = 25,
) -> dict:
    """Train tokenizer and model into ``tmp``; returns the facts for training_info.json."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    started = time.monotonic()
    files = tiny.python_source_files(preset.corpus_bytes)
    texts = list(tiny.read_texts(files))
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
    del texts

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(blocks), generator=generator)
    n_val = max(1, int(len(blocks) * preset.val_fraction))
    val, train_rows = blocks[order[:n_val]], blocks[order[n_val:]]

    config = tiny.make_config(
        "llama",
        tokenizer,
        hidden=preset.hidden,
        layers=preset.layers,
        heads=preset.heads,
        max_positions=preset.max_positions,
    )
    model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": preset.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=preset.lr,
        betas=(0.9, 0.95),
    )
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=preset.bf16)
    logger.info(
        "model: %d parameters, %d training sequences of %d tokens, %d held out",
        params,
        len(train_rows),
        preset.seq_len,
        n_val,
    )

    model.train()
    deadline = time.monotonic() + minutes * 60
    train_started = time.monotonic()
    losses: list[float] = []
    step, stopped_by, cursor = 0, "steps", 0
    while step < preset.max_steps:
        if time.monotonic() > deadline:
            stopped_by = "time"
            break
        if cursor + preset.batch_size > len(train_rows):  # a new epoch in a new (seeded) order
            train_rows = train_rows[torch.randperm(len(train_rows), generator=generator)]
            cursor = 0
        batch = train_rows[cursor : cursor + preset.batch_size]
        cursor += preset.batch_size
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, preset)
        with autocast:
            logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if step % log_every == 0 or step == preset.max_steps:
            elapsed = time.monotonic() - train_started
            logger.info(
                "step %d/%d loss %.3f lr %.2e %.0f tokens/s",
                step,
                preset.max_steps,
                losses[-1],
                _lr_at(step - 1, preset),
                step * preset.batch_size * preset.seq_len / elapsed,
            )
    train_seconds = time.monotonic() - train_started

    model.eval()
    with torch.no_grad(), autocast:
        val_losses = []
        for start in range(0, min(len(val), 64), preset.batch_size):
            rows = val[start : start + preset.batch_size]
            logits = model(input_ids=rows[:, :-1]).logits
            val_losses.append(
                torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1)
                ).item()
            )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    tail = losses[-10:]
    return {
        "steps": step,
        "stopped_by": stopped_by,
        "final_loss": round(sum(tail) / len(tail), 4) if tail else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "val_loss": round(sum(val_losses) / len(val_losses), 4),
        "params": params,
        "tokens_seen": step * preset.batch_size * preset.seq_len,
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
        "corpus": {"files": len(files), "bytes": corpus_bytes, "tokens": corpus_tokens},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def build(
    out: str | Path,
    *,
    preset: str = "demo",
    seed: int = 0,
    minutes: float | None = None,
    max_steps: int | None = None,
    threads: int | None = None,
    force: bool = False,
) -> BuildResult:
    """Build the bootstrap model into ``out`` unless a model of the same preset, seed and settings is there."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    chosen = PRESETS[preset]
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1; got {max_steps}")
        chosen = dataclasses.replace(chosen, max_steps=max_steps)
    budget = chosen.minutes if minutes is None else minutes
    if budget <= 0:
        raise ValueError(f"minutes must be positive; got {budget}")
    # Two threads by default: the machines this targets have two cores, and the count changes float sums.
    threads = threads or min(2, os.cpu_count() or 1)
    out = Path(out)
    identity = _identity(preset, seed, chosen)

    with _locked(out):
        if not force and (info := cached_info(out, identity)) is not None:
            logger.info("%s already holds the %s model for seed %d: kept", out, preset, seed)
            return BuildResult(out, info, cached=True)
        logger.info(
            "building the %s model into %s: seed %d, %s, %.1f minutes at most, %d threads",
            preset,
            out,
            seed,
            dataclasses.asdict(chosen),
            budget,
            threads,
        )
        tmp = out.parent / f".{out.name}.building"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with _torch_threads(threads):
                facts = train(tmp, preset=chosen, seed=seed, minutes=budget)
            info = {
                **identity,
                **facts,
                "threads": threads,
                "minutes": budget,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
            # The finished folder replaces the old one whole, so a reader never sees half a model.
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    logger.info(
        "built %s: %d steps (%s), loss %s, val loss %s, %s parameters, %.0fs",
        out,
        info["steps"],
        info["stopped_by"],
        info["final_loss"],
        info["val_loss"],
        info["params"],
        info["seconds"],
    )
    return BuildResult(out, info, cached=False)


SAMPLE_PROMPTS = [
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
    "class Stack:\n    def __init__(self):\n",
    "import os\n\n\ndef list_python_files(root):\n",
]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="Folder to write the model into (the cache).")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="Model size and training budget.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of initialisation and data order.")
    parser.add_argument("--minutes", type=float, default=None, help="Time budget (default: the preset's).")
    parser.add_argument("--max-steps", type=int, default=None, help="Step budget (default: the preset's).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: min(2, cores)).")
    parser.add_argument("--force", action="store_true", help="Rebuild even if the folder holds the same model.")
    parser.add_argument("--sample", action="store_true", help="Print a few completions of sample prompts after.")
    return parser


def main(argv: list[str] | None = None) -> BuildResult:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = make_parser().parse_args(argv)
    logger.info("arguments: %s", vars(args))
    try:
        result = build(
            args.out,
            preset=args.preset,
            seed=args.seed,
            minutes=args.minutes,
            max_steps=args.max_steps,
            threads=args.threads,
            force=args.force,
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}")
    print(
        json.dumps(
            {
                k: result.info.get(k)
                for k in ("preset", "seed", "steps", "stopped_by", "final_loss", "val_loss", "params", "seconds")
            }
        )
    )
    print(f"{'cached' if result.cached else 'built'}: {result.path}")
    if args.sample:
        from training.generate import generate

        samples = generate(
            str(result.path), SAMPLE_PROMPTS, n=2, temperature=0.8, top_p=0.95, max_new_tokens=96, seed=args.seed
        )
        for prompt, texts in zip(SAMPLE_PROMPTS, samples, strict=True):
            for text in texts:
                print("-" * 60)
                print(prompt + text)
    return result


if __name__ == "__main__":
    main()
