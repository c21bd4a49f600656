"""One cycle's stages on test-decided ladder pairs, offline: what each stage adds, on many held-out prompts.

    python bench/stage_probe.py --out var/bench/stage_probe --name recipe
    python bench/stage_probe.py --out var/bench/stage_probe --name dpo-only --stages dpo \\
        --set dpo.max_steps=20 --set dpo.learning_rate=5e-6

A cheaper, quieter lens than a whole loop round (bench/learning.py): no crowd and no platform, the same kind of
data. The bootstrap ladder model samples 4 completions for one round's training-split prompts (``--train-seeds``,
192 prompts each; cached under DIR/samples by bench/reward_ladder.py, keyed by model, prompts and settings); the
sandbox runs their tests; every passing sample against every failing one of its prompt is a preference pair (the
SFT stage reads the pairs' chosen side, as it reads a snapshot's). Then the stages run as the training cycle runs
them (training/pipeline.py: sft -> dpo -> online_rl for the policy, the reward model from the SFT policy, online RL
rewarded by it and by the prompts' tests), each in its own process with the recipe (``--recipe``) and any ``--set
stage.key=value``. The parent and every stage's model sample ``--heldout`` held-out ladder prompts (templates
training never saw) as training/recipes/ladder/evaluate.yaml samples (like reward_ladder.py): pass@1 with the 95%
bootstrap interval over prompts that bench/learning.py uses, and the degenerate rate the promotion gate reads.
Writes DIR/<name>/probe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import reward_ladder  # noqa: E402
from bench.learning_measure import bootstrap_interval  # noqa: E402

STAGES = ("sft", "reward", "dpo", "online_rl")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="run")
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "models" / "bootstrap-ladder")
    parser.add_argument("--recipe", type=Path, default=ROOT / "training" / "recipes" / "ladder")
    parser.add_argument("--stages", type=stage_list, default=STAGES, help="comma-separated, of " + ",".join(STAGES))
    parser.add_argument("--set", action="append", default=[], type=stage_override, metavar="STAGE.KEY=VALUE")
    parser.add_argument("--train-seeds", default=str(reward_ladder.TRAIN_SEED), help="task seeds (192 prompts each)")
    parser.add_argument("--train-prompts", type=int, default=192)
    parser.add_argument("--heldout", type=int, default=384, help="held-out ladder prompts, 4 samples each")
    parser.add_argument(
        "--heldout-seed",
        type=int,
        default=reward_ladder.HELDOUT_SEED,
        help="held-out task seed: 1 is bench/learning.py's report set, 2 its gate set (probe there to choose a "
        "recipe without reading the set the benchmark reports on)",
    )
    parser.add_argument("--levels", default="1,2")
    return parser


def stage_list(text: str) -> tuple[str, ...]:
    stages = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise argparse.ArgumentTypeError(f"stages are {', '.join(STAGES)}; got {text!r}")
    return tuple(s for s in STAGES if s in stages)  # the cycle's order


def stage_override(text: str) -> tuple[str, str, str]:
    """``--set dpo.max_steps=20`` as ("dpo", "max_steps", "20")."""
    target, sep, value = text.partition("=")
    stage, dot, key = target.partition(".")
    if not (sep and dot and key) or stage not in STAGES:
        raise argparse.ArgumentTypeError(
            f"expected STAGE.KEY=VALUE with STAGE one of {', '.join(STAGES)}; got {text!r}"
        )
    return stage, key, value


def snapshot_of(rows: list[dict], folder: Path) -> Path:
    """A snapshot folder as training/data.py reads it: every passing sample against every failing one
    (preference/train.jsonl, a few of them again as test.jsonl) and the prompts with their tests."""
    ids = {row["prompt"]: i for i, row in enumerate(rows, 1)}
    pairs = [
        {**pair, "prompt_id": ids[pair["prompt"]], "chosen_outcome": "passed", "rejected_outcome": "failed"}
        for pair in reward_ladder.pairs_of(rows, "samples")
    ]  # ids and outcomes as an export has them: the reward recipe's reference pairs read them
    if not pairs:
        raise SystemExit("no prompt has both a passing and a failing sample: nothing to train on")
    reward_ladder.write_snapshot(folder, pairs, pairs[:16])
    (folder / "prompts").mkdir(exist_ok=True)
    prompts = [
        {
            "prompt_id": i,
            "prompt": row["prompt"],
            "language": "python",
            "tests": row["test"],
            "test_style": "humaneval",
            "entry_point": row["entry_point"],
            "reference_solution": row["canonical_solution"],
            "suffix": "",
        }
        for i, row in enumerate(rows, 1)
    ]
    for split, part in (("train", prompts), ("test", prompts[:8])):
        (folder / "prompts" / f"{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in part))
    return folder


def run_stages(args, snapshot: Path, folder: Path) -> tuple[dict[str, str], dict[str, float]]:
    """The stages in the cycle's order, each in its own process, with the command lines the training cycle builds
    (``training.pipeline.plan``); the model folder each policy stage wrote, and each stage's seconds."""
    from training import pipeline
    from training.configs import PipelineArguments

    stage_args: dict[str, list[str]] = {}
    if "online_rl" in args.stages and "reward" not in args.stages:
        stage_args["online_rl"] = ["--reward_model_weight", "0"]  # no reward model to score with: the tests only
    for stage, key, value in args.set:
        stage_args.setdefault(stage, []).extend([f"--{key}", value])
    steps = pipeline.plan(
        PipelineArguments(
            snapshot=str(snapshot),
            output_dir=str(folder),
            model_name_or_path=str(args.model),
            recipe=str(args.recipe),
            stages=list(args.stages),
            stage_args=stage_args,
        )
    )
    models, seconds = {}, {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for step in steps:
        stage, log_path = step["stage"], Path(step["log"])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(log_path, "w") as log:
            done = subprocess.run(
                step["command"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode:
            raise SystemExit(f"stage {stage} failed (exit {done.returncode}): see {log_path}")
        seconds[stage] = round(time.monotonic() - started, 1)
        print(f"{stage}: {seconds[stage]}s", flush=True)
        if stage != "reward":
            models[stage] = step["output_dir"]
    return models, seconds


def held_out(model: str, tasks: list[dict], folder: Path) -> dict:
    from training.promotion_gate import degenerate_reason

    rows = reward_ladder.sample_and_test(model, tasks, n=4, folder=folder)
    rates = [sum(o == "passed" for o in row["outcomes"]) / len(row["outcomes"]) for row in rows]
    low, high = bootstrap_interval(rates)
    samples = [(row["prompt"], text) for row in rows for text in row["samples"]]
    degenerate = sum(bool(degenerate_reason(prompt, text)) for prompt, text in samples)
    return {
        "pass_at_1": round(sum(rates) / len(rates), 4),
        "pass_at_1_low": low,
        "pass_at_1_high": high,
        "degenerate_rate": round(degenerate / len(samples), 4),
        "prompts": len(rows),
    }


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.out = args.out.resolve()
    from training.ladder import ladder_tasks

    levels = [int(v) for v in args.levels.split(",")]
    model = str(reward_ladder.bootstrap(args.model))
    args.model = Path(model)
    rows = [
        row
        for seed in (int(s) for s in args.train_seeds.split(","))
        for row in reward_ladder.sampled(args, model, "train", seed, args.train_prompts, levels, n=4)
    ]
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    snapshot = snapshot_of(rows, folder / "snapshot")
    pairs = sum(1 for _ in open(snapshot / "preference" / "train.jsonl"))
    print(f"{len(rows)} training prompts, {pairs} test-decided pairs", flush=True)
    models, seconds = run_stages(args, snapshot, folder)
    tasks = [t.record() for t in ladder_tasks(n=args.heldout, seed=args.heldout_seed, split="heldout", levels=levels)]
    figures = {}
    for name, path in {"parent": model, **models}.items():
        figures[name] = line = held_out(path, tasks, folder / "heldout" / name)
        print(
            f"[{args.name}] {name:<10} held-out pass@1 {line['pass_at_1']:.3f} [{line['pass_at_1_low']:.3f}, "
            f"{line['pass_at_1_high']:.3f}], degenerate {line['degenerate_rate']:.3f} ({line['prompts']} prompts x 4)",
            flush=True,
        )
    report = {"stages": list(args.stages), "overrides": [".".join(o[:2]) + "=" + o[2] for o in args.set]}
    report.update({"train_prompts": len(rows), "pairs": pairs, "seconds": seconds, "figures": figures})
    (folder / "probe.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
