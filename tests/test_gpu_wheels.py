"""bench/gpu-wheels.txt: what bench/gpu_learning.sh installs on the lent GPU machine. It must be the versions this
suite tests, and name every runtime requirement the device does not already hold."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# On the device already (its notes: torch with CUDA, numpy, pandas, pyarrow, matplotlib, accelerate, tqdm,
# requests, setuptools), not needed there (gunicorn: the benchmark serves in-process), or left out on purpose
# (scipy: 35 MB of the 64 MB a run carries; only the leaderboard's fit imports it, inside the function).
NOT_CARRIED = {"torch", "pyarrow", "matplotlib", "accelerate", "tqdm", "requests", "setuptools", "gunicorn", "scipy"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[_normal(re.sub(r"\[.*\]", "", name))] = version.strip()
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def test_the_device_gets_the_versions_the_suite_runs():
    carried = _pins(ROOT / "bench" / "gpu-wheels.txt")
    assert len(carried) > 50
    wrong = {name: (version, metadata.version(name)) for name, version in carried.items()
             if metadata.version(name) != version}  # fmt: skip
    assert not wrong, f"bench/gpu-wheels.txt pins other versions than this venv's: {wrong}"


def test_every_runtime_requirement_is_carried_or_named_as_on_the_device():
    carried = set(_pins(ROOT / "bench" / "gpu-wheels.txt"))
    required = set(_pins(ROOT / "requirements.txt"))
    missing = required - carried - NOT_CARRIED
    assert not missing, f"add to bench/gpu-wheels.txt (bench/gpu_wheels.sh downloads them): {sorted(missing)}"
    assert not NOT_CARRIED & carried
