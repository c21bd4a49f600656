"""A stand-in for ``training.pipeline`` in the training-cycle tests: the same arguments and output layout.

    python -m tests.feedback.fake_pipeline --config C --snapshot S --output_dir O --model_name_or_path M

FAKE_PIPELINE_MODE (environment): ``succeed`` (default: the policy passes 2 of 4 samples on every prompt, the
parent 1 of 4: a clear win), ``worse`` (0 of 4 against 1 of 4), ``tie`` (both pass nothing), ``fail`` (the dpo
stage fails), ``crash`` (exit 3 without a summary), ``die`` (SIGKILL mid-stage), ``sleep`` (starts a
child process in its group and sleeps, for cancel and timeout tests).
FAKE_PIPELINE_DELAY: seconds to wait before each stage.
FAKE_PIPELINE_PROMPTS: held-out prompts in the evaluation (default 30, with 4 samples each).
FAKE_PIPELINE_CANDIDATES=2: the evaluation chose the policy (dpo) over the online_rl model, as a recipe with
``select_from: [dpo]`` has it do.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# A valid 1x1 PNG: what the admin serves as a stage's loss curve.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
STAGES = ("reward", "dpo", "evaluate")
SAMPLES = 4
# Passing samples per prompt (policy, parent), of SAMPLES, by mode.
PASSED = {"succeed": (2, 1), "worse": (0, 1), "tie": (0, 0)}


def _evaluation(mode: str, prompts: int) -> dict:
    """What the evaluate stage's result.json holds: pass@1 side by side and the per-prompt counts."""
    policy, parent = PASSED.get(mode, PASSED["succeed"])
    return {
        "pass@1": {"policy": policy / SAMPLES, "parent": parent / SAMPLES},
        "degenerate_rate": {"policy": 0.0, "parent": 0.0},
        "paired": {
            "prompt_ids": list(range(1, prompts + 1)),
            "n_samples": SAMPLES,
            "passed": {"policy": [policy] * prompts, "parent": [parent] * prompts},
            "degenerate": {"policy": [0] * prompts, "parent": [0] * prompts},
        },
    }


def _chosen() -> dict:
    if os.environ.get("FAKE_PIPELINE_CANDIDATES") != "2":
        return {}
    return {
        "selected": "dpo",
        "candidates_compared": 2,
        "candidates": [
            {"name": "online_rl", "pass@1": 0.125, "selected": False},
            {"name": "dpo", "pass@1": 0.5, "selected": True},
        ],
    }


def _write(path: Path, data) -> None:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    for name in ("--config", "--snapshot", "--output_dir", "--model_name_or_path"):
        parser.add_argument(name, required=True)
    parser.add_argument("--launcher", default="")
    parser.add_argument("--trust_remote_code", default="false")
    parser.add_argument("--prompt_prefix", default="")
    args = parser.parse_args(argv)
    mode = os.environ.get("FAKE_PIPELINE_MODE", "succeed")
    delay = float(os.environ.get("FAKE_PIPELINE_DELAY", "0"))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"fake pipeline ({mode}): model {args.model_name_or_path}, snapshot {args.snapshot}", flush=True)
    _write(out / "arguments.json", vars(args))  # what the platform passed, for the tests to read back

    if mode == "sleep":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (out / "reward").mkdir(exist_ok=True)
        _write(out / "child.pid", str(child.pid))
        time.sleep(float(os.environ.get("FAKE_PIPELINE_SLEEP", "120")))
        return 0
    if mode == "die":  # killed mid-stage: the summary still says "running", as the real pipeline's would
        (out / "reward").mkdir(exist_ok=True)
        _write(out / "summary.json", {"state": "running", "stages": [{"stage": "reward", "state": "running"}]})
        os.kill(os.getpid(), 9)
    if mode == "crash":
        print("Traceback (most recent call last):\nRuntimeError: out of memory", flush=True)
        return 3

    stages = []
    for stage in STAGES:
        time.sleep(delay)
        folder = out / stage
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "loss.png").write_bytes(PNG)
        _write(folder / "metrics.jsonl", json.dumps({"step": 1, "loss": 0.69}) + "\n")
        _write(folder / "run_info.json", {"stage": stage, "seed": 0, "model_name_or_path": args.model_name_or_path})
        _write(folder / "config.json", {"model_type": "llama"})
        if mode == "fail" and stage == "dpo":
            stages.append(
                {"stage": stage, "state": "failed", "output_dir": str(folder), "result": None, "seconds": 0.1}
            )
            _write(
                out / "summary.json",
                {"state": "failed", "failed_stage": "dpo", "message": "dpo: loss became nan", "stages": stages},
            )
            print("dpo: loss became nan", flush=True)
            return 1
        result = {"loss": 0.69, "accuracy": 0.75} if stage != "evaluate" else {"pass@1_policy": 0.5}
        if stage == "reward":  # sampled text can hold NUL, which PostgreSQL refuses in text and jsonb
            result["sample"] = "return\x00"
            print("sampled: return\x00 x", flush=True)
        _write(folder / "result.json", result)
        stages.append(
            {"stage": stage, "state": "succeeded", "output_dir": str(folder), "result": result, "seconds": 1.5}
        )
        print(f"stage {stage}: done", flush=True)

    _write(
        out / "summary.json",
        {
            "state": "succeeded",
            "failed_stage": None,
            "message": "",
            "stages": stages,
            "policy_dir": str(out / "dpo"),
            "parent_dir": args.model_name_or_path,
            "evaluation": {**_evaluation(mode, int(os.environ.get("FAKE_PIPELINE_PROMPTS", "30"))), **_chosen()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
