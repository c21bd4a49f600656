"""bench/learning.py's figures: intervals over prompts and over templates, the paired rise, the rise's verdict,
--seed in an arm's recipe, and bench/learning_seeds.py's average over runs."""

import argparse
import json
from pathlib import Path

import pytest
import yaml

from bench import learning_measure, learning_report, learning_seeds
from bench.learning_arm import recipe_write
from bench.learning_measure import bootstrap_interval, pass_figures, rise_interval

ROOT = Path(__file__).resolve().parents[2]


def test_an_interval_over_templates_is_wider_when_a_templates_prompts_share_its_difficulty():
    # 10 templates x 8 prompts; half the templates always pass, half never: 80 prompts but 10 independent draws
    rates = [1.0 if t % 2 else 0.0 for t in range(10) for _ in range(8)]
    clusters = [f"t{t}" for t in range(10) for _ in range(8)]
    low_p, high_p = bootstrap_interval(rates)
    low_t, high_t = bootstrap_interval(rates, clusters=clusters)
    assert low_t < low_p < 0.5 < high_p < high_t
    assert (high_t - low_t) > 2 * (high_p - low_p)
    # one prompt per template: the same resampling, the same interval
    assert bootstrap_interval(rates, clusters=[str(i) for i in range(80)]) == (low_p, high_p)
    with pytest.raises(ValueError, match="3 cluster keys for 80 values"):
        bootstrap_interval(rates, clusters=["a", "b", "c"])


def test_the_paired_rise_reads_only_the_shared_prompts_and_draws_templates():
    before = {"a": 0.0, "b": 0.25, "c": 0.5, "gone": 1.0}
    after = {"a": 0.5, "b": 0.75, "c": 1.0, "new": 0.0}
    rise = rise_interval(before, after, {"a": "t1", "b": "t1", "c": "t2"})
    assert rise == {"value": 0.5, "low": 0.5, "high": 0.5, "prompts": 3, "templates": 2}
    mixed = rise_interval({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 0.0}, {"a": "t1", "b": "t2"})
    assert (mixed["value"], mixed["low"], mixed["high"]) == (0.5, 0.0, 1.0)
    assert rise_interval({"a": 0.0}, {"b": 1.0}, {})["value"] is None


def _eval_rows(rates: dict[str, float], role: str = "policy") -> list[dict]:
    return [{"prompt_id": p, role: {"passed": int(r * 4), "n": 4}} for p, r in rates.items()]


def test_pass_figures_keep_each_prompts_rate_and_both_intervals():
    rows = _eval_rows({"p1": 0.25, "p2": 0.75, "p3": 0.0}) + [{"prompt_id": "p4", "policy": {"passed": 0, "n": 0}}]
    figures = pass_figures(rows, "policy", {"p1": "t1", "p2": "t1", "p3": "t2"})
    assert figures["pass_at_1"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["by_prompt"] == {"p1": 0.25, "p2": 0.75, "p3": 0.0}
    assert figures["pass_at_1_low_template"] <= figures["pass_at_1_low"]
    assert "pass_at_1_low_template" not in pass_figures(rows, "policy")


def _round(number: int, rates: dict[str, float], templates: dict[str, str], *, promoted: bool = True) -> dict:
    figures = pass_figures(_eval_rows(rates), "policy", templates)
    return {"round": number, **figures, "promoted": promoted, "parent": figures, "candidate": figures,
            "label_accuracy": {"accuracy": 1.0}, "reward_accuracy_heldout_ladder": {"accuracy": 0.9},
            "round_seconds": 60.0}  # fmt: skip


def test_the_rises_verdict_reads_the_intervals_over_templates():
    # 16 templates x 6 prompts. Round 3 lifts 4 templates from 0 to 1: +0.25, clear over prompts (96 draws) but
    # not over templates (16 draws, the template-to-template spread is large)
    templates = {f"p{t}_{i}": f"t{t}" for t in range(16) for i in range(6)}
    base = {p: (1.0 if int(t[1:]) < 4 else 0.0) for p, t in templates.items()}
    better = {p: (1.0 if int(t[1:]) < 8 else 0.0) for p, t in templates.items()}
    rounds = [{**_round(0, base, templates), "round": 0}] + [
        _round(n, r, templates) for n, r in ((1, base), (2, base), (3, better))
    ]
    rise = learning_report._rise(rounds, templates)
    assert rise["value"] == 0.25 and rise["round"] == 3
    assert rise["outside_prompt_intervals"] is True
    assert rise["outside_intervals"] is False  # the verdict's
    assert rise["paired"]["value"] == 0.25 and rise["paired"]["templates"] == 16
    assert 0.0 < rise["paired"]["low"] < 0.25 < rise["paired"]["high"]
    targets = learning_report.targets({"rounds": rounds}, templates)
    assert targets["pass_rise"]["met"] is False
    # the same lift on 64 templates clears both
    templates = {f"p{t}_{i}": f"t{t}" for t in range(64) for i in range(2)}
    base = {p: (1.0 if int(t[1:]) < 16 else 0.0) for p, t in templates.items()}
    better = {p: (1.0 if int(t[1:]) < 48 else 0.0) for p, t in templates.items()}
    rounds = [{**_round(0, base, templates), "round": 0}, _round(1, better, templates)]
    assert learning_report.targets({"rounds": rounds}, templates)["pass_rise"]["met"] is True


def test_a_seed_moves_the_trained_stages_seeds_but_not_the_evaluations(tmp_path):
    args = argparse.Namespace(
        recipe=ROOT / "training" / "recipes" / "ladder", out=tmp_path, seed=3, reward_init=None, arm="main"
    )
    recipe_write(args, tmp_path / "arm" / "ladder")
    seeds = {
        stage: yaml.safe_load((tmp_path / "arm" / "ladder" / f"{stage}.yaml").read_text())["seed"]
        for stage in ("sft", "reward", "dpo", "online_rl", "evaluate")
    }
    assert seeds == {"sft": 45, "reward": 45, "dpo": 45, "online_rl": 45, "evaluate": 42}
    evaluate = yaml.safe_load((tmp_path / "arm" / "ladder" / "evaluate.yaml").read_text())
    assert evaluate["prompts_file"] == str(tmp_path / "heldout.jsonl")


def _run(folder: Path, rises: dict[str, float], templates: dict[str, str], *, control: bool = False) -> Path:
    folder.mkdir()
    base = {p: 0.25 for p in templates}
    rounds = [{**_round(0, base, templates), "round": 0}, _round(1, base, templates)]
    rounds.append(_round(2, {p: 0.25 + rises[p] for p in templates}, templates))
    result = {"rounds": rounds}
    if control:
        result["control_swapped"] = {"rounds": rounds[:2]}
    (folder / "learning.json").write_text(json.dumps(result))
    (folder / "heldout.jsonl").write_text("".join(json.dumps({"task_id": p, "template": t}) + "\n"
                                                  for p, t in templates.items()))  # fmt: skip
    return folder


def test_the_seeds_average_takes_each_runs_last_round(tmp_path, capsys):
    templates = {f"p{i}": f"t{i % 4}" for i in range(8)}
    one = _run(tmp_path / "one", {p: 0.25 for p in templates}, templates, control=True)
    two = _run(tmp_path / "two", {p: (0.5 if i < 4 else 0.0) for i, p in enumerate(templates)}, templates)
    three = _run(tmp_path / "three", {p: 0.0 for p in templates}, templates)
    assert learning_seeds.main([str(one), str(two), str(three)]) == 0
    combined = json.loads((tmp_path / "seeds.json").read_text())
    main = combined["main"]
    assert [r["rise"] for r in main["runs"]] == [0.25, 0.25, 0.0]
    assert main["mean_rise"] == pytest.approx(1 / 6, abs=1e-4)
    assert main["t_low"] < main["mean_rise"] < main["t_high"]
    assert main["pooled_paired"]["value"] == pytest.approx(1 / 6, abs=1e-4)
    assert main["pooled_paired"]["templates"] == 4
    assert [r["rise"] for r in combined["control_swapped"]["runs"]] == [0.0]
    assert "main: mean rise over 3 runs 0.167" in capsys.readouterr().out


def test_the_seeds_average_refuses_a_folder_without_a_run(tmp_path):
    with pytest.raises(SystemExit, match="not a bench/learning.py output folder"):
        learning_seeds.main([str(tmp_path)])


def test_the_report_reads_the_learned_and_the_grounded_reward_accuracy_apart():
    templates = {"p1": "t1", "p2": "t2"}
    rates = {"p1": 0.5, "p2": 0.25}
    rounds = [{**_round(0, rates, templates), "round": 0}, _round(1, rates, templates), _round(2, rates, templates)]
    rounds[1]["reward_accuracy_heldout_ladder"] = {"accuracy": 0.61, "grounded_accuracy": 0.95}
    rounds[2]["reward_accuracy_heldout_ladder"] = {"accuracy": 0.8, "grounded_accuracy": 0.89}
    t = learning_report.targets({"rounds": rounds}, templates)
    assert (t["reward_accuracy_heldout"]["value"], t["reward_accuracy_heldout"]["met"]) == (0.61, False)
    assert (t["grounded_reward_accuracy_heldout"]["value"], t["grounded_reward_accuracy_heldout"]["met"]) == (
        0.89,
        False,
    )
    rounds[2]["reward_accuracy_heldout_ladder"]["grounded_accuracy"] = 0.93
    assert learning_report.targets({"rounds": rounds}, templates)["grounded_reward_accuracy_heldout"]["met"] is True
    # a record from before the grounded figure: no grounded value, so never met
    rounds[1]["reward_accuracy_heldout_ladder"] = rounds[2]["reward_accuracy_heldout_ladder"] = {"accuracy": 0.95}
    assert learning_report.targets({"rounds": rounds}, templates)["grounded_reward_accuracy_heldout"] == {
        "value": None,
        "target": 0.9,
        "met": False,
    }


def test_the_held_out_truth_pairs_carry_their_template():
    heldout = {"p1": {"prompt": "def f(x):\n", "canonical_solution": "    return x\n", "template": "str.upper"}}
    rows = [
        {"prompt_id": "p1", "parent": {"outcomes": ["failed"], "sample": "    return 1\n"},
         "policy": {"outcomes": ["passed"], "sample": "    return x\n"}},
        {"prompt_id": "p9", "parent": {"outcomes": ["failed"], "sample": "    return 1\n"}},
    ]  # fmt: skip
    assert learning_measure.truth_pairs(rows, heldout) == [
        {"prompt": "def f(x):\n", "chosen": "    return x\n", "rejected": "    return 1\n", "template": "str.upper"}
    ]
