"""Reading a dataset snapshot folder (the platform's export) into what TRL's trainers take.

The folder's layout, parts, columns and manifest keys are training.dataset_format's; only the JSON lines are
read here (each may have a .parquet twin). ``write_example_snapshot`` writes a small folder of that shape with
obviously good and obviously broken completions, for tests, benchmarks and trying a recipe without the
platform.

    python -m training.data --out var/snapshots/example
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.boundary import at_token_boundary
from training.dataset_format import (
    COLUMNS,
    MANIFEST,
    MANIFEST_VERSION,
    TEST_STYLES,
    TRAINER_PREFERENCE_COLUMNS,
    count_key,
    file_name,
)

logger = logging.getLogger("training")

LAYOUT = (
    "a snapshot folder with manifest.json, preference/{train,test}.jsonl (prompt, chosen, rejected, ...), "
    "unpaired/{train,test}.jsonl and prompts/{train,test}.jsonl (prompt_id, prompt, tests, test_style, ...)"
)


class SnapshotError(ValueError):
    """A snapshot folder that is missing, incomplete or malformed; the message names the file and the format."""


@dataclass(frozen=True)
class Snapshot:
    root: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str | None:
        version = self.manifest.get(MANIFEST_VERSION)
        return None if version is None else str(version)

    def file(self, part: str, split: str) -> Path:
        return self.root / file_name(part, split)


def open_snapshot(path: str | Path) -> Snapshot:
    root = Path(path)
    if not root.is_dir():
        raise SnapshotError(f"--snapshot {root}: no such folder; expected {LAYOUT}")
    needed = root / file_name("preference", "train")
    if not needed.is_file():
        raise SnapshotError(f"{needed} is missing; expected {LAYOUT}")
    manifest: dict[str, Any] = {}
    manifest_path = root / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SnapshotError(f"{manifest_path}: not JSON ({exc})") from exc
    return Snapshot(root=root, manifest=manifest if isinstance(manifest, dict) else {})


def read_jsonl(path: Path, *, columns: Sequence[str] = (), max_rows: int | None = None) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a missing file is an empty split. A bad line is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SnapshotError(f"{path}:{number}: not a JSON object ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise SnapshotError(f"{path}:{number}: expected a JSON object per line")
            missing = [c for c in columns if c not in row]
            if missing:
                raise SnapshotError(
                    f"{path}:{number}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}"
                )
            rows.append(row)
            if max_rows is not None and len(rows) >= max_rows:
                break
    return rows


def preference_rows(
    snapshot: Snapshot,
    split: str,
    *,
    max_rows: int | None = None,
    with_margin: bool = False,
    optional: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """prompt / chosen / rejected rows (and ``margin`` when asked: RewardTrainer then subtracts it in its loss),
    plus each ``optional`` column as the row has it (None where it has not, e.g. ``chosen_outcome``).

    Each prompt ends on a token boundary: its trailing whitespace starts both completions (training.boundary).
    """
    keep = TRAINER_PREFERENCE_COLUMNS + (("margin",) if with_margin else ())
    rows = _left_to_right(
        read_jsonl(snapshot.file("preference", split), columns=keep, max_rows=max_rows),
        snapshot.file("preference", split),
    )
    for number, row in enumerate(rows, start=1):
        for column in TRAINER_PREFERENCE_COLUMNS:
            if not isinstance(row[column], str):
                raise SnapshotError(f"{snapshot.file('preference', split)}: row {number}: {column} must be a string")
    out = [{**{c: row[c] for c in keep}, **{c: row.get(c) for c in optional}} for row in rows]
    for row in out:
        prompt, chosen, rejected = at_token_boundary(row["prompt"], row["chosen"], row["rejected"])
        row.update(prompt=prompt, chosen=chosen, rejected=rejected)
    if with_margin:
        for row in out:
            row["margin"] = float(row["margin"] or 0.0)
    return out


FAILED_OUTCOMES = ("failed", "error", "timeout")


def reference_pairs(snapshot: Snapshot, split: str) -> list[dict[str, str]]:
    """Test-decided pairs the platform never showed anyone: each prompt's reference solution (prompts/<split>)
    against each of its exported completions whose tests failed (the rows' chosen_outcome / rejected_outcome),
    once per whitespace-distinct completion, the prompt ending on a token boundary (training.boundary).

    The labels come from the tests, not from the rows' chosen / rejected: a run that must learn only what it was
    told (bench/learning.py's labels-swapped control) leaves them out."""
    references = {
        row["prompt_id"]: row["reference_solution"]
        for row in prompt_rows(snapshot, split)
        if row["reference_solution"].strip()
    }
    path = snapshot.file("preference", split)
    seen: set[tuple[Any, str]] = set()
    pairs = []
    for row in _left_to_right(read_jsonl(path, columns=TRAINER_PREFERENCE_COLUMNS), path):
        reference = references.get(row.get("prompt_id"))
        for side in ("chosen", "rejected"):
            text, key = row[side], (row.get("prompt_id"), " ".join(row[side].split()))
            if reference is None or row.get(f"{side}_outcome") not in FAILED_OUTCOMES or not key[1] or key in seen:
                continue
            seen.add(key)
            prompt, chosen, rejected = at_token_boundary(row["prompt"], reference, text)
            pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pairs


def _left_to_right(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """The rows without a fill-in-the-middle suffix. The stages train and evaluate left-to-right prompts only
    (a FIM row needs the model's FIM template in training, not built yet): FIM rows are left out, loudly, rather
    than trained on as if the code after the gap were not there."""
    kept = [row for row in rows if not (row.get("suffix") or "").strip()]
    if len(kept) < len(rows):
        logger.warning(
            "%s: %d fill-in-the-middle row(s) left out (the stages train and evaluate left-to-right prompts)",
            path,
            len(rows) - len(kept),
        )
    return kept


def prompt_rows(
    snapshot: Snapshot, split: str, *, with_tests_only: bool = False, max_rows: int | None = None
) -> list[dict[str, Any]]:
    """Prompts with their tests, normalised: tests "" and test_style "none" where a prompt has none."""
    path = snapshot.file("prompts", split)
    rows = []
    for number, row in enumerate(_left_to_right(read_jsonl(path, columns=("prompt",)), path), start=1):
        style = row.get("test_style") or "none"
        if style not in TEST_STYLES:
            raise SnapshotError(
                f"{path}: row {number}: test_style must be one of {', '.join(TEST_STYLES)}; got {style!r}"
            )
        tests = row.get("tests") or ""
        if not tests.strip():
            style = "none"
        clean = {
            "prompt_id": row.get("prompt_id", number),
            "prompt": row["prompt"],
            "language": row.get("language") or "python",
            "tests": tests if style != "none" else "",
            "test_style": style,
            "entry_point": row.get("entry_point") or "",
            "reference_solution": row.get("reference_solution") or "",
        }
        if with_tests_only and style == "none":
            continue
        rows.append(clean)
        if max_rows is not None and len(rows) >= max_rows:
            break
    return rows


def to_dataset(rows: list[dict[str, Any]], columns: Sequence[str]):
    """A ``datasets.Dataset`` with exactly these columns (an empty split keeps its columns)."""
    from datasets import Dataset

    return Dataset.from_dict({c: [row[c] for row in rows] for c in columns})


def sft_rows(
    snapshot: Snapshot,
    split: str = "train",
    *,
    chosen: bool = True,
    reference: bool = True,
    skip_failed: bool = False,
    max_rows: int | None = None,
) -> list[dict[str, str]]:
    """prompt / completion rows: the volunteers' chosen completions and the prompts' reference solutions,
    each (prompt, completion) once, the prompt ending on a token boundary (training.boundary).

    ``skip_failed``: leave out a chosen completion whose tests failed (chosen_outcome in FAILED_OUTCOMES; a row
    without an outcome is kept)."""
    seen: set[tuple[str, str]] = set()
    rows: list[dict[str, str]] = []

    def add(prompt: str, completion: str) -> None:
        prompt, completion = at_token_boundary(prompt, completion)
        if completion.strip() and (prompt, completion) not in seen:
            seen.add((prompt, completion))
            rows.append({"prompt": prompt, "completion": completion})

    if chosen:
        for row in preference_rows(snapshot, split, optional=("chosen_outcome",)):
            if not (skip_failed and row["chosen_outcome"] in FAILED_OUTCOMES):
                add(row["prompt"], row["chosen"])
    if reference:
        for row in prompt_rows(snapshot, split):
            add(row["prompt"], row["reference_solution"])
    return rows[:max_rows] if max_rows is not None else rows


# --- an example snapshot ------------------------------------------------------------------------

# (name, what the docstring says, a correct body expression); inputs are chosen so that every body is defined.
TASKS = (
    ("add", "the sum of a and b", "a + b"),
    ("subtract", "a minus b", "a - b"),
    ("multiply", "the product of a and b", "a * b"),
    ("larger", "the larger of a and b", "max(a, b)"),
    ("smaller", "the smaller of a and b", "min(a, b)"),
    ("power", "a raised to the power b", "a ** b"),
    ("remainder", "the remainder of a divided by b", "a % b"),
    ("floor_divide", "a divided by b, rounded down", "a // b"),
    ("mean", "the mean of a and b", "(a + b) / 2"),
    ("distance", "the absolute difference of a and b", "abs(a - b)"),
    ("total_squares", "the sum of the squares of a and b", "a * a + b * b"),
    ("hypot_squared", "a squared plus b squared", "a ** 2 + b ** 2"),
)
NAME_FORMS = ("{}", "{}_numbers", "compute_{}", "{}_values", "get_{}", "{}_of")
BROKEN_BODIES = (
    "    return None\n",
    "    return a +\n",
    "    pass\n",
    "    raise NotImplementedError\n",
    "    return (a, b\n",
)
TEST_INPUTS = ((7, 3), (2, 5), (10, 4))


def _prompt(name: str, doc: str) -> str:
    return f'def {name}(a, b):\n    """Return {doc}."""\n'


def _tests(expression: str) -> str:
    lines = ["def check(candidate):"]
    for a, b in TEST_INPUTS:
        expected = eval(expression, {}, {"a": a, "b": b})  # noqa: S307 - our own constant expressions
        lines.append(f"    assert candidate({a}, {b}) == {expected!r}")
    return "\n".join(lines) + "\n"


def write_example_snapshot(
    root: str | Path, *, train_pairs: int = 48, test_pairs: int = 16, test_tasks: int = 3, seed: int = 0
) -> Path:
    """A snapshot folder of good-vs-broken pairs: the correct body is always chosen, a broken one (``return
    None``, a syntax error, ``pass``, ...) rejected. The last ``test_tasks`` tasks appear only in the test split,
    so held-out accuracy measures something learned, not remembered."""
    rng = random.Random(seed)
    root = Path(root)
    train_tasks, held_out = TASKS[: len(TASKS) - test_tasks], TASKS[len(TASKS) - test_tasks :]
    version = f"example-{seed}"
    prompts = {"train": _example_prompts(train_tasks, "train"), "test": _example_prompts(held_out, "test")}
    preference: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    unpaired: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    pair_id = 0
    for split, count in (("train", train_pairs), ("test", test_pairs)):
        for i in range(count):
            prompt = prompts[split][i % len(prompts[split])]
            pair_id += 1
            broken = rng.choice(BROKEN_BODIES)
            text, good = prompt["prompt"], prompt["reference_solution"]
            outcome = "error" if broken in ("    return a +\n", "    return (a, b\n") else "failed"
            ids = (pair_id, prompt["prompt_id"], "python")
            preference[split].append(
                _row("preference", text, good, broken, *ids, 3, 1.0, 1.0, "passed", outcome, "example-good",
                     "example-broken", version, "preferred", True, [], "tests", "")
            )  # fmt: skip
            unpaired[split] += [
                _row("unpaired", text, good, True, *ids, "passed", "example-good", version),
                _row("unpaired", text, broken, False, *ids, outcome, "example-broken", version),
            ]
    _write_example_files(root, version, {"preference": preference, "unpaired": unpaired, "prompts": prompts})
    return root


def _row(part: str, *values: Any) -> dict[str, Any]:
    return dict(zip(COLUMNS[part], values, strict=True))


def _example_prompts(tasks, split: str) -> list[dict[str, Any]]:
    out = []
    for task, doc, expression in tasks:
        for form in NAME_FORMS:
            name = form.format(task)
            reference = f"    return {expression}\n"
            out.append(
                _row("prompts", f"{split}-{name}", _prompt(name, doc), "python", _tests(expression), "humaneval",
                     name, reference, "")
            )  # fmt: skip
    return out


def _write_example_files(root: Path, version: str, parts: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """Each part's JSON lines (and Parquet) files, and a manifest with the format's keys for what it knows."""
    files: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for part, by_split in parts.items():
        for split, rows in by_split.items():
            path = root / file_name(part, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            data = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
            path.write_bytes(data)
            files[file_name(part, split)] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            counts[count_key(part, split)] = len(rows)
            _write_parquet(path.with_suffix(".parquet"), rows)
    manifest = {
        MANIFEST_VERSION: version,
        "code_version": "training.data.write_example_snapshot",
        "counts": counts,
        "files": files,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # the JSON lines are what training reads
        return
    if rows:
        pq.write_table(pa.Table.from_pylist(rows), path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="Folder to write the example snapshot into.")
    parser.add_argument("--train-pairs", type=int, default=48)
    parser.add_argument("--test-pairs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_example_snapshot(args.out, train_pairs=args.train_pairs, test_pairs=args.test_pairs, seed=args.seed))


if __name__ == "__main__":
    main()
