"""The task ladder: deterministic tasks whose references pass their tests, held out by template."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from training import ladder


def run(task: ladder.Task, body: str) -> subprocess.CompletedProcess:
    program = task.prompt + body + "\n" + task.test + f"\ncheck({task.entry_point})\n"
    return subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, text=True, timeout=30)


def test_the_same_seed_gives_the_same_tasks_and_another_seed_others():
    first = [t.record() for t in ladder.ladder_tasks(n=30, seed=3)]
    assert first == [t.record() for t in ladder.ladder_tasks(n=30, seed=3)]
    assert first != [t.record() for t in ladder.ladder_tasks(n=30, seed=4)]


@pytest.mark.parametrize("split", ladder.SPLITS)
def test_every_reference_passes_its_tests_and_an_identity_body_fails_them(split):
    tasks = ladder.ladder_tasks(n=12, seed=0, split=split)
    assert len(tasks) == 12 and {t.level for t in tasks} == set(ladder.LEVELS)
    for task in tasks:
        passed = run(task, task.canonical_solution)
        assert passed.returncode == 0, (task.template, passed.stderr)
        # A body that returns its input unchanged must not pass: the tests check the transform.
        assert run(task, "    return x\n").returncode != 0, task.template


def test_no_template_is_in_both_splits_whatever_the_names_and_constants():
    train = ladder.ladder_tasks(n=300, seed=0, split="train")
    held = ladder.ladder_tasks(n=300, seed=9, split="heldout")
    assert {t.template for t in train}.isdisjoint({t.template for t in held})
    assert all(ladder.template_split(t.template) == "train" for t in train)
    assert all(ladder.template_split(t.template) == "heldout" for t in held)
    # Renamed, re-parameterised copies of one template: the split is the template's, so they stay together.
    assert len({t.entry_point for t in train}) > len({t.template for t in train}) / 2


def test_about_a_quarter_of_the_templates_of_each_level_are_held_out():
    for level in ladder.LEVELS:
        keys = [">".join(step.key for step in chain) for chain in ladder.templates(level)]
        share = sum(ladder.template_split(k) == "heldout" for k in keys) / len(keys)
        assert 0.15 < share < 0.35, (level, share, len(keys))


def test_the_command_writes_records_that_import_prompts_reads_as_humaneval(tmp_path):
    out = tmp_path / "ladder.jsonl"
    assert ladder.main(["--split", "heldout", "--n", "5", "--seed", "2", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5
    for record in records:
        assert {"task_id", "prompt", "entry_point", "canonical_solution", "test"} <= set(record)
        assert record["prompt"].startswith(f"def {record['entry_point']}(") and record["test"].startswith("def check(")
