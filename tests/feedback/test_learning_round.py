"""The closed loop's short form (bench/learning.py runs the long one): one round through the platform's own
services, fixed seeds, small; and the swapped crowd the benchmark's control uses."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import yaml

from feedback.crowd.profiles import PROFILES, screen_choice
from feedback.crowd.rounds import RoundSettings, ladder_prompts_import, loop_round, preference_labels_swap
from feedback.crowd.transport import InProcessApi
from feedback.models import Completion, Pair, TrainingRun
from training.ladder import ladder_tasks

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 2
# Small and quick for the test model; the same stages and files as training/recipes/ladder.
RECIPE = {
    "sft": {"max_steps": 8, "per_device_train_batch_size": 8, "learning_rate": 1.0e-3},
    "reward": {"max_steps": 40, "per_device_train_batch_size": 8},
    "dpo": {"max_steps": 8, "per_device_train_batch_size": 8, "learning_rate": 5.0e-4},
    "online_rl": {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 4, "max_completion_length": 16},
    "evaluate": {"n_samples": SAMPLES, "pass_k": [1, 2], "max_new_tokens": 24},
}


def test_the_labels_swapped_control_reverses_every_exported_preference(tmp_path):
    rows = {
        "train": [
            {
                "prompt": "p1",
                "chosen": "good",
                "rejected": "bad",
                "label_source": "tests",
                "chosen_outcome": "passed",
                "rejected_outcome": "failed",
            }  # fmt: skip
        ],
        "test": [{"prompt": "p2", "chosen": "right", "rejected": "wrong", "label_source": "votes"}],
    }
    (tmp_path / "preference").mkdir()
    for split, split_rows in rows.items():
        (tmp_path / "preference" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split_rows))
        (tmp_path / "preference" / f"{split}.parquet").write_bytes(b"PAR1")
    assert preference_labels_swap(tmp_path) == 2
    train = json.loads((tmp_path / "preference" / "train.jsonl").read_text())
    test = json.loads((tmp_path / "preference" / "test.jsonl").read_text())
    assert (train["chosen"], train["rejected"], test["chosen"], test["rejected"]) == ("bad", "good", "wrong", "right")
    assert (train["chosen_outcome"], train["rejected_outcome"]) == ("failed", "passed")
    assert not list((tmp_path / "preference").glob("*.parquet"))  # no twin left saying the opposite


@pytest.mark.parametrize(
    ("honest", "left_is_a", "shown"),
    [
        ("a", True, "right"),
        ("a", False, "left"),
        ("b", True, "left"),
        ("tie", True, "tie"),
        ("both_bad", False, "both_bad"),
    ],
)
def test_the_swapped_crowd_votes_for_the_failing_side_and_honestly_without_a_truth(honest, left_is_a, shown):
    choice = screen_choice(
        PROFILES["swapped"],
        accuracy=0.0,
        honest=honest,
        left_is_a=left_is_a,
        left="x",
        right="y",
        rng=random.Random(0),
    )
    assert choice == shown


def write_recipe(root: Path, heldout: Path) -> Path:
    """training/recipes/ladder with the test's sizes, its evaluation on the held-out ladder file."""
    folder = root / "ladder"
    folder.mkdir(parents=True)
    source = REPO / "training" / "recipes" / "ladder"
    for stage, overrides in RECIPE.items():
        config = {**yaml.safe_load((source / f"{stage}.yaml").read_text()), **overrides}
        if stage == "evaluate":
            config["prompts_file"] = str(heldout)
        (folder / f"{stage}.yaml").write_text(yaml.safe_dump(config))
    pipeline = yaml.safe_load((source / "pipeline.yaml").read_text())
    (folder / "pipeline.yaml").write_text(yaml.safe_dump({**pipeline, "recipe": str(folder)}))
    return root


@pytest.fixture
def test_model(settings):
    from training import bootstrap

    # Cached under the test var folder: built once (seconds), found again by preset, seed and settings.
    return bootstrap.build(Path(settings.VAR_DIR) / "models" / "bootstrap-test", preset="test", seed=0).path


@pytest.fixture
def loop_settings(settings, tmp_path, test_model):
    heldout = tmp_path / "heldout.jsonl"
    tasks = ladder_tasks(n=6, seed=1, split="heldout", levels=(1,))
    heldout.write_text("".join(json.dumps(t.record()) + "\n" for t in tasks))
    settings.CODEPREF = {
        **settings.CODEPREF,
        "MODEL": str(test_model),
        "TRAINING_RECIPES_DIR": write_recipe(tmp_path / "recipes", heldout),
        "TRAINING_RECIPE": "ladder",
        "TRAINING_DIR": tmp_path / "training",
        "DATASETS_DIR": tmp_path / "datasets",
        "TRAINING_POLL_SECONDS": 0.2,
        "TRAINING_ARENA_PROMPTS": 0,
        "PAIRING_POLICY": "self",
        "VOTES_PER_PAIR": 1,
        "SNAPSHOT_TEST_FRACTION": 0.5,  # enough held-out pairs for the before/after accuracies to differ
        "PROMOTION_MIN_COMPLETIONS": 12,
        # The round measures the crowd on the pairs the tests cannot decide; gold hand-outs and onboarding are
        # quality control's own tests (tests/feedback/test_quality.py).
        "QC_GOLD_RATE": 0.0,
        "QC_ONBOARDING_PAIRS": 0,
    }
    return settings


@pytest.mark.slow
# Fresh id sequences: the crowd draws each vote from (seed, account, pair id), so the same ids give the same votes.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_one_round_moves_each_stage_metric_its_way_and_records_the_gate(loop_settings, test_model, monkeypatch):
    # A crowd that is always right: which volunteer meets which pair depends on the server's order, and a careful
    # volunteer's 5% of errors would land on other pairs from run to run; the data must not.
    monkeypatch.setitem(PROFILES, "careful", dataclasses.replace(PROFILES["careful"], accuracy=(1.0, 1.0)))
    tasks = ladder_tasks(n=32, seed=5, split="train", levels=(1,))
    prompt_ids = ladder_prompts_import(tasks, tag="t", anchor_pairs=True)
    round_settings = RoundSettings(
        prompt_ids=tuple(prompt_ids), samples=SAMPLES, max_new_tokens=24, mix="careful:2", recipe="ladder"
    )

    record = loop_round(1, round_settings, api=InProcessApi(), model_path=str(test_model))

    assert record["cycle"]["state"] == TrainingRun.State.SUCCEEDED, record["cycle"]["message"]
    # The crowd voted through the API on every pair the tests do not decide (those are gold: labelled by the
    # tests, kept out of normal hand-outs), and the export scored right against the tests.
    assert record["votes_used"] == Pair.objects.exclude(state=Pair.State.GOLD).count() > 0
    decided = Pair.objects.filter(decided_by_tests=True).count()
    assert decided >= len(tasks) // 2
    assert record["label_accuracy"]["test_decided"] == decided and record["label_accuracy"]["accuracy"] == 1.0
    # The boundary: every sample the parent wrote was stored (an empty one is dropped), and no sample of the
    # trained policy in the evaluation is empty right after the prompt.
    assert record["completions"] == len(prompt_ids) * SAMPLES
    evaluation = json.loads((Path(record["eval_dir"]) / "eval.json").read_text())
    policy_reasons = [r for row in evaluation["per_prompt"] for r in row["policy"]["degenerate"]]
    assert len(policy_reasons) == 6 * SAMPLES and "empty" not in policy_reasons
    # The gate's decision and its evidence, on the cycle.
    run = TrainingRun.objects.get(pk=record["cycle"]["id"])
    gate = run.metrics["promotion"]
    assert gate == record["promotion"]
    assert isinstance(gate["promote"], bool) and gate["reason"]
    assert (gate["n_prompts"], gate["n_samples"]) == (6, SAMPLES)
    assert gate["pass_at_1"] == evaluation["pass@1"]["policy"]
    assert gate["parent_pass_at_1"] == evaluation["pass@1"]["parent"]
    assert run.model_version.is_active == gate["promote"]
    # The ladder recipe offers the DPO model beside the online-RL one (select_from): the one passing more is the
    # cycle's policy, registered as its model version, and the gate tested it at alpha / 2.
    offered = {c["name"]: c for c in evaluation["candidates"]}
    assert set(offered) == {"online_rl", "dpo"} and evaluation["candidates_compared"] == 2
    chosen = offered[evaluation["selected"]]
    assert chosen["selected"] and chosen["pass@1"] == evaluation["pass@1"]["policy"]
    assert Path(run.model_version.target) == Path(chosen["path"]).resolve() == Path(record["policy_dir"])
    assert (gate["candidates"], gate["alpha"]) == (2, 0.025) and "(chosen)" in gate["chosen_from"]
    # Each stage's own metric against its before value.
    # Reward accuracy rises, unless the untrained head already ranked every held-out pair right (it sees two
    # kinds of broken body): then its margin must.
    before, after = record["reward_accuracy_before"], record["reward_accuracy_after"]
    assert after > before or before == after == 1.0
    assert record["reward_margin_after"] > record["reward_margin_before"] + 0.1
    # the ladder recipe also reports the reward grounded in the prompts' docstring examples (test_doc_examples.py)
    assert 0.0 <= record["reward_accuracy_grounded_after"] <= 1.0
    assert record["policy_margin_after"] > record["policy_margin_before"]
    assert record["policy_preference_after"] >= record["policy_preference_before"]
    curve = record["rl_reward_curve"]
    assert [point["step"] for point in curve] == [1, 2]
    assert all(isinstance(point["reward"], float) for point in curve)
    assert Completion.objects.filter(outcome=Completion.Outcome.NOT_RUN, prompt_id__in=prompt_ids).count() == 0
