"""bench/stage_probe.py: its options, and the snapshot it builds is one the training stages read."""

import argparse

import pytest

from bench.stage_probe import snapshot_of, stage_list, stage_override
from training import data
from training.ladder import ladder_tasks


def test_stages_run_in_the_cycles_order_and_an_unknown_one_is_refused():
    assert stage_list("online_rl,sft") == ("sft", "online_rl")
    with pytest.raises(argparse.ArgumentTypeError, match="stages are sft, reward, dpo, online_rl"):
        stage_list("sft,ppo")


@pytest.mark.parametrize("bad", ["max_steps=4", "dpo.max_steps", "train.max_steps=4", ".x=1"])
def test_an_override_names_a_stage_and_a_key(bad):
    assert stage_override("dpo.learning_rate=5e-6") == ("dpo", "learning_rate", "5e-6")
    with pytest.raises(argparse.ArgumentTypeError, match="STAGE.KEY=VALUE"):
        stage_override(bad)


def test_the_snapshot_pairs_each_passing_sample_with_each_failing_one(tmp_path):
    tasks = [t.record() for t in ladder_tasks(n=2, seed=100, split="train", levels=(1,))]
    rows = [
        {**tasks[0], "samples": ["    return 1\n", "    return 2\n", "    return 2\n", ""],
         "outcomes": ["passed", "failed", "failed", "failed"]},
        {**tasks[1], "samples": ["    return 3\n"] * 4, "outcomes": ["passed"] * 4},
    ]  # fmt: skip

    snapshot = data.open_snapshot(snapshot_of(rows, tmp_path / "snap"))

    pairs = data.preference_rows(snapshot, "train")
    # the duplicate failing sample and the empty one are not paired again; an all-passing prompt gives no pair
    # (the reader moves the prompt's trailing newline onto the completions: training/boundary.py)
    assert [(p["chosen"].strip(), p["rejected"].strip()) for p in pairs] == [("return 1", "return 2")]
    # prompt ids and outcomes as an export has them, so the reward recipe's reference pairs find the reference
    references = data.reference_pairs(snapshot, "train")
    assert [(r["chosen"].strip(), r["rejected"].strip()) for r in references] == [
        (tasks[0]["canonical_solution"].strip(), "return 2")
    ]
    prompts = data.prompt_rows(snapshot, "train", with_tests_only=True)
    assert [p["prompt"] for p in prompts] == [t["prompt"] for t in tasks]
    assert all(p["tests"] == t["test"] and p["test_style"] == "humaneval" for p, t in zip(prompts, tasks, strict=True))


def test_no_pair_to_train_on_is_an_error_not_an_empty_run(tmp_path):
    task = ladder_tasks(n=1, seed=100, split="train", levels=(1,))[0].record()
    with pytest.raises(SystemExit, match="no prompt has both a passing and a failing sample"):
        snapshot_of([{**task, "samples": ["x"] * 4, "outcomes": ["failed"] * 4}], tmp_path / "snap")
