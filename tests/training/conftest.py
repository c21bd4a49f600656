"""Fixtures for the training tests: a tiny tokenizer, tiny models of each seed architecture, a snapshot folder.

Torch runs on 2 threads here and in every stage process the tests start (OMP_NUM_THREADS), so that the
training tests behave the same on a 2-core CI runner as on a big machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = REPO_ROOT / "training" / "recipes" / "tiny"


@pytest.fixture(scope="session", autouse=True)
def _two_torch_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from training import tiny

    return tiny.make_tokenizer(vocab_size=512, max_bytes=300_000)


@pytest.fixture(scope="session")
def make_tiny_model(tmp_path_factory, tiny_tokenizer):
    """A function (arch, hidden=64, layers=2) -> folder of a random tiny model, built once per session."""
    from training import tiny

    built: dict[tuple, Path] = {}

    def make(arch: str = "llama", *, hidden: int = 64, layers: int = 2, heads: int = 4) -> Path:
        key = (arch, hidden, layers, heads)
        if key not in built:
            folder = tmp_path_factory.mktemp(f"model-{arch}")
            built[key] = tiny.make_model(
                folder, arch=arch, tokenizer=tiny_tokenizer, hidden=hidden, layers=layers, heads=heads, seed=0
            )
        return built[key]

    return make


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory) -> Path:
    """A snapshot folder in the exporter's layout: correct bodies chosen over broken ones (``return None``, a
    syntax error, ``pass``...), with held-out tasks in the test split."""
    from training.data import write_example_snapshot

    return write_example_snapshot(tmp_path_factory.mktemp("snapshot"), train_pairs=48, test_pairs=16)


def read_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    assert files, f"no safetensors weights in {folder}"
    weights = {}
    for path in files:
        weights.update(load_file(str(path)))
    return weights


def changed(before: Path, after: Path) -> list[str]:
    """Names of the weights (present in both folders, same shape) that differ."""
    import torch

    a, b = read_weights(before), read_weights(after)
    shared = [k for k in a if k in b and a[k].shape == b[k].shape]
    assert shared, f"no weight names in common between {before} and {after}"
    return [k for k in shared if not torch.equal(a[k], b[k])]


def losses(folder: Path) -> list[float]:
    from training.run_record import read_metrics

    return [row["loss"] for row in read_metrics(Path(folder) / "metrics.jsonl") if isinstance(row.get("loss"), float)]


def pipeline_command(*, snapshot: Path, output_dir: Path, model: Path, extra: Sequence[str] = ()) -> list[str]:
    """``python -m training.pipeline`` with the tiny recipe, as the platform runs it."""
    return [
        sys.executable, "-m", "training.pipeline",
        "--config", str(TINY / "pipeline.yaml"),
        "--snapshot", str(snapshot),
        "--output_dir", str(output_dir),
        "--model_name_or_path", str(model),
        *extra,
    ]  # fmt: skip


def planned_commands(snapshot: Path, out: Path, parent: str = "org/parent-model", **arguments) -> dict:
    """{stage: command line} of a tiny-recipe training cycle as the pipeline plans it (nothing runs)."""
    from training import pipeline
    from training.configs import PipelineArguments

    args = PipelineArguments(
        snapshot=str(snapshot),
        output_dir=str(out),
        model_name_or_path=parent,
        recipe="training/recipes/tiny",
        **arguments,
    )
    return {step["stage"]: step["command"] for step in pipeline.plan(args)}
