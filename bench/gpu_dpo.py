"""The base recipe's DPO stage for a few steps on a real-size model built here from a config: tokens/s and
peak GPU memory. One command, every step under a timeout; nothing is downloaded.

    python bench/gpu_dpo.py --out $OUT/gpu-dpo                    # on a GPU machine (H200: about 2 minutes)
    python bench/gpu_dpo.py --steps 30 --variants full,lora,lora-dropout --out $OUT/gpu-dpo
    python bench/gpu_dpo.py --size tiny --out /tmp/gpu-dpo-smoke  # the same path on a CPU, in seconds

What it does:
1. builds a StarCoderBase-1B-shaped GPTBigCode model from a config (hidden 2048, 24 layers, 16 heads,
   multi-query attention, 8192 positions, vocabulary 49152: ~1.1B parameters, random weights, bf16) with a
   BPE tokenizer trained on this machine's standard library (``training.tiny``);
2. writes a snapshot of ~800-token preference sequences cut from standard-library source (a real continuation
   chosen over another file's text);
3. runs ``python -m training.dpo --config training/recipes/base/dpo.yaml`` (bf16, LoRA on all linear
   layers, activation checkpointing) briefly as a warm-up (``--warmup-steps``: the first run on a fresh
   machine is about 3 times slower), then for ``--steps`` steps, then again with full fine-tuning or other
   single changes to the recipe (``--variants``, see ``VARIANTS``);
4. prints each run's tokens/s and peak memory (``torch.cuda.max_memory_allocated``, from result.json) and
   writes them, with the runs' result.json, run_info.json and metrics.jsonl, under ``--out``.

Models and checkpoints go to ``--work`` (several GB), not ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import training  # noqa: E402, F401  (sets OMP_WAIT_POLICY=PASSIVE before torch loads)

SIZES = {
    # name: (hidden, layers, heads, positions, vocabulary, tokenizer vocabulary, pairs, chars per side)
    "1b": (2048, 24, 16, 8192, 49152, 8192, 96, 2000),
    "tiny": (64, 2, 4, 1024, 512, 512, 24, 400),
}


def build_model(folder: Path, size: str, device: str) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    from training import tiny

    hidden, layers, heads, positions, vocab, tok_vocab, _, _ = SIZES[size]
    tokenizer = tiny.make_tokenizer(vocab_size=tok_vocab, max_bytes=4_000_000 if size == "1b" else 300_000)
    config = tiny.make_config(
        "gpt_bigcode", tokenizer, hidden=hidden, layers=layers, heads=heads, max_positions=positions
    )
    config.vocab_size = max(vocab, len(tokenizer))  # StarCoder's embedding size; ids past the tokenizer go unused
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    params = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return params


def write_snapshot(folder: Path, size: str, seed: int = 0) -> None:
    """Pairs cut from real source: prompt = a stretch of a file, chosen = what follows it, rejected = a stretch
    of another file. Long enough (~800 tokens a sequence at 1b) for tokens/s to mean something."""
    from training import tiny

    *_, pairs, chars = SIZES[size]
    rng = random.Random(seed)
    texts = [t for t in tiny.read_texts(tiny.python_source_files(6_000_000)) if len(t) > 3 * chars]
    rows = []
    for i in range(pairs + 16):
        text, other = rng.sample(texts, 2)
        start = rng.randrange(0, len(text) - 2 * chars)
        cut = text.rfind("\n", start, start + chars) + 1 or start + chars  # end the prompt on a line boundary
        elsewhere = rng.randrange(0, len(other) - chars)
        rows.append(
            {
                "prompt": text[start:cut],
                "chosen": text[cut : cut + chars // 2],
                "rejected": other[elsewhere : elsewhere + chars // 2],
                "pair_id": i,
            }
        )
    for split, part in (("train", rows[:pairs]), ("test", rows[pairs:])):
        path = folder / "preference" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"version": f"gpu-bench-{size}"}) + "\n")


# Variants: the base recipe (lora), full fine-tuning, and single changes to the recipe to see what each costs.
FULL = ["--use_peft", "false", "--learning_rate", "1e-6"]
NO_CHECKPOINTING = ["--activation_checkpointing", "false"]
VARIANTS = {
    "lora": [],
    "full": FULL,
    "lora-noac": NO_CHECKPOINTING,
    "lora-dropout": ["--lora_dropout", "0.05"],  # the recipe's value before 2026-11-27
    "full-noac": FULL + NO_CHECKPOINTING,
}


def run_dpo(
    model: Path, snapshot: Path, out: Path, *, steps: int, extra: list[str], cpu: bool, timeout: float
) -> dict:
    command = [
        sys.executable,
        "-m",
        "training.dpo",
        "--config",
        str(REPO / "training/recipes/base/dpo.yaml"),
        "--snapshot",
        str(snapshot),
        "--output_dir",
        str(out),
        "--model_name_or_path",
        str(model),
        "--max_steps",
        str(steps),
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--per_device_train_batch_size",
        "4",
        "--gradient_accumulation_steps",
        "1",
        "--max_length",
        "1024",
    ]
    command += extra
    if cpu:
        command += ["--use_cpu", "true"]
    started = time.monotonic()
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as handle:
        try:
            done = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    seconds = round(time.monotonic() - started, 1)
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        return {"state": "failed", "exit": code, "seconds": seconds, "log_tail": tail}
    result = json.loads((out / "result.json").read_text())
    info = json.loads((out / "run_info.json").read_text())
    return {"state": "succeeded", "seconds": seconds, "device": info.get("device"), **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="1b")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--variants", default="lora,full", help=f"comma-separated, of: {', '.join(VARIANTS)} (lora: the base recipe)"
    )
    parser.add_argument("--work", default="/tmp/codepref-gpu-dpo", help="models and checkpoints (GB)")
    parser.add_argument("--out", default=None, help="small records: summary.json, result/run_info/metrics")
    parser.add_argument("--timeout", type=float, default=480, help="seconds for each DPO run")
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=5,
        help="an unrecorded run of the first variant first (0: none). On a fresh H200 the first DPO run took "
        "about 3 times as long as the same run later (cold caches), whichever variant went first",
    )
    args = parser.parse_args(argv)

    try:
        import peft  # noqa: F401
        import torch
        import trl  # noqa: F401
    except ImportError as exc:
        print(f"missing {exc.name}: pip install -r requirements.txt (torch with CUDA on a GPU machine)")
        return 2
    cuda = torch.cuda.is_available()
    if args.size == "1b" and not cuda:
        print("no CUDA device: --size 1b needs a GPU (use --size tiny for a CPU smoke run)")
        return 2
    device = "cuda" if cuda else "cpu"
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = Path(args.out) if args.out else work / "records"
    out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    params = build_model(work / "model", args.size, device)
    built = time.monotonic() - started
    write_snapshot(work / "snapshot", args.size)
    print(
        f"model: GPTBigCode {args.size}, {params / 1e9:.3f}B parameters, built in {built:.0f}s on {device}", flush=True
    )

    summary = {
        "size": args.size,
        "parameters": params,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "steps": args.steps,
        "runs": {},
    }
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    dpo = functools.partial(run_dpo, work / "model", work / "snapshot", cpu=not cuda, timeout=args.timeout)
    if args.warmup_steps and variants:
        warm = dpo(work / "dpo-warmup", steps=args.warmup_steps, extra=VARIANTS[variants[0]])
        print(f"warm-up: {variants[0]}, {args.warmup_steps} steps, {warm['state']} in {warm['seconds']}s", flush=True)
        summary["warmup"] = {"variant": variants[0], "steps": args.warmup_steps, "seconds": warm["seconds"]}
        shutil.rmtree(work / "dpo-warmup", ignore_errors=True)
    for variant in variants:
        run_dir = work / f"dpo-{variant}"
        result = dpo(run_dir, steps=args.steps, extra=VARIANTS[variant])
        summary["runs"][variant] = result
        for name in ("result.json", "run_info.json", "metrics.jsonl", "loss.png"):
            if (run_dir / name).is_file():
                (out / f"dpo-{variant}").mkdir(exist_ok=True)
                shutil.copy(run_dir / name, out / f"dpo-{variant}" / name)
        shutil.copy(work / f"dpo-{variant}.log", out / f"dpo-{variant}.log")
        if result["state"] == "succeeded":
            print(
                f"{variant:>5}: {result['tokens_per_second']} tokens/s, peak {result.get('peak_memory_gb')} GB, "
                f"{result['train_steps']} steps in {result['train_seconds']:.1f}s (stage {result['seconds']}s)",
                flush=True,
            )
        else:
            print(f"{variant:>5}: FAILED ({result['exit']}):\n  " + "\n  ".join(result["log_tail"]), flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)  # GBs of merged weights
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"summary: {out / 'summary.json'}")
    return 0 if all(r["state"] == "succeeded" for r in summary["runs"].values()) else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
