"""What training/ costs on top of TRL: the same DPO stage through ``training.dpo`` and through a minimal plain-TRL
script, on the same snapshot, model and steps, in one process; prints both times and their ratio.

    python bench/training_overhead.py                 # tiny Llama-style model, 50 steps, 5 rounds
    python bench/training_overhead.py --steps 20 --rounds 7 --hidden 128 --layers 4

Both sides do the same work: load the model and tokenizer, read the preference split, train ``--steps`` DPO
steps (batch 8, lr 1e-4, max_length 256, CPU, fp32), evaluate the held-out split, save the model. training/
adds its run record (run_info.json with versions and git revision), metrics.jsonl, loss.png and result.json.
The runs alternate (training/, plain, training/, plain, ...) after one untimed warm-up of each, so that
one-time costs (imports, the first matplotlib figure) and drifts in machine load fall on both sides alike;
the medians are compared. Target: ratio <= 1.05. On a shared machine the figures are noisy.

training/'s cost is fixed per stage, not per step (about 0.1 s measured here: ~0.06 s to render loss.png, ~0.02 s
for the run record, the rest reading the recipe and the snapshot), so the ratio falls as the run grows: a
20-step run of the tiny model (~1.2 s) shows it at ~1.08, a 50-step run at ~1.02.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import training  # noqa: E402, F401  (sets OMP_WAIT_POLICY=PASSIVE before torch loads)

LR = 1e-4
BATCH = 8
MAX_LENGTH = 256
BETA = 0.1


def _on_token_boundary(row: dict) -> dict:
    from training.boundary import at_token_boundary

    prompt, chosen, rejected = at_token_boundary(row["prompt"], row["chosen"], row["rejected"])
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def plain_trl(model_dir: Path, snapshot: Path, out: Path, steps: int) -> None:
    """The minimal script someone would write with TRL alone."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    dataset = load_dataset(
        "json",
        data_files={
            "train": str(snapshot / "preference" / "train.jsonl"),
            "test": str(snapshot / "preference" / "test.jsonl"),
        },
    )
    args = DPOConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        learning_rate=LR,
        lr_scheduler_type="constant",
        beta=BETA,
        max_length=MAX_LENGTH,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=42,
        disable_tqdm=True,
    )
    # The same rows training/ feeds its trainer: each prompt ends on a token boundary (training/boundary.py), a
    # fix any script needs with these tokenizers; without it the two sides would not do the same work.
    dataset = dataset.map(_on_token_boundary)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset["train"], processing_class=tokenizer)
    trainer.train()
    trainer.evaluate(dataset["test"])
    trainer.save_model(str(out))


def through_training(model_dir: Path, snapshot: Path, out: Path, steps: int) -> None:
    from training import dpo

    recipe = Path(__file__).resolve().parent.parent / "training" / "recipes" / "tiny" / "dpo.yaml"
    dpo.main(
        [
            "--config",
            str(recipe),
            "--snapshot",
            str(snapshot),
            "--output_dir",
            str(out),
            "--model_name_or_path",
            str(model_dir),
            "--max_steps",
            str(steps),
            "--per_device_train_batch_size",
            str(BATCH),
            "--learning_rate",
            str(LR),
            "--beta",
            str(BETA),
            "--max_length",
            str(MAX_LENGTH),
            "--disable_tqdm",
            "true",
        ]
    )


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each side, alternating")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2: the CI runner)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import logging

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    logging.getLogger("training").setLevel(logging.WARNING)

    from training import data, tiny

    work = Path(tempfile.mkdtemp(prefix="training-overhead-"))
    try:
        model_dir = tiny.make_model(
            work / "model",
            arch="llama",
            hidden=args.hidden,
            layers=args.layers,
            tokenizer=tiny.make_tokenizer(vocab_size=512, max_bytes=300_000),
        )
        snapshot = data.write_example_snapshot(work / "snapshot", train_pairs=48, test_pairs=16)
        sides = {"training/": through_training, "plain TRL": plain_trl}
        times: dict[str, list[float]] = {name: [] for name in sides}
        for round_ in range(args.rounds + 1):  # round 0 is the untimed warm-up
            for name, run in sides.items():
                out = work / f"out-{round_}-{name[0]}"
                started = time.perf_counter()
                run(model_dir, snapshot, out, args.steps)
                elapsed = time.perf_counter() - started
                shutil.rmtree(out, ignore_errors=True)
                if round_:
                    times[name].append(elapsed)
                print(f"round {round_}{' (warm-up)' if not round_ else ''}: {name:<10} {elapsed:6.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ours, plain = (statistics.median(times[name]) for name in sides)
    ratio = ours / plain
    print(
        f"\nDPO, {args.steps} steps, tiny llama (hidden {args.hidden}, {args.layers} layers), {args.threads} threads, "
        f"median of {args.rounds} alternating runs each:"
    )
    print(f"  training.dpo     {ours:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in times['training/'])}")
    print(f"  plain TRL script {plain:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in times['plain TRL'])}")
    print(f"  overhead         {ours - plain:+.2f} s per stage")
    print(f"  overhead ratio   {ratio:.3f}   (target <= 1.05; figures on a shared machine are noisy)")
    return ratio


if __name__ == "__main__":
    main()
