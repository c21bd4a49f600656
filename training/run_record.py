"""The record a stage leaves in its output folder (``--output_dir``), beside the model files.

- ``run_info.json``: every argument, the seed, library versions, the git revision, start and end time, state;
- ``metrics.jsonl``: one JSON object per logging step (``loss`` among them), then the evaluation lines;
- ``loss.png``: the training loss (and evaluation loss, when there is one) against the step;
- ``result.json``: the stage's headline numbers (held-out accuracy, pass@1, ...).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger("training")

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("torch", "transformers", "trl", "datasets", "peft", "accelerate", "tokenizers")
RUN_INFO = "run_info.json"
METRICS = "metrics.jsonl"
LOSS_PNG = "loss.png"
RESULT = "result.json"


# --- the machine and the code ------------------------------------------------------------------


def is_main_process() -> bool:
    """Rank 0 (or no launcher at all): the one process that writes the record files."""
    return os.environ.get("RANK", "0") == "0"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision(root: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit this code runs from and whether tracked files differ from it (None when git is absent)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    revision = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if revision else None
    return {"revision": revision, "dirty": None if status is None else bool(status)}


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"cuda": torch.cuda.is_available(), "torch_threads": torch.get_num_threads()}
    if info["cuda"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


# --- the run record -----------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Arguments as JSON: TrainingArguments through its own to_dict (enums, masked tokens), others as fields."""
    if hasattr(value, "to_dict") and dataclasses.is_dataclass(value):
        return json.loads(json.dumps(value.to_dict(), default=str))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return json.loads(json.dumps(value, default=str))


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file and rename, so that a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class StageRun:
    """The record of one stage in its output folder. Use as a context manager around the stage's work::

        with StageRun("dpo", output_dir, arguments=[script_args, training_args, model_args], seed=42) as run:
            trainer = DPOTrainer(..., callbacks=[run.callback()])
            ...
            run.write_result({"heldout_reward_accuracy": 0.9})

    run_info.json is written at the start (state "running") and rewritten at the end ("succeeded" or
    "failed" with the error), so that a crashed stage still leaves its arguments behind.
    """

    def __init__(
        self, stage: str, output_dir: str | Path, *, arguments: Iterable[Any], seed: int | None, device: bool = True
    ):
        self.device = device  # False: do not import torch just to describe the machine (the pipeline process)
        self.stage = stage
        self.output_dir = Path(output_dir)
        self.arguments = list(arguments)
        self.seed = seed
        self.started = time.monotonic()
        self.info: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / METRICS

    def __enter__(self) -> StageRun:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if is_main_process():
            self.metrics_path.unlink(missing_ok=True)  # a rerun into the same folder starts a fresh curve
            for name in (RESULT, LOSS_PNG):
                (self.output_dir / name).unlink(missing_ok=True)
        self.info = {
            "stage": self.stage,
            "state": "running",
            "command": [sys.executable, *sys.argv],
            "arguments": {type(a).__name__: jsonable(a) for a in self.arguments},
            "seed": self.seed,
            "versions": library_versions(),
            "git": git_revision(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": device_info() if self.device else None,
            "world_size": world_size(),
            "started_at": now(),
            "finished_at": None,
            "seconds": None,
        }
        self._write_info()
        logger.info("%s: writing to %s", self.stage, self.output_dir)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.info["finished_at"] = now()
        self.info["seconds"] = round(time.monotonic() - self.started, 3)
        self.info["state"] = "failed" if exc is not None else "succeeded"
        if exc is not None:
            self.info["error"] = f"{exc_type.__name__}: {exc}"
        if is_main_process():
            self.draw_loss()
        self._write_info()
        return False

    def draw_loss(self) -> None:
        try:
            plot_loss(self.metrics_path, self.output_dir / LOSS_PNG, title=f"{self.stage} training loss")
        except Exception as plot_error:  # a missing curve must not fail a trained stage
            logger.warning("%s: could not draw %s: %s", self.stage, LOSS_PNG, plot_error)

    def _write_info(self) -> None:
        if is_main_process():
            write_json(self.output_dir / RUN_INFO, self.info)

    def callback(self):
        """For the trainer: every log line (loss among them) goes to metrics.jsonl as it is logged."""
        return metrics_callback(self.metrics_path)

    def log_metrics(self, metrics: dict[str, Any], *, step: int | None = None) -> None:
        if is_main_process():
            append_metrics(self.metrics_path, {"step": step, **metrics})

    def write_result(self, result: dict[str, Any]) -> None:
        self.result = result
        self.info["result"] = result
        if is_main_process():
            write_json(self.output_dir / RESULT, result)


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    clean = {key: _finite(value) for key, value in row.items()}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(clean, default=str) + "\n")


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity; None keeps the line parseable by every reader.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics_callback(path: Path):
    """A TrainerCallback appending every log line (loss, learning rate, rewards, ...) to metrics.jsonl."""
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                append_metrics(Path(path), {"step": state.global_step, "epoch": state.epoch, **logs})

    return MetricsCallback()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_loss(metrics_path: Path, png_path: Path, *, title: str) -> bool:
    """Draw the loss curve(s) from metrics.jsonl into a PNG; False when no line had a loss."""
    rows = read_metrics(metrics_path)
    series = {}
    for key in ("loss", "eval_loss"):
        points = [
            (r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and r.get("step") is not None
        ]
        if points:
            series[key] = points
    if not series:
        return False
    # The Figure API renders with Agg and leaves no pyplot state behind; fixed margins instead of tight_layout
    # save a third of the ~0.1 s a small PNG costs.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    for key, points in series.items():
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, marker="o" if len(points) < 30 else None, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=0.15)
    fig.savefig(png_path)
    return True


def throughput(trainer, train_output) -> dict[str, Any]:
    """Tokens per second over the training run and peak accelerator memory, from what the trainer logged."""
    import torch

    seconds = (train_output.metrics or {}).get("train_runtime")
    tokens = None
    for row in reversed(trainer.state.log_history):
        if isinstance(row.get("num_tokens"), (int, float)):
            tokens = row["num_tokens"]
            break
    out: dict[str, Any] = {
        "train_seconds": seconds,
        "train_steps": trainer.state.global_step,
        "train_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if tokens and seconds else None,
        "train_loss": (train_output.metrics or {}).get("train_loss"),
    }
    if torch.cuda.is_available():
        out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out
