"""What every training stage shares: argument parsing, the run record, metrics, loss curves, devices, saving.

A stage's output folder (``--output_dir``) holds, beside the model files that ``save_pretrained`` writes:

- ``run_info.json``: every argument, the seed, library versions, the git revision, start and end time, state;
- ``metrics.jsonl``: one JSON object per logging step (``loss`` among them), then the evaluation lines;
- ``loss.png``: the training loss (and evaluation loss, when there is one) against the step;
- ``result.json``: the stage's headline numbers (held-out accuracy, pass@1, ...).

No Django here: training/ reads snapshot folders and writes model folders, nothing else.
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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("training")

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("torch", "transformers", "trl", "datasets", "peft", "accelerate", "tokenizers")
RUN_INFO = "run_info.json"
METRICS = "metrics.jsonl"
LOSS_PNG = "loss.png"
RESULT = "result.json"


# --- parsing ------------------------------------------------------------------------------------


def parse(parser, argv: Sequence[str] | None = None) -> tuple:
    """TRL's way: ``--config recipe.yaml`` sets defaults, flags override. A bad value exits with status 2
    and one line naming the problem (argparse's convention), not a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--config" in args:
        index = args.index("--config")
        if index + 1 >= len(args):
            parser.error("--config needs a path to a YAML recipe, e.g. training/recipes/tiny/dpo.yaml")
        path = Path(args[index + 1])
        if not path.is_file():
            parser.error(f"--config {path}: no such recipe file (expected e.g. training/recipes/tiny/dpo.yaml)")
    try:
        return tuple(parser.parse_args_and_config(args))
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))


def peek_option(argv: Sequence[str] | None, name: str, default: str) -> str:
    """The value of ``--name`` from the command line, else from the ``--config`` YAML, else the default.

    Needed where the option picks which dataclasses the parser is built from (online RL's algorithm).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    flag = f"--{name}"
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    if "--config" in args:
        index = args.index("--config")
        if index + 1 < len(args) and Path(args[index + 1]).is_file():
            import yaml

            with open(args[index + 1]) as handle:
                config = yaml.safe_load(handle) or {}
            if isinstance(config, dict) and config.get(name) is not None:
                return str(config[name])
    return default


# --- environment --------------------------------------------------------------------------------


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


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_training_args(training_args, model_args=None) -> None:
    """Fill in what TRL's scripts fill in from ModelConfig, and keep TensorBoard only where it is installed.

    TRL's defaults assume a GPU (bf16, activation checkpointing): the recipes say what they want; here we only
    refuse the combinations that cannot work, with a message rather than a stack trace from deep inside.
    """
    if model_args is not None:
        init = {
            "revision": model_args.model_revision,
            "dtype": model_args.dtype,
            "attn_implementation": model_args.attn_implementation,
        }
        init = {key: value for key, value in init.items() if value is not None}
        if getattr(training_args, "model_init_kwargs", None):
            init.update(training_args.model_init_kwargs)
        if hasattr(training_args, "model_init_kwargs"):
            training_args.model_init_kwargs = init
    report_to = list(training_args.report_to or [])
    if "tensorboard" in report_to:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            try:
                import tensorboardX  # noqa: F401
            except ImportError:
                logger.info("TensorBoard is not installed: metrics go to %s only", METRICS)
                report_to.remove("tensorboard")
    training_args.report_to = report_to


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


# --- saving -------------------------------------------------------------------------------------


def save_model(trainer, output_dir: str | Path, *, task: str = "causal-lm", dtype: str | None = None) -> Path:
    """Leave a plain model folder (weights, config, tokenizer) that the next stage loads like any other.

    With LoRA the adapter is saved to ``adapter/`` and merged into the base weights, so that the next stage
    (and the platform's generator) never needs peft to read it. Saving goes through ``trainer.save_model``,
    which gathers sharded weights under DeepSpeed ZeRO-3 and FSDP.
    """
    from accelerate.utils import is_peft_model

    output_dir = Path(output_dir)
    if not is_peft_model(trainer.model):
        trainer.save_model(str(output_dir))
        return output_dir
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        merge_adapter(adapter_dir, output_dir, task=task, dtype=dtype)
    trainer.accelerator.wait_for_everyone()
    return output_dir


def merge_adapter(adapter_dir: Path, output_dir: Path, *, task: str = "causal-lm", dtype: str | None = None) -> None:
    """Load base + adapter on the CPU, fold the adapter into the weights and save the result."""
    import torch
    from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {}
    if dtype and dtype != "auto":
        kwargs["dtype"] = getattr(torch, dtype)
    if task == "reward":
        model = AutoPeftModelForSequenceClassification.from_pretrained(str(adapter_dir), num_labels=1, **kwargs)
    else:
        model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), **kwargs)
    merged = model.merge_and_unload()
    merged.save_pretrained(str(output_dir))
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(str(output_dir))


# --- scoring with a reward model ----------------------------------------------------------------


def reward_texts(tokenizer, prompts: Sequence[str], completions: Sequence[str], *, eos: bool = True) -> list[str]:
    """The exact text RewardTrainer trained on: prompt + completion + EOS (it appends EOS to non-chat data)."""
    end = tokenizer.eos_token or ""
    texts = []
    for prompt, completion in zip(prompts, completions, strict=True):
        text = prompt + completion
        if eos and end and not text.endswith(end):
            text += end
        texts.append(text)
    return texts


def score_texts(model, tokenizer, texts: Sequence[str], *, batch_size: int = 16) -> list[float]:
    """Reward-model scores, one per text, tokenized the way RewardTrainer tokenizes (``tokenizer(text)``) and
    padded on the right, since sequence-classification heads read the last non-pad token."""
    import torch

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        ids = [tokenizer(text=t)["input_ids"] for t in texts[start : start + batch_size]]
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[row, : len(x)] = 1
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        scores.extend(logits[:, 0].float().cpu().tolist())
    return scores


def load_reward_model(path: str | Path, *, device: str | None = None, dtype: str | None = None):
    """(model, tokenizer) of a reward-model folder, in eval mode, with the pad token the head needs."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = device or default_device()
    kwargs: dict[str, Any] = {"num_labels": 1}
    if dtype and dtype != "auto":
        kwargs["dtype"] = getattr(torch, dtype)
    elif device == "cpu":
        kwargs["dtype"] = torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device).eval()
    return model, tokenizer


def pair_accuracy(model, tokenizer, rows: Sequence[dict], *, batch_size: int = 16) -> dict[str, Any]:
    """Held-out accuracy of a reward model: the share of pairs where chosen scores strictly above rejected."""
    if not rows:
        return {"accuracy": None, "pairs": 0, "mean_margin": None}
    prompts = [r["prompt"] for r in rows]
    chosen = score_texts(
        model, tokenizer, reward_texts(tokenizer, prompts, [r["chosen"] for r in rows]), batch_size=batch_size
    )
    rejected = score_texts(
        model, tokenizer, reward_texts(tokenizer, prompts, [r["rejected"] for r in rows]), batch_size=batch_size
    )
    wins = [c > r for c, r in zip(chosen, rejected, strict=True)]
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {
        "accuracy": sum(wins) / len(wins),
        "pairs": len(wins),
        "mean_margin": sum(margins) / len(margins),
    }


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test's capture, a redirected console), not to the
    stream that was current when the handler was made."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging() -> None:
    """Stage messages on stderr, next to the trainers' progress bars; transformers keeps its own warnings."""
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
