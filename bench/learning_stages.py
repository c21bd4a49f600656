"""What each stage of one training cycle adds: held-out pass@1 of the parent and of each stage's saved model.

    python bench/learning_stages.py --run var/bench/learning/main/var/training/run-1 \\
        --heldout var/bench/learning/heldout.jsonl

Every model samples the same held-out prompts with the same seeds and settings as the cycle's evaluate stage
(the run's evaluate.yaml); pass@1 is the mean over prompts of passed / n, with the 95% bootstrap interval over
prompts that bench/learning.py uses. Writes <run>/stages_pass.json and prints one line per model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.learning_measure import bootstrap_interval  # noqa: E402

STAGES = ("sft", "dpo", "online_rl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a cycle's folder (summary.json, one per stage)")
    parser.add_argument("--heldout", type=Path, required=True, help="the held-out prompts (HumanEval schema)")
    parser.add_argument(
        "--model",
        action="append",
        type=named_model,
        default=[],
        metavar="NAME=DIR",
        help="also a model folder trained outside the cycle (a variant of a stage), sampled the same way",
    )
    args = parser.parse_args(argv)
    from training.evaluate import eval_prompts, sample_and_test

    summary = json.loads((args.run / "summary.json").read_text())
    settings = evaluate_settings(summary, args.run, args.heldout)
    prompts = eval_prompts(settings, None)
    models = {"parent": summary["parent_dir"], **{s: str(args.run / s) for s in STAGES if (args.run / s).is_dir()}}
    models.update(args.model)
    out = {}
    for name, path in models.items():
        rows = sample_and_test(path, prompts, settings)
        rates = [row["passed"] / row["n"] for row in rows]
        low, high = bootstrap_interval(rates)
        out[name] = {
            "pass_at_1": round(sum(rates) / len(rates), 4),
            "pass_at_1_low": low,
            "pass_at_1_high": high,
            "empty": sum(reason == "empty" for row in rows for reason in row["degenerate"]),
        }
        line = out[name]
        print(
            f"{name:<10} held-out pass@1 {line['pass_at_1']:.3f} [{low:.3f}, {high:.3f}], "
            f"empty samples {line['empty']}",
            flush=True,
        )
    (args.run / "stages_pass.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


def named_model(text: str) -> tuple[str, str]:
    """``--model NAME=DIR`` as (name, folder)."""
    name, sep, folder = text.partition("=")
    if not (name and sep and folder):
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, e.g. rl64=var/variants/rl64; got {text!r}")
    return name, folder


def evaluate_settings(summary: dict, run: Path, heldout: Path):
    """The cycle's evaluate settings on ``heldout``: its recipe's evaluate.yaml read by the evaluate stage's own
    parser, as the cycle read it (the stage's defaults under it, an unknown key refused).

    The parser wants a snapshot, a model and an output folder: the cycle's (only prompts_file is read here)."""
    from training import cli, evaluate

    (settings,) = cli.parse(
        evaluate.make_parser(),
        [
            "--config",
            str(Path(summary["recipe"]) / "evaluate.yaml"),
            "--snapshot",
            str(summary["snapshot"]),
            "--model_name_or_path",
            str(summary["parent_dir"]),
            "--output_dir",
            str(run),
            "--prompts_file",
            str(heldout),
        ],
    )
    settings.max_prompts = None  # every held-out prompt
    return settings


if __name__ == "__main__":
    raise SystemExit(main())
