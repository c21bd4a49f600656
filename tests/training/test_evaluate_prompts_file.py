"""evaluate --prompts_file: a fixed held-out set instead of the snapshot's split, in either schema."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from training import data, evaluate
from training.ladder import ladder_tasks


def args(path, max_prompts=None):
    return SimpleNamespace(prompts_file=str(path), max_prompts=max_prompts, split="test")


def test_humaneval_records_become_prompts_with_their_tests(tmp_path):
    tasks = ladder_tasks(n=3, seed=0, split="heldout")
    path = tmp_path / "heldout.jsonl"
    path.write_text("".join(json.dumps(t.record()) + "\n" for t in tasks))
    rows = evaluate.eval_prompts(args(path), snapshot=None)
    assert [r["prompt_id"] for r in rows] == [t.task_id for t in tasks]
    assert [r["tests"] for r in rows] == [t.test for t in tasks]
    assert {r["test_style"] for r in rows} == {"humaneval"}
    assert [r["entry_point"] for r in rows] == [t.entry_point for t in tasks]
    assert len(evaluate.eval_prompts(args(path, max_prompts=2), snapshot=None)) == 2


def test_prompts_schema_rows_are_kept_and_rows_without_tests_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [
        {"prompt_id": 7, "prompt": "def f(x):\n", "tests": "assert f(1) == 1\n", "test_style": "asserts"},
        {"prompt_id": 8, "prompt": "def g(x):\n", "tests": "", "test_style": "none"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r["prompt_id"] for r in evaluate.eval_prompts(args(path), snapshot=None)] == [7]


def test_a_file_without_a_prompt_with_tests_is_refused_by_name(tmp_path):
    path = tmp_path / "none.jsonl"
    path.write_text(json.dumps({"prompt": "def f():\n"}) + "\n")
    with pytest.raises(data.SnapshotError, match="none.jsonl: no prompt with tests"):
        evaluate.eval_prompts(args(path), snapshot=None)
