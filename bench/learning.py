"""The closed loop as a benchmark: does the platform make the model better, round after round?

    python bench/learning.py --rounds 3 --out var/bench/learning
    python bench/learning.py --rounds 1 --out /tmp/l --controls none --train-prompts 16 --heldout 24

Each round, through the platform's own services (feedback/crowd/rounds.py): the ACTIVE model writes 4 samples
for new training-split ladder prompts (training/ladder.py; tests run in the sandbox, pairs formed), the
simulated crowd votes on them through the HTTP API (a server on loopback in this process), a snapshot is
exported, and a training cycle (recipe training/recipes/ladder) runs sft -> reward -> dpo -> online_rl ->
evaluate; the promotion gate then keeps or replaces the active model. Round 0 is the bootstrap model
(``python -m training.bootstrap --preset ladder``, cached).

Two held-out sets, both of templates training never sees: the GATE set (DIR/gate.jsonl, ``--gate-prompts``
tasks drawn with another seed) is what the cycle's evaluate stage samples to choose between its DPO and
online-RL models and what the promotion gate judges; the REPORT set (DIR/heldout.jsonl, ``--heldout`` tasks)
is never shown to the platform: after each round the benchmark samples the round's parent and candidate on
it (the evaluate stage's settings and seeds, each model once: DIR/<arm>/measure/), and every pass@1 figure and
verdict below reads it. A choice made on the gate set is thus measured on other tasks and other samples (the
two sets share templates: 81 held-out templates of levels 1-2 are too few to split).

Arms, each in its own process, database and var folder: ``main`` (an honest crowd), ``control_swapped`` (the
crowd's labels swapped: must not improve), ``control_bad25_qc`` (a quarter of the crowd random / always-left /
colluding) and ``control_bad25`` (the same crowd on a platform without quality control: no gold pairs handed out,
no onboarding, no recompute, every vote weighing 1 in the export). Every other arm runs the platform's quality
control as deployed: gold pairs and onboarding on, and ``--quality-control`` (module:function, default
issue 12's recompute; ``none``: off) run after the votes and before each export, where the 10-minute beat
task would have run. Celery runs eager; the database is SQLite under DIR unless --database-url names
a PostgreSQL server (each arm then uses, and first empties, its own database ``<name>_<arm>``).

Writes DIR/learning.json ({"rounds": [...], "control_swapped": {"rounds": [...]}, ...}) and DIR/learning.png,
and prints each target's figure and verdict. pass@1 intervals are 95% percentile bootstraps of the per-prompt pass
rates (2,000 resamples, seed 0), drawing prompts and, separately, whole templates: the held-out prompts share
templates (384 prompts come from 75), so the intervals over templates are the wider, honest ones and the rise's
verdict reads them; the rise is also given paired (same prompts and seeds) with its interval over templates.
``--seed`` draws other training prompts, crowd choices, samples and training seeds (0: the runs in
bench/README.md); bench/learning_seeds.py averages the rise over runs.
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

from bench import learning_measure, learning_report  # noqa: E402

# 25% bad: 5 of 20 (one random, one always-left, a colluding group of three that picks the longer side)
BAD25 = "careful:9,noisy:6,random:1,left:1,colluding:3"
ARMS = {
    "main": "careful:6,noisy:4",
    "control_swapped": "swapped:10",
    "control_bad25": BAD25,  # without quality control (bench/learning_arm.py: WITHOUT_QUALITY_CONTROL)
    "control_bad25_qc": BAD25,
}
QUALITY_CONTROL = "feedback.datasets.quality:quality_recompute"
HELDOUT_SEED = 1
GATE_SEED = 2


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--controls",
        default="swapped",
        help="comma-separated: swapped, bad25 (without quality control), bad25_qc; or none",
    )
    parser.add_argument("--preset", default="ladder", help="bootstrap preset (training/bootstrap.py)")
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "models" / "bootstrap-ladder")
    parser.add_argument("--train-prompts", type=int, default=192, help="new training-split ladder prompts per round")
    parser.add_argument(
        "--heldout",
        type=int,
        default=384,
        help="held-out ladder prompts the cycle evaluates on (384 come from 75 of the 81 held-out templates of "
        "levels 1-2; 96 from 41)",
    )
    parser.add_argument(
        "--gate-prompts",
        type=int,
        default=384,
        help="held-out ladder prompts (another seed than --heldout's) the cycle evaluates on and the gate judges",
    )
    parser.add_argument("--samples", type=int, default=4, help="completions per training prompt per round")
    parser.add_argument("--levels", default="1,2", help="ladder levels (steps per task)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the loop's seed: training prompts, crowd, samples and the stages' training seeds (the bootstrap "
        "model and the held-out prompts stay the same, so runs compare on them)",
    )
    parser.add_argument("--recipe", type=Path, default=ROOT / "training" / "recipes" / "ladder")
    parser.add_argument(
        "--reward-init",
        type=Path,
        default=None,
        help="every arm's reward stage starts from this reward model (e.g. bench/reward_ladder.py's, trained on "
        "test-decided training-split pairs) at --reward-init-lr, instead of a new head on the SFT policy",
    )
    parser.add_argument("--reward-init-lr", type=float, default=1e-4)
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="train the recipe's stages on the CUDA GPU in bf16 (use_cpu false, bf16 true; generation and "
        "evaluation use the GPU whenever torch sees one): the GPU form, bench/gpu_learning.sh",
    )
    parser.add_argument("--database-url", default="", help="postgres://... (default: SQLite under DIR)")
    parser.add_argument("--transport", choices=("http", "in-process"), default="http")
    parser.add_argument(
        "--quality-control",
        default=QUALITY_CONTROL,
        help="module:function run after the votes and before the export in every arm but control_bad25; none: off",
    )
    parser.add_argument("--jobs", type=int, default=1, help="arms run at once (each in its own process)")
    parser.add_argument(
        "--report-only", action="store_true", help="assemble learning.json from the arms' arm.json files as they are"
    )
    parser.add_argument("--anchor-pairs", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--arm", default="", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.rounds < 1 or min(args.train_prompts, args.heldout, args.gate_prompts) < 2 or args.seed < 0:
        raise SystemExit(
            "--rounds must be at least 1, --train-prompts, --heldout and --gate-prompts at least 2, --seed at least 0"
        )
    args.out = args.out.resolve()
    if args.gpu and not cuda_available():
        raise SystemExit("--gpu: torch sees no CUDA GPU on this machine; leave --gpu out to train on the CPU")
    if args.arm:
        from bench.learning_arm import run_arm

        run_arm(args, mix=ARMS[args.arm])
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    model_info = bootstrap_model(args)
    templates = learning_measure.heldout_templates(heldout_file(args))
    gate_file(args)
    arms = ["main"] + [f"control_{c}" for c in args.controls.split(",") if c and c != "none"]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"--controls: unknown {', '.join(unknown)} (known: swapped, bad25, bad25_qc)")
    if args.report_only:  # a run cut short: each arm's arm.json holds the rounds it finished
        records = {a: json.loads((args.out / a / "arm.json").read_text()) for a in arms if (args.out / a).is_dir()}
    else:
        records = run_arm_processes(args, arms)
    result = learning_report.assemble(records, bootstrap=model_info, args=vars(args), templates=templates)
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    (args.out / "learning.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    learning_report.plot(result, args.out / "learning.png")
    print(learning_report.summary(result))
    print(f"wrote {args.out / 'learning.json'} and {args.out / 'learning.png'}")
    return 0


def bootstrap_model(args) -> dict:
    from training import bootstrap

    built = bootstrap.build(args.model, preset=args.preset, seed=0)
    keep = ("preset", "steps", "stopped_by", "final_loss", "val_loss", "params", "seconds", "corpus")
    print(f"bootstrap {'cached' if built.cached else 'built'}: {built.path} ({built.info.get('seconds')}s)")
    return {k: built.info.get(k) for k in keep}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def heldout_file(args) -> Path:
    from training.ladder import ladder_tasks

    levels = [int(v) for v in args.levels.split(",")]
    tasks = ladder_tasks(n=args.heldout, seed=HELDOUT_SEED, split="heldout", levels=levels)
    path = args.out / "heldout.jsonl"
    path.write_text("".join(json.dumps(t.record()) + "\n" for t in tasks))
    return path


def gate_file(args) -> Path:
    """DIR/gate.jsonl: held-out-split tasks of another seed, none with a report-set prompt's text."""
    from training.ladder import ladder_tasks

    levels = [int(v) for v in args.levels.split(",")]
    report = {json.loads(line)["prompt"] for line in (args.out / "heldout.jsonl").read_text().splitlines()}
    tasks = ladder_tasks(n=args.gate_prompts, seed=GATE_SEED, split="heldout", levels=levels)
    path = args.out / "gate.jsonl"
    path.write_text("".join(json.dumps(t.record()) + "\n" for t in tasks if t.prompt not in report))
    return path


def arm_command(args, arm: str) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--arm", arm]
    names = ("rounds", "out", "preset", "model", "train_prompts", "heldout", "gate_prompts", "samples", "levels",
             "recipe", "seed")  # fmt: skip
    for name in (*names, "reward_init_lr", *(("reward_init",) if args.reward_init else ())):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    argv += ["--database-url", args.database_url, "--transport", args.transport] + (["--gpu"] if args.gpu else [])
    return argv + ["--quality-control", args.quality_control] + (["--anchor-pairs"] if args.anchor_pairs else [])


def run_arm_processes(args, arms: list[str]) -> dict[str, dict]:
    """Each arm in its own process (Django settings are per process), ``--jobs`` at a time; output in
    DIR/<arm>.log; each record from DIR/<arm>/arm.json."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEPREF_", "CELERY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    waiting, running, records = list(arms), [], {}
    while waiting or running:
        while waiting and len(running) < max(1, args.jobs):
            arm = waiting.pop(0)
            log = open(args.out / f"{arm}.log", "wb")  # noqa: SIM115 (closed when the process ends)
            print(f"arm {arm}: started, log {args.out / f'{arm}.log'}", flush=True)
            running.append((arm, log, subprocess.Popen(arm_command(args, arm), stdout=log, stderr=log, env=env)))
        time.sleep(2)
        for item in [r for r in running if r[2].poll() is not None]:
            arm, log, process = item
            running.remove(item)
            log.close()
            if process.returncode != 0:
                raise SystemExit(f"arm {arm} failed (exit {process.returncode}); see {args.out / f'{arm}.log'}")
            records[arm] = json.loads((args.out / arm / "arm.json").read_text())
            for record in records[arm]["rounds"]:
                print(learning_measure.round_line(arm, record), flush=True)
    return {arm: records[arm] for arm in arms}


if __name__ == "__main__":
    raise SystemExit(main())
