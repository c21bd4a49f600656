"""Weight interpolation with the parent (training.interpolation, the pipeline's ``merge_with_parent``): the saved
weights are the stated mix of the trained and the parent's, tensor by tensor; a model of another architecture or
a weight outside (0, 1] is refused by name; the cycle passes its parent to the stages it names and to no other;
with ``merge_beside`` the mix is saved in a folder of its own and the trained model stays where the next stage
reads it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.training.conftest import TINY, planned_commands, read_weights
from training import interpolation, tiny


@pytest.fixture
def two_models(tmp_path, tiny_tokenizer):
    """Two tiny Llama models of one architecture with different random weights."""
    kwargs = dict(arch="llama", tokenizer=tiny_tokenizer, hidden=32, layers=1, heads=2)
    return tiny.make_model(tmp_path / "a", seed=0, **kwargs), tiny.make_model(tmp_path / "b", seed=1, **kwargs)


def test_the_saved_weights_are_the_stated_mix_of_the_two_models(two_models):
    a, b = two_models
    before_a, before_b = read_weights(a), read_weights(b)

    found = interpolation.interpolate(a, str(b), 0.25)

    after = read_weights(a)
    assert after.keys() == before_a.keys()
    for name, value in after.items():
        torch.testing.assert_close(value, 0.25 * before_a[name] + 0.75 * before_b[name])
    distance = sum(float((0.75 * (before_b[n] - before_a[n])).pow(2).sum()) for n in before_a) ** 0.5
    assert found["interpolated_with"] == str(b) and found["interpolation_weight"] == 0.25
    assert found["interpolation_distance"] == pytest.approx(distance, rel=1e-4) and distance > 1.0
    assert read_weights(b).keys() == before_b.keys()  # the parent is read, never written
    for name, value in read_weights(b).items():
        assert torch.equal(value, before_b[name])


def test_weight_one_keeps_the_trained_model(two_models):
    a, b = two_models
    before = read_weights(a)

    assert interpolation.interpolate(a, str(b), 1.0)["interpolation_distance"] == 0.0

    for name, value in read_weights(a).items():
        assert torch.equal(value, before[name])


def test_a_mix_saved_beside_leaves_the_trained_model_as_it_was(tmp_path, two_models):
    from training import loading

    a, b = two_models
    before_a, before_b = read_weights(a), read_weights(b)

    found = interpolation.interpolate(a, str(b), 0.5, output_dir=tmp_path / "a_merged")

    assert found["interpolated_dir"] == str(tmp_path / "a_merged")
    for name, value in read_weights(a).items():
        assert torch.equal(value, before_a[name])
    mixed = read_weights(tmp_path / "a_merged")
    assert mixed.keys() == before_a.keys()
    for name, value in mixed.items():
        torch.testing.assert_close(value, 0.5 * before_a[name] + 0.5 * before_b[name])
    # a model folder of its own: the next stage or the evaluate stage loads it with its tokenizer
    tokenizer = loading.tokenizer(str(tmp_path / "a_merged"))
    assert tokenizer("def f(x):").input_ids == loading.tokenizer(str(a))("def f(x):").input_ids


def test_another_architecture_or_a_weight_outside_the_range_is_refused_by_name(tmp_path, two_models, tiny_tokenizer):
    a, _ = two_models
    deeper = tiny.make_model(tmp_path / "deeper", arch="llama", tokenizer=tiny_tokenizer, hidden=32, layers=2, heads=2)

    with pytest.raises(interpolation.InterpolationError, match=r"not the architecture of .*model\.layers\.1\."):
        interpolation.interpolate(a, str(deeper), 0.5)
    for weight in (0.0, 1.5):
        with pytest.raises(interpolation.InterpolationError, match="must be in \\(0, 1\\]"):
            interpolation.interpolate(a, str(deeper), weight)


def test_the_cycle_passes_its_parent_to_the_stages_it_names(tmp_path, snapshot_dir):
    def plan(**kwargs):
        return planned_commands(snapshot_dir, tmp_path, **kwargs)

    steps = plan(merge_with_parent={"dpo": 0.5})
    dpo = steps["dpo"]
    assert dpo[dpo.index("--interpolate_with") + 1] == "org/parent-model"
    assert dpo[dpo.index("--interpolation_weight") + 1] == "0.5"
    assert all("--interpolate_with" not in steps[s] for s in ("sft", "reward", "online_rl", "evaluate"))
    assert steps["online_rl"][steps["online_rl"].index("--model_name_or_path") + 1] == str(tmp_path / "dpo")
    # a JSON string, as on the command line
    assert "--interpolate_with" in plan(merge_with_parent='{"sft": 0.75}')["sft"]
    assert all("--interpolate_with" not in command for command in plan().values())

    with pytest.raises(ValueError, match="merge_with_parent: reward is not a policy stage"):
        plan(merge_with_parent={"reward": 0.5})
    with pytest.raises(ValueError, match="merge_with_parent: online_rl is not a policy stage of this cycle"):
        plan(merge_with_parent={"online_rl": 0.5}, stages=["sft", "dpo", "evaluate"])
    with pytest.raises(ValueError, match="dpo's weight must be a number in \\(0, 1\\]; got 2"):
        plan(merge_with_parent={"dpo": 2})
    with pytest.raises(ValueError, match="must be JSON"):
        plan(merge_with_parent="{dpo: 0.5")


def test_beside_the_stage_the_mix_is_offered_and_the_next_stage_starts_from_the_trained_model(tmp_path, snapshot_dir):
    def plan(**kwargs):
        return planned_commands(snapshot_dir, tmp_path, **kwargs)

    steps = plan(merge_with_parent={"dpo": 0.5}, merge_beside=True, select_from=["dpo_merged"])
    dpo, online_rl, evaluate = steps["dpo"], steps["online_rl"], steps["evaluate"]
    assert dpo[dpo.index("--output_dir") + 1] == str(tmp_path / "dpo")
    assert dpo[dpo.index("--interpolated_output_dir") + 1] == str(tmp_path / "dpo_merged")
    assert dpo[dpo.index("--interpolate_with") + 1] == "org/parent-model"
    assert online_rl[online_rl.index("--model_name_or_path") + 1] == str(tmp_path / "dpo")
    assert evaluate[evaluate.index("--model_name_or_path") + 1] == str(tmp_path / "online_rl")
    offered = evaluate[evaluate.index("--candidate_model_paths") + 1 :]
    assert offered[: offered.index("--reward_model_path")] == [str(tmp_path / "dpo_merged")]
    # without merge_beside the mix replaces the stage's folder: there is no dpo_merged to offer
    assert "--interpolated_output_dir" not in plan(merge_with_parent={"dpo": 0.5})["dpo"]
    with pytest.raises(ValueError, match="select_from: dpo_merged is not a policy stage run before evaluate"):
        plan(merge_with_parent={"dpo": 0.5}, select_from=["dpo_merged"])
    with pytest.raises(ValueError, match="their mixes with the parent: dpo_merged"):
        plan(merge_with_parent={"dpo": 0.5}, merge_beside=True, select_from=["sft_merged"])
    with pytest.raises(ValueError, match="merge_beside: true needs merge_with_parent"):
        plan(merge_beside=True)


def test_a_stage_refuses_a_weight_outside_the_range(snapshot_dir):
    from training.configs import DPOArguments

    with pytest.raises(ValueError, match="--interpolation_weight must be in \\(0, 1\\]; got 0.0"):
        DPOArguments(snapshot=str(snapshot_dir), interpolate_with="x", interpolation_weight=0.0)
    with pytest.raises(ValueError, match="--interpolated_output_dir needs --interpolate_with"):
        DPOArguments(snapshot=str(snapshot_dir), interpolated_output_dir="elsewhere")


@pytest.mark.slow
def test_the_dpo_stage_saves_the_mix_and_measures_it(tmp_path, make_tiny_model, snapshot_dir):
    from training import dpo

    start = make_tiny_model("llama", hidden=32, layers=1, heads=2)
    parent = shutil.copytree(start, tmp_path / "parent")

    def train(out, *extra):
        return dpo.main(
            [
                "--config", str(TINY / "dpo.yaml"),
                "--snapshot", str(snapshot_dir),
                "--output_dir", str(out),
                "--model_name_or_path", str(start),
                "--disable_tqdm", "true",
                "--max_steps", "4",
                *extra,
            ]
        )  # fmt: skip

    train(tmp_path / "trained")
    result = train(tmp_path / "mixed", "--interpolate_with", str(parent), "--interpolation_weight", "0.5")

    trained, mixed, base = (read_weights(tmp_path / n) for n in ("trained", "mixed", "parent"))
    assert any(not torch.equal(trained[n], base[n]) for n in base)  # training moved the weights
    for name, value in mixed.items():
        torch.testing.assert_close(value, 0.5 * trained[name] + 0.5 * base[name])
    saved = json.loads((tmp_path / "mixed" / "result.json").read_text())
    assert saved["interpolated_with"] == str(parent) and saved["interpolation_weight"] == 0.5
    # DPO's own metric reads the trained weights (the same as without the mix); the mix is measured beside it
    trained = json.loads((tmp_path / "trained" / "result.json").read_text())
    assert result["policy_margin_after"] == pytest.approx(trained["policy_margin_after"], rel=1e-5)
    assert result["policy_margin_after"] > result["policy_margin_before"]
    assert saved["policy_margin_interpolated"] != pytest.approx(trained["policy_margin_after"], rel=1e-3)
    assert 0.0 <= saved["policy_preference_interpolated"] <= 1.0

    # beside: the stage's folder keeps the trained weights, the mix goes to its own folder and is measured there
    beside = train(
        tmp_path / "beside", "--interpolate_with", str(parent), "--interpolated_output_dir", str(tmp_path / "merged")
    )
    for name, value in read_weights(tmp_path / "beside").items():
        torch.testing.assert_close(value, read_weights(tmp_path / "trained")[name])
    for name, value in read_weights(tmp_path / "merged").items():
        torch.testing.assert_close(value, mixed[name])
    assert beside["interpolated_dir"] == str(tmp_path / "merged")
    assert beside["policy_margin_interpolated"] == pytest.approx(saved["policy_margin_interpolated"], rel=1e-5)
