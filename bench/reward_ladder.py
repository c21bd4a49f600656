"""The reward model on test-decided ladder pairs, offline: does it learn what the tests know?

    python bench/reward_ladder.py --out var/bench/reward_ladder
    python bench/reward_ladder.py --out /tmp/r --train-prompts 64 --heldout 48 --set max_steps=10

Steps: the bootstrap ladder model (``python -m training.bootstrap --preset ladder``, cached) samples
``--samples`` completions for ``--train-prompts`` training-split ladder prompts; the sandbox runs their tests;
test-decided pairs are formed (a passing sample against a failing one, and the reference solution against a
failing one: ``--pairs``); the reward stage itself (training/reward.py, recipe ``--recipe``, any ``--set
key=value`` override) trains on them from a snapshot folder. Then the saved reward model is scored on:

- ``heldout_reference``: held-out ladder templates, the reference solution against the model's first sample when
  that failed, sampled by the evaluate stage with the ladder recipe (as every split here): what
  bench/learning_measure.py measures each round;
- ``heldout_samples``: held-out templates, a passing sample against a failing one;
- ``train_unseen``: training-split templates, prompts the reward stage never saw, pairs as in training;
- ``train_fit``: the pairs it trained on.

Each accuracy is printed with its 95% Wilson interval and its number of pairs, with the training loss curve and
the reward stage's seconds; beside it the grounded reward's (the learned score + 10 for a completion that passes
its prompt's docstring example, training/doc_examples.py) and the example's alone (a pair it cannot tell counts
0.5), so what the learned model adds shows. Samples are cached under DIR/samples (keyed by model, prompts and
settings), so recipes can be compared on the same pairs. Writes DIR/<name>/report.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.data import FAILED_OUTCOMES  # noqa: E402

TRAIN_SEED = 100  # bench/learning_arm.py: round r imports training tasks of seed 100 + r
UNSEEN_SEED = 900  # training-split prompts the reward model never trains on
HELDOUT_SEED = 1  # bench/learning.py's held-out set
EVALUATE_RECIPE = ROOT / "training" / "recipes" / "ladder" / "evaluate.yaml"  # how every split is sampled


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="run", help="subfolder of DIR for this recipe's reward model and report")
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "models" / "bootstrap-ladder")
    parser.add_argument("--init", type=Path, default=None, help="reward model init (default: --model)")
    parser.add_argument("--recipe", type=Path, default=ROOT / "training" / "recipes" / "ladder" / "reward.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a reward-stage flag")
    parser.add_argument("--train-prompts", type=int, default=192)
    parser.add_argument("--train-seeds", default=str(TRAIN_SEED), help="comma-separated task seeds (192 each)")
    parser.add_argument("--unseen-prompts", type=int, default=96)
    parser.add_argument("--heldout", type=int, default=96, help="held-out ladder prompts")
    parser.add_argument("--samples", type=int, default=4, help="completions per training prompt")
    parser.add_argument("--levels", default="1,2")
    parser.add_argument("--pairs", choices=("samples", "reference", "both"), default="both")
    parser.add_argument("--max-train-pairs", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.out = args.out.resolve()
    levels = [int(v) for v in args.levels.split(",")]
    model = str(bootstrap(args.model))
    train = [
        row
        for seed in (int(s) for s in args.train_seeds.split(","))
        for row in sampled(args, model, "train", seed, args.train_prompts, levels, n=args.samples)
    ]
    unseen = sampled(args, model, "train", UNSEEN_SEED, args.unseen_prompts, levels, n=args.samples)
    heldout = sampled(args, model, "heldout", HELDOUT_SEED, args.heldout, levels, n=4)
    train_pairs = pairs_of(train, args.pairs)[: args.max_train_pairs]
    sets = {
        "heldout_reference": reference_first_failing(heldout),
        "heldout_samples": pairs_of(heldout, "samples"),
        "train_unseen": pairs_of(unseen, args.pairs),
        "train_fit": train_pairs,
    }
    folder = args.out / args.name
    snapshot = write_snapshot(folder / "snapshot", train_pairs, sets["heldout_reference"])
    started = time.monotonic()
    result = train_reward(args, snapshot, folder / "reward")
    seconds = round(time.monotonic() - started, 1)
    figures = {name: accuracy(folder / "reward", pairs) for name, pairs in sets.items()}
    report = {
        "recipe": str(args.recipe),
        "overrides": args.set,
        "pairs": args.pairs,
        "train_pairs": len(train_pairs),
        "reward_stage_seconds": seconds,
        "stage_result": result,
        "loss_curve": loss_curve(folder / "reward"),
        "figures": figures,
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(args.name, report)
    return 0


def bootstrap(path: Path) -> Path:
    from training import bootstrap as builder

    built = builder.build(path, preset="ladder", seed=0)
    print(f"bootstrap {'cached' if built.cached else 'built'}: {built.path}", flush=True)
    return built.path


def sampled(args, model: str, split: str, seed: int, n_prompts: int, levels, *, n: int) -> list[dict]:
    """Each task of the split with ``n`` samples and their sandbox outcomes, cached under DIR/samples."""
    from training.ladder import ladder_tasks

    stamp = (Path(model) / "config.json").stat().st_mtime_ns
    sampling = EVALUATE_RECIPE.read_text()
    key = hashlib.sha256(json.dumps([model, stamp, split, seed, n_prompts, levels, n, sampling]).encode()).hexdigest()
    key = key[:16]
    cache = args.out / "samples" / f"{split}-{seed}-{n_prompts}x{n}-{key}.jsonl"
    if cache.is_file():
        return [json.loads(line) for line in cache.read_text().splitlines()]
    tasks = ladder_tasks(n=n_prompts, seed=seed, split=split, levels=levels)
    started = time.monotonic()
    rows = sample_and_test(model, [t.record() for t in tasks], n=n, folder=cache.with_suffix(""))
    passed = sum(o == "passed" for r in rows for o in r["outcomes"])
    print(
        f"{split} seed {seed}: {len(rows)} prompts x {n} samples, {passed} passed, {time.monotonic() - started:.0f}s",
        flush=True,
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def sample_and_test(model: str, tasks: list[dict], *, n: int, folder: Path) -> list[dict]:
    """Each task with ``n`` samples and their outcomes, sampled and tested by the evaluate stage itself
    (``training.evaluate.generate_and_test``, the ladder recipe's settings and stop sequences): the held-out
    samples are then the kind bench/learning_measure.py reads from eval.json."""
    from training import cli, evaluate

    folder.mkdir(parents=True, exist_ok=True)
    prompts_file = folder / "tasks.jsonl"
    prompts_file.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    flags = ["--config", str(EVALUATE_RECIPE), "--prompts_file", str(prompts_file), "--n_samples", str(n)]
    # the stage's required folders: sampling reads no snapshot (the prompts come from the file) and writes nothing
    flags += ["--model_name_or_path", model, "--snapshot", str(folder), "--output_dir", str(folder)]
    (recipe,) = cli.parse(evaluate.make_parser(), flags)
    completions, results = evaluate.generate_and_test(model, evaluate.eval_prompts(recipe, None), recipe)
    return [
        {**t, "samples": texts, "outcomes": [r.outcome for r in mine]}
        for t, texts, mine in zip(tasks, completions, results, strict=True)
    ]


def pairs_of(rows: list[dict], kind: str) -> list[dict]:
    """Test-decided pairs: each passing sample against each failing one (``samples``), the reference against
    each failing one (``reference``), or both; empty and whitespace-equal samples once, as the platform pairs."""
    pairs = []
    for row in rows:
        seen, good, bad = set(), [], []
        for text, outcome in zip(row["samples"], row["outcomes"], strict=True):
            normal = " ".join(text.split())
            if not normal or normal in seen:
                continue
            seen.add(normal)
            (good if outcome == "passed" else bad if outcome in FAILED_OUTCOMES else []).append(text)
        chosen = (good if kind in ("samples", "both") else []) + (
            [row["canonical_solution"]] if kind in ("reference", "both") else []
        )
        pairs += [{"prompt": row["prompt"], "chosen": c, "rejected": r} for c in chosen for r in bad]
    return pairs


def reference_first_failing(rows: list[dict]) -> list[dict]:
    """bench/learning_measure.truth_pairs: the reference against the first sample when it failed."""
    return [
        {"prompt": row["prompt"], "chosen": row["canonical_solution"], "rejected": row["samples"][0]}
        for row in rows
        if row["outcomes"][0] != "passed" and row["samples"][0].strip()
    ]


def write_snapshot(folder: Path, train: list[dict], test: list[dict]) -> Path:
    """A snapshot folder as training/data.py reads it: preference/{train,test}.jsonl and a manifest."""
    (folder / "preference").mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("test", test)):
        lines = [json.dumps({**row, "margin": 0.0, "decided_by_tests": True}) + "\n" for row in rows]
        (folder / "preference" / f"{split}.jsonl").write_text("".join(lines))
    (folder / "manifest.json").write_text(json.dumps({"snapshot_version": "bench-reward-ladder"}) + "\n")
    return folder


def train_reward(args, snapshot: Path, out: Path) -> dict:
    """The real reward stage (training.reward.main), as the pipeline runs it, plus the --set overrides."""
    from training import reward

    argv = [
        "--config",
        str(args.recipe),
        "--snapshot",
        str(snapshot),
        "--output_dir",
        str(out),
        "--model_name_or_path",
        str(args.init or args.model),
    ]
    for item in args.set:
        key, _, value = item.partition("=")
        argv += [f"--{key}", value]
    return reward.main(argv)


def accuracy(reward_dir: Path, pairs: list[dict]) -> dict:
    """Pair accuracy scored as bench/learning_measure.py scores it (prompt on a token boundary, + EOS)."""
    from training import doc_examples, reward_scoring
    from training.boundary import at_token_boundary

    if not pairs:
        return {"accuracy": None, "pairs": 0, "low": None, "high": None, "grounded": None}
    columns = ("prompt", "chosen", "rejected")
    rows = [dict(zip(columns, at_token_boundary(*(p[c] for c in columns)), strict=True)) for p in pairs]
    model, tokenizer = reward_scoring.load_reward_model(str(reward_dir), device="cpu")
    result = reward_scoring.pair_accuracy(model, tokenizer, rows, examples_weight=doc_examples.DEFAULT_WEIGHT)
    n = result["pairs"]
    low, high = wilson(round(result["accuracy"] * n), n)
    grounded_low, grounded_high = wilson(round(result["grounded_accuracy"] * n), n)
    return {
        "accuracy": round(result["accuracy"], 4),
        "pairs": n,
        "low": low,
        "high": high,
        "mean_margin": round(result["mean_margin"], 4),
        "grounded": {  # the learned score + the prompt's docstring examples (training/doc_examples.py)
            "accuracy": round(result["grounded_accuracy"], 4),
            "low": grounded_low,
            "high": grounded_high,
            "examples_decided": result["examples_decided"],
            "examples_alone": round(result["examples_accuracy"], 4),  # a pair they cannot tell: 0.5
        },
    }


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(centre - half, 4), round(centre + half, 4)


def loss_curve(reward_dir: Path, points: int = 8) -> list[dict]:
    """A few (step, loss, train accuracy) points of the stage's metrics.jsonl."""
    path = reward_dir / "metrics.jsonl"
    logs = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    logs = [log for log in logs if "loss" in log]
    if not logs:
        return []
    picks = sorted({round(i * (len(logs) - 1) / (points - 1)) for i in range(points)})
    return [
        {
            "step": logs[i]["step"],
            "loss": round(logs[i]["loss"], 4),
            "accuracy": round(logs[i].get("accuracy", float("nan")), 3),
        }
        for i in picks
    ]


def print_report(name: str, report: dict) -> None:
    curve = " ".join(f"{p['step']}:{p['loss']:.3f}/{p['accuracy']:.2f}" for p in report["loss_curve"])
    print(
        f"[{name}] overrides {report['overrides']}, pairs {report['pairs']}, {report['train_pairs']} training "
        f"pairs, reward stage {report['reward_stage_seconds']}s"
    )
    print(f"[{name}] loss/accuracy by step: {curve}")
    for set_name, f in report["figures"].items():
        if f["accuracy"] is None:
            print(f"[{name}] {set_name:<18} n/a (0 pairs)")
            continue
        g = f["grounded"]
        print(
            f"[{name}] {set_name:<18} {f['accuracy']:.3f} [{f['low']:.3f}, {f['high']:.3f}] "
            f"({f['pairs']} pairs, mean margin {f['mean_margin']:.3f}); grounded in the examples "
            f"{g['accuracy']:.3f} [{g['low']:.3f}, {g['high']:.3f}] ({g['examples_decided']} decided by them; "
            f"the examples alone {g['examples_alone']:.3f})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
