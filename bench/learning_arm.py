"""One arm of bench/learning.py in its own process: settings, database, prompts, then rounds of the loop.

The arm's record goes to DIR/<arm>/arm.json after every round (a run cut short keeps what it finished).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import threading
from pathlib import Path

HELD_OUT_SEED = 1
TRAIN_SEED_BASE = 100  # round r imports training-split ladder tasks generated with seed 100 + 1000 * --seed + r
STAGE_SEED = 42  # the recipe's training seed; --seed adds to it
TRAINED_STAGES = ("sft", "reward", "dpo", "online_rl")
WITHOUT_QUALITY_CONTROL = {"control_bad25"}  # the platform as it was before issue 12


def configure(args, arm_dir: Path) -> None:
    """Environment for feedback.settings, before Django starts: eager Celery, this arm's folders and recipe."""
    var = arm_dir / "var"
    shutil.rmtree(arm_dir, ignore_errors=True)
    recipe_write(args, var / "recipes" / "ladder")
    database = _database_url(args.database_url, arm_dir.name) if args.database_url else f"sqlite:///{var}/db.sqlite3"
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "feedback.settings",
            "DATABASE_URL": database,
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "CODEPREF_VAR_DIR": str(var),
            "CODEPREF_MODEL": str(args.model),
            "CODEPREF_TRAINING_RECIPES_DIR": str(var / "recipes"),
            "CODEPREF_TRAINING_RECIPE": "ladder",
            "CODEPREF_TRAINING_POLL_SECONDS": "1",
            "CODEPREF_TRAINING_ARENA_PROMPTS": "0",  # each round generates with the active model itself
            "CODEPREF_PAIRING_POLICY": "self",
            "CODEPREF_VOTES_PER_PAIR": "3",
            "CODEPREF_SNAPSHOT_TEST_FRACTION": "0.2",
            "CODEPREF_PROMOTION_MIN_COMPLETIONS": str(min(100, args.gate_prompts * 4)),
            # The simulated crowd votes as fast as the server answers; the rate limits are not what is measured.
            "API_USER_RATE": "100000/min",
            "API_VOTE_RATE": "100000/min",
        }
    )
    if not quality_controlled(args):  # a platform without quality control: no gold pairs, no onboarding
        os.environ.update({"CODEPREF_QC_GOLD_RATE": "0", "CODEPREF_QC_ONBOARDING_PAIRS": "0"})
    os.environ.pop("CELERY_BROKER_URL", None)


def recipe_write(args, recipe: Path) -> None:
    """The arm's copy of ``--recipe`` at ``recipe``: held-out prompts, --seed, --reward-init and the control's
    settings appended (a later key wins)."""
    recipe.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(args.recipe, recipe)
    with open(recipe / "evaluate.yaml", "a") as handle:
        handle.write(f"prompts_file: {args.out / 'gate.jsonl'}\n")  # the report set stays the benchmark's
    if args.seed:  # evaluate keeps its seed: every run samples the held-out prompts alike
        for stage in TRAINED_STAGES:
            with open(recipe / f"{stage}.yaml", "a") as handle:
                handle.write(f"seed: {STAGE_SEED + args.seed}\n")
    if getattr(args, "gpu", False):  # the recipe's stages on the CUDA GPU, bf16 mixed precision (fp32 weights)
        for stage in TRAINED_STAGES:
            with open(recipe / f"{stage}.yaml", "a") as handle:
                handle.write("use_cpu: false\nbf16: true\n")
    if args.reward_init:
        with open(recipe / "reward.yaml", "a") as handle:
            handle.write(f"init_model_path: {args.reward_init.resolve()}\nlearning_rate: {args.reward_init_lr}\n")
    if args.arm == "control_swapped":
        # Reference pairs are labelled by the tests' outcomes, which the swap leaves true: the control learns
        # only from the (swapped) labels it was given.
        with open(recipe / "reward.yaml", "a") as handle:
            handle.write("reference_pairs: false\n")
        # Likewise SFT's check of the chosen side's outcome (it would drop exactly the control's test-decided rows),
        # and the tests' reward in online RL: the control's policy is rewarded by its reward model alone.
        with open(recipe / "sft.yaml", "a") as handle:
            handle.write("skip_failed_chosen: false\n")
        with open(recipe / "online_rl.yaml", "a") as handle:
            handle.write("tests_weight: 0.0\nreward_model_weight: 1.0\n")
    # The copy's pipeline reads the copy's stage files, whatever folder the original named.
    with open(recipe / "pipeline.yaml", "a") as handle:
        handle.write(f"recipe: {recipe}\n")


def quality_controlled(args) -> bool:
    return args.arm not in WITHOUT_QUALITY_CONTROL


def _database_url(url: str, arm: str) -> str:
    """``<url>_<arm>``: the arm's own PostgreSQL database, created (or emptied) here."""
    import psycopg

    base, _, name = url.rpartition("/")
    own = f"{name}_{arm}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{own}"')
    return f"{base}/{own}"


@contextlib.contextmanager
def http_api(transport: str):
    """The crowd's way in: a WSGI server on loopback in a thread (the real HTTP API), or Django's test client."""
    from feedback.crowd.transport import HttpApi, InProcessApi

    if transport == "in-process":
        yield InProcessApi()
        return
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api = HttpApi(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield api
    finally:
        api.close()
        server.shutdown()
        server.server_close()


def import_round_prompts(args, number: int) -> list[int]:
    """New training-split ladder prompts for round ``number``."""
    from feedback.crowd.rounds import ladder_prompts_import
    from training.ladder import ladder_tasks

    levels = [int(v) for v in args.levels.split(",")]
    seed = TRAIN_SEED_BASE + 1000 * args.seed + number
    tasks = ladder_tasks(n=args.train_prompts, seed=seed, split="train", levels=levels)
    return ladder_prompts_import(tasks, tag=f"r{number}", anchor_pairs=args.anchor_pairs)


def measure_round(args, arm_dir: Path, record: dict) -> dict | None:
    """The round's parent and candidate on the report set (learning_measure.measure), or None where the cycle
    left no candidate."""
    import time

    from bench import learning_measure

    if not record.get("policy_dir"):
        return None
    started = time.monotonic()
    evaluation = json.loads((Path(record["eval_dir"]) / "eval.json").read_text())
    settings = {
        "heldout": args.out / "heldout.jsonl",
        "config": arm_dir / "var" / "recipes" / "ladder" / "evaluate.yaml",
        "snapshot": evaluation["snapshot"],
        "cache": arm_dir / "measure",
    }
    measured = {
        "parent": learning_measure.measure(record["generator_dir"], **settings),
        "policy": learning_measure.measure(record["policy_dir"], **settings),
    }
    record["measure_seconds"] = round(time.monotonic() - started, 1)
    return measured


def quality_control_hook(args):
    """``--quality-control``'s ``module:function`` (issue 12's recompute), or None: off, or an arm without it."""
    spec = args.quality_control
    if not spec or spec == "none" or not quality_controlled(args):
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def run_arm(args, *, mix: str) -> None:
    arm_dir = args.out / args.arm
    configure(args, arm_dir)
    import django

    django.setup()
    from django.core.management import call_command

    from bench import learning_measure
    from feedback.crowd.rounds import RoundSettings, loop_round

    call_command("migrate", interactive=False, verbosity=0)
    rounds: list[dict] = []
    with http_api(args.transport) as api:
        for number in range(1, args.rounds + 1):
            settings = RoundSettings(
                prompt_ids=tuple(import_round_prompts(args, number)),
                samples=args.samples,
                mix=mix,
                crowd_seed=1000 * args.seed + number,
                sample_seed=1000 * (args.seed + 1),
                quality_control=quality_control_hook(args),
                # without quality control every vote weighs 1 (suspended volunteers would still be left out)
                snapshot_filters=None if quality_controlled(args) else {"quality_control": False},
                swap_labels=args.arm == "control_swapped",
            )
            record = loop_round(number, settings, api=api, model_path=str(args.model))
            measured = measure_round(args, arm_dir, record)
            learning_measure.add_figures(record, heldout=args.out / "heldout.jsonl", measured=measured)
            rounds.append(record)
            print(learning_measure.round_line(args.arm, record), flush=True)
            arm = {"arm": args.arm, "mix": mix, "rounds": rounds}
            (arm_dir / "arm.json").write_text(json.dumps(arm, indent=2, default=str) + "\n")
