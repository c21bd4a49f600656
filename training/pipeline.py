"""The training cycle: sft -> reward -> dpo -> online_rl -> evaluate, each stage in its own process.

    python -m training.pipeline --config training/recipes/tiny/pipeline.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path PARENT_DIR

Each stage runs as ``python -m training.<stage> --config <recipe>/<stage>.yaml ...`` (or under ``--launcher``,
e.g. ``accelerate launch --config_file training/recipes/accelerate/zero2.yaml``), so that a crash or an
out-of-memory kill takes down the stage, not the caller. Models flow from stage to stage as folders:

    parent --sft--> <out>/sft --reward--> <out>/reward           (the reward model starts from the SFT policy)
                    <out>/sft --dpo-----> <out>/dpo --online_rl--> <out>/online_rl  (rewarded by <out>/reward)
    evaluate: <out>/online_rl against the parent, and <out>/reward's accuracy  -> <out>/evaluate/eval.json

With ``merge_with_parent: {dpo: 0.5}`` the DPO stage saves its model halfway back to the parent
(training.interpolation); online_rl then starts from it and evaluate samples it.

With ``merge_beside: true`` as well, the mix is saved beside the stage's folder as <out>/dpo_merged, and online_rl
starts from the trained <out>/dpo; ``select_from: [dpo_merged]`` offers the mix to the evaluate stage.

With ``select_from: [dpo]`` the evaluate stage also samples <out>/dpo, and whichever of the two passes more on its
prompts becomes the cycle's policy (``policy_dir``; the promotion gate then tests it at alpha / 2).

The first stage that fails stops the cycle; ``<out>/summary.json`` then says which, why, and where its log is::

    {"state": "succeeded" | "failed" | "cancelled", "failed_stage": null | "dpo", "message": "...",
     "stages": [{"stage", "state", "output_dir", "log", "result", "seconds"}, ...],
     "policy_dir": "<out>/online_rl", "parent_dir": "<parent>", "reward_dir": "<out>/reward",
     "evaluation": {...the evaluate stage's result.json...}}

Each stage's console output (progress bars included) is shown and kept in ``<out>/<stage>/stage.log``.
Exit status: 0 succeeded, 1 a stage failed, 2 bad arguments, 143 stopped by SIGTERM (summary state
"cancelled").
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training import cli, run_record
from training.configs import PipelineArguments
from training.interpolation import POLICY_STAGES

SUMMARY = "summary.json"
STAGE_LOG = "stage.log"
TRAINING_STAGES = ("sft", "reward", "dpo", "online_rl")
LOG_TAIL_LINES = 20
MERGED = "_merged"  # <out>/<stage>_merged: a stage's mix with the parent under merge_beside
logger = logging.getLogger("training")


def make_parser():
    from trl import TrlParser

    return TrlParser((PipelineArguments,), prog="python -m training.pipeline")


class Cancelled(Exception):
    pass


def resolve_recipe(recipe: str) -> Path:
    """A recipe folder as given, or relative to the repository (so the pipeline runs from any directory)."""
    path = Path(recipe)
    if path.is_dir():
        return path.resolve()
    if not path.is_absolute() and (run_record.REPO_ROOT / path).is_dir():
        return (run_record.REPO_ROOT / path).resolve()
    raise ValueError(
        f"--recipe {recipe}: no such folder; expected one with <stage>.yaml files, e.g. training/recipes/tiny"
    )


def plan(args: PipelineArguments) -> list[dict[str, Any]]:
    """Each stage's command line, output folder and log, before anything runs (so a bad recipe fails at once)."""
    recipe = resolve_recipe(args.recipe)
    out = Path(args.output_dir).resolve()
    snapshot = str(Path(args.snapshot).resolve())
    parent = args.model_name_or_path
    if Path(parent).exists():
        parent = str(Path(parent).resolve())
    missing = [s for s in args.stages if not (recipe / f"{s}.yaml").is_file()]
    if missing:
        raise ValueError(f"recipe {recipe} has no {', '.join(s + '.yaml' for s in missing)} for the stages asked")
    trained_before = {s: i for i, s in enumerate(args.stages) if s in TRAINING_STAGES and s != "reward"}
    offerable = "policy stages: sft, dpo, online_rl"
    if args.merge_beside:
        trained_before.update({f"{s}{MERGED}": trained_before[s] for s in args.merge_with_parent})
        offerable += f"; their mixes with the parent: {', '.join(s + MERGED for s in args.merge_with_parent)}"
    evaluated_at = args.stages.index("evaluate") if "evaluate" in args.stages else -1
    for choice in args.select_from:
        if trained_before.get(choice, len(args.stages)) > evaluated_at:
            raise ValueError(
                f"select_from: {choice} is not a policy stage run before evaluate in this cycle "
                f"(stages: {', '.join(args.stages)}; {offerable})"
            )
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    policy = parent  # the policy the next trained stage starts from
    reward_dir: str | None = None
    steps = []
    for stage in args.stages:
        stage_dir = out / stage
        flags = ["--config", str(recipe / f"{stage}.yaml"), "--snapshot", snapshot, "--output_dir", str(stage_dir)]
        if stage in ("sft", "reward", "dpo", "online_rl"):
            flags += ["--model_name_or_path", policy]
        if stage == "online_rl" and reward_dir:
            flags += ["--reward_model_path", reward_dir]
        if stage in args.merge_with_parent:
            flags += ["--interpolate_with", parent, "--interpolation_weight", str(args.merge_with_parent[stage])]
            if args.merge_beside:
                flags += ["--interpolated_output_dir", str(out / f"{stage}{MERGED}")]
        if stage == "evaluate":
            flags += ["--model_name_or_path", policy, "--parent_model_path", parent]
            offered = [str(out / s) for s in args.select_from if str(out / s) != policy]
            if offered:
                flags += ["--candidate_model_paths", *offered]
            if reward_dir:
                flags += ["--reward_model_path", reward_dir]
        if args.seed is not None:
            flags += ["--seed", str(args.seed)]
        if args.trust_remote_code:
            flags += ["--trust_remote_code", "true"]
        if stage == "evaluate" and args.prompt_prefix:
            flags += ["--prompt_prefix", args.prompt_prefix]
        flags += (args.stage_args or {}).get(stage, [])
        prefix = [sys.executable] if stage == "evaluate" else launcher
        steps.append(
            {
                "stage": stage,
                "command": [*prefix, "-m", f"training.{stage}", *flags],
                "output_dir": str(stage_dir),
                "log": str(stage_dir / STAGE_LOG),
            }
        )
        if stage == "reward":
            reward_dir = str(stage_dir)
        elif stage in POLICY_STAGES:
            policy = str(stage_dir)
    return steps


class Runner:
    """Runs one stage at a time, teeing its output to the console and its log; SIGTERM stops the running stage."""

    def __init__(self, timeout: int | None):
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.cancelled = False

    def stop(self, signum=None, frame=None) -> None:
        self.cancelled = True
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)  # the stage and whatever it launched (accelerate, workers)
            except ProcessLookupError:
                pass

    def run(self, command: list[str], log_path: Path) -> int:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Stages import training/ from the repository whatever the caller's working directory.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(run_record.REPO_ROOT), env.get("PYTHONPATH")]))
        with open(log_path, "wb") as log:
            log.write(("$ " + shlex.join(command) + "\n").encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group, so that stop() reaches its children too
                preexec_fn=_die_with_parent,
            )
            pump = threading.Thread(target=_tee, args=(self.process.stdout, log), daemon=True)
            pump.start()
            try:
                code = self.process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
                code = -1000  # our marker for "timed out"
            pump.join(timeout=10)
            self.process = None
        return code


def _tee(stream, log) -> None:
    console = getattr(sys.stdout, "buffer", None)
    for chunk in iter(lambda: stream.read1(65536), b""):
        log.write(chunk)
        log.flush()
        try:
            if console is not None:
                console.write(chunk)
                console.flush()
            else:  # a replaced sys.stdout (pytest's capture, a notebook) takes text
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
        except (OSError, ValueError):
            console = None  # the console went away; the log still gets everything


def _die_with_parent() -> None:
    """In the stage's process, before exec: get SIGTERM if the pipeline dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_bytes()[-20000:].decode("utf-8", "replace")
    except OSError:
        return ""
    # Progress bars redraw with carriage returns: keep the last state of each line.
    clean = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(line for line in clean[-lines:])


def run(args: PipelineArguments) -> dict[str, Any]:
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = plan(args)
    runner = Runner(args.stage_timeout)
    previous = (
        signal.signal(signal.SIGTERM, runner.stop) if threading.current_thread() is threading.main_thread() else None
    )
    summary: dict[str, Any] = {
        "state": "running",
        "failed_stage": None,
        "message": "",
        "stages": [],
        "policy_dir": None,
        "parent_dir": args.model_name_or_path,
        "reward_dir": None,
        "evaluation": None,
        "snapshot": str(Path(args.snapshot).resolve()),
        "recipe": str(resolve_recipe(args.recipe)),
        "started_at": run_record.now(),
        "finished_at": None,
    }
    run_record.write_json(out / SUMMARY, summary)
    record = run_record.StageRun("pipeline", out, arguments=[args], seed=args.seed, device=False)
    try:
        with record:
            for step in steps:
                _run_step(step, runner, summary, summary_path=out / SUMMARY, stage_timeout=args.stage_timeout)
            summary["state"] = "succeeded"
            summary["message"] = f"{len(steps)} stage(s) succeeded"
            if summary["policy_dir"] is None:  # only evaluate ran: the policy evaluated is the parent itself
                summary["policy_dir"] = args.model_name_or_path
            record.write_result({"state": "succeeded"})
    except StageFailed as failure:
        summary.update(state="failed", failed_stage=failure.stage, message=str(failure), log_tail=failure.log_tail)
    except Cancelled as stop:
        running = [e["stage"] for e in summary["stages"] if e["state"] != "succeeded"]
        summary.update(state="cancelled", failed_stage=running[-1] if running else None, message=str(stop))
    finally:
        summary["finished_at"] = run_record.now()
        run_record.write_json(out / SUMMARY, summary)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return summary


def _run_step(
    step: dict[str, Any], runner: Runner, summary: dict[str, Any], *, summary_path: Path, stage_timeout: float | None
) -> None:
    """Run one stage and record it in the summary; raises Cancelled or StageFailed unless it succeeded."""
    stage = step["stage"]
    if runner.cancelled:
        raise Cancelled(f"stopped (SIGTERM) before stage {stage}")
    entry = {
        "stage": stage,
        "state": "running",
        "output_dir": step["output_dir"],
        "log": step["log"],
        "result": None,
        "seconds": None,
        "command": step["command"],
    }
    summary["stages"].append(entry)
    run_record.write_json(summary_path, summary)
    logger.info("pipeline: stage %s: %s", stage, shlex.join(step["command"]))
    started = time.monotonic()
    code = runner.run(step["command"], Path(step["log"]))
    entry["seconds"] = round(time.monotonic() - started, 2)
    result_path = Path(step["output_dir"]) / run_record.RESULT
    if code == 0 and result_path.is_file():
        entry["state"] = "succeeded"
        entry["result"] = run_record.read_json(result_path)
        if stage == "reward":
            summary["reward_dir"] = step["output_dir"]
        elif stage in TRAINING_STAGES:
            summary["policy_dir"] = step["output_dir"]
        else:
            summary["evaluation"] = entry["result"]
            chosen = (entry["result"].get("models") or {}).get("policy")
            if entry["result"].get("candidates_compared", 1) > 1 and chosen:
                summary["policy_dir"] = chosen  # the model the evaluation chose among the cycle's candidates
        run_record.write_json(summary_path, summary)
        return
    entry["state"] = "cancelled" if runner.cancelled else "failed"
    if runner.cancelled:
        raise Cancelled(f"stage {stage} was stopped (SIGTERM); its log: {step['log']}")
    why = _failure(code, stage_timeout)
    raise StageFailed(stage, f"stage {stage} {why}; see its log {step['log']}", tail(Path(step["log"])))


def _failure(code: int, stage_timeout: float | None) -> str:
    if code == -1000:
        return f"ran past --stage_timeout {stage_timeout}s"
    if code == 0:
        return f"exited 0 but wrote no {run_record.RESULT}"
    if code < 0:
        return f"was killed by signal {-code}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return f"exited with status {code}"


class StageFailed(Exception):
    def __init__(self, stage: str, message: str, log_tail: str = ""):
        super().__init__(message)
        self.stage = stage
        self.log_tail = log_tail


def main(argv: Sequence[str] | None = None) -> int:
    cli.setup_logging()
    (args,) = cli.parse(make_parser(), argv)
    try:
        plan(args)
    except ValueError as exc:
        print(f"python -m training.pipeline: error: {exc}", file=sys.stderr)
        return 2
    summary = run(args)
    if summary["state"] == "succeeded":
        logger.info(
            "pipeline: succeeded; policy %s; summary %s", summary["policy_dir"], Path(args.output_dir) / SUMMARY
        )
        return 0
    print(f"\npipeline {summary['state']}: {summary['message']}", file=sys.stderr)
    if summary.get("log_tail"):
        print(f"--- last lines of the {summary['failed_stage']} log ---\n{summary['log_tail']}", file=sys.stderr)
    return 143 if summary["state"] == "cancelled" else 1


if __name__ == "__main__":
    sys.exit(main())
