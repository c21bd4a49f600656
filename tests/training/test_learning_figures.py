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
    assert evaluate["prompts_file"] == str(tmp_path / "gate.jsonl")  # the report set is never the platform's


def test_the_gpu_form_trains_every_stage_on_the_gpu_and_the_copy_reads_its_own_stage_files(tmp_path):
    """--gpu appends use_cpu false and bf16 true to the trained stages (a later key wins); evaluation is left as
    it is. Any recipe folder, the base one included, has its copy's pipeline pointed at the copy."""
    args = argparse.Namespace(
        recipe=ROOT / "training" / "recipes" / "base", out=tmp_path, seed=0, reward_init=None, arm="main", gpu=True
    )
    copy = tmp_path / "arm" / "ladder"
    recipe_write(args, copy)
    for stage in ("sft", "reward", "dpo", "online_rl"):
        config = yaml.safe_load((copy / f"{stage}.yaml").read_text())
        assert (config["use_cpu"], config["bf16"]) == (False, True), stage
    assert "use_cpu" not in yaml.safe_load((copy / "evaluate.yaml").read_text())
    assert yaml.safe_load((copy / "pipeline.yaml").read_text())["recipe"] == str(copy)
    args.gpu = False
    recipe_write(args, tmp_path / "cpu" / "ladder")
    assert "use_cpu" not in yaml.safe_load((tmp_path / "cpu" / "ladder" / "sft.yaml").read_text())


def test_the_gpu_form_is_refused_where_torch_sees_no_gpu(tmp_path, monkeypatch):
    from bench import learning

    monkeypatch.setattr(learning, "cuda_available", lambda: False)
    with pytest.raises(SystemExit, match="--gpu: torch sees no CUDA GPU"):
        learning.main(["--gpu", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()  # refused before anything was built or written


def _run(
    folder: Path,
    rises: dict[str, float],
    templates: dict[str, str],
    *,
    control: bool = False,
    seed: int | None = None,
    start: float = 0.25,
) -> Path:
    folder.mkdir()
    base = {p: start for p in templates}
    rounds = [{**_round(0, base, templates), "round": 0}, _round(1, base, templates)]
    rounds.append(_round(2, {p: start + rises[p] for p in templates}, templates))
    result = {"rounds": rounds, **({"settings": {"seed": str(seed)}} if seed is not None else {})}
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


def test_two_recipes_compare_seed_by_seed_on_the_last_round_and_only_from_the_same_start(tmp_path, capsys):
    templates = {f"p{i}": f"t{i % 4}" for i in range(8)}
    lift = {p: 0.25 for p in templates}
    recipe = [_run(tmp_path / f"mix{s}", lift, templates, seed=s) for s in (0, 2)]
    control = [  # listed in another order: runs are matched by seed
        _run(tmp_path / "plain2", {p: (0.5 if i < 4 else 0.0) for i, p in enumerate(templates)}, templates, seed=2),
        _run(tmp_path / "plain0", {p: 0.0 for p in templates}, templates, seed=0),
    ]
    argv = [str(r) for r in recipe] + ["--against", *map(str, control), "--out", str(tmp_path / "c.json")]
    assert learning_seeds.main(argv) == 0
    main = json.loads((tmp_path / "c.json").read_text())["main"]
    assert [(p["seed"], p["control"].endswith(f"plain{p['seed']}")) for p in main["pairs"]] == [
        ("0", True),
        ("2", True),
    ]
    assert [p["difference"] for p in main["pairs"]] == [0.25, 0.0]
    assert [(p["last"], p["control_last"]) for p in main["pairs"]] == [(0.5, 0.25), (0.5, 0.5)]
    assert main["mean_difference"] == 0.125 and main["t_low"] < 0.125 < main["t_high"]
    # pooled, per prompt the mean over seeds: p0-p3 (0.25 + -0.25) / 2 = 0, p4-p7 (0.25 + 0.25) / 2 = 0.25
    assert main["pooled_paired"]["value"] == 0.125
    assert main["pooled_paired"]["templates"] == 4
    assert "main: mean difference over 2 seeds 0.125" in capsys.readouterr().out
    # another bootstrap model (round 0 differs) is not a control
    other = _run(tmp_path / "other0", lift, templates, seed=0, start=0.5)
    with pytest.raises(SystemExit, match="round 0 differs"):
        learning_seeds.main([str(recipe[0]), "--against", str(other)])
    with pytest.raises(SystemExit, match="no run of --seed 2 among --against"):
        learning_seeds.main([str(recipe[1]), "--against", str(control[1])])
    with pytest.raises(SystemExit, match="two runs of --seed 0 on one side"):
        learning_seeds.main([str(recipe[0]), "--against", str(control[1]), str(other)])


def test_runs_compare_at_a_given_round_and_a_run_short_of_it_is_refused(tmp_path, capsys):
    templates = {f"p{i}": f"t{i % 4}" for i in range(8)}
    recipe = _run(tmp_path / "mix0", {p: 0.25 for p in templates}, templates, seed=0, control=True)
    control = _run(tmp_path / "plain0", {p: 0.0 for p in templates}, templates, seed=0)
    rounds = json.loads((recipe / "learning.json").read_text())["rounds"]
    assert rounds[1]["pass_at_1"] == 0.25 and rounds[2]["pass_at_1"] == 0.5  # round 2 lifts, round 1 does not
    assert (
        learning_seeds.main([str(recipe), "--against", str(control), "--round", "1", "--out", str(tmp_path / "c1")])
        == 0
    )
    assert json.loads((tmp_path / "c1").read_text())["main"]["pairs"][0]["difference"] == 0.0
    assert learning_seeds.main([str(recipe), "--against", str(control), "--out", str(tmp_path / "c2")]) == 0
    assert json.loads((tmp_path / "c2").read_text())["main"]["pairs"][0]["difference"] == 0.25
    assert learning_seeds.main([str(recipe), "--round", "1", "--out", str(tmp_path / "s1")]) == 0
    rise = json.loads((tmp_path / "s1").read_text())
    assert [r["last_round"] for r in rise["main"]["runs"]] == [1] and rise["main"]["runs"][0]["rise"] == 0.0
    assert [r["last_round"] for r in rise["control_swapped"]["runs"]] == [1]
    capsys.readouterr()
    with pytest.raises(SystemExit, match="mix0: no round 3 \\(its last round is 2\\)"):
        learning_seeds.main([str(recipe), "--round", "3"])
    with pytest.raises(SystemExit, match="--round must be at least 1"):
        learning_seeds.main([str(recipe), "--round", "0"])


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


def test_the_rise_is_read_at_the_model_held_after_round_3_not_at_the_best_round():
    templates = {f"p{t}_{i}": f"t{t}" for t in range(64) for i in range(2)}
    rates = {n: {p: (1.0 if int(t[1:]) < cut else 0.0) for p, t in templates.items()} for n, cut in
             ((0, 16), (1, 16), (2, 48), (3, 24))}  # fmt: skip
    rounds = [{**_round(0, rates[0], templates), "round": 0}] + [_round(n, rates[n], templates) for n in (1, 2, 3)]
    rise = learning_report._rise(rounds, templates)
    assert (rise["round"], rise["value"]) == (3, 0.125)  # round 2's +0.5 is not what the loop ended with
    assert learning_report._rise(rounds[:3], templates)["value"] == 0.5  # two rounds run: the second


def _measured(rates: dict[str, float], model: str) -> dict[str, dict]:
    return {p: {"passed": int(r * 4), "n": 4, "outcomes": ["failed"] * (4 - int(r * 4)) + ["passed"] * int(r * 4),
                "sample": "    return x\n", "model": model} for p, r in rates.items()}  # fmt: skip


def test_the_rounds_pass_figures_come_from_the_report_set_and_the_gates_are_kept_apart(tmp_path):
    heldout = tmp_path / "heldout.jsonl"
    tasks = [{"task_id": f"r{i}", "template": f"t{i % 3}", "prompt": f"def f{i}(x):\n", "canonical_solution": ""}
             for i in range(6)]  # fmt: skip
    heldout.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    eval_dir = tmp_path / "cycle" / "evaluate"
    eval_dir.mkdir(parents=True)
    gate = {  # the cycle's own evaluation, on other prompts
        "pass@1": {"policy": 0.5, "parent": 0.25},
        "selected": "dpo",
        "prompts": 2,
        "candidates": [{"name": "online_rl", "pass@1": 0.125}, {"name": "dpo", "pass@1": 0.5}],
        "per_prompt": [{"prompt_id": "g1", "policy": {"passed": 4, "n": 4}, "parent": {"passed": 0, "n": 4}}],
    }
    (eval_dir / "eval.json").write_text(json.dumps(gate))
    record = {"eval_dir": str(eval_dir), "promotion": {"promote": True}, "seconds": {"cycle": 10.0}}
    measured = {
        "parent": _measured({f"r{i}": 0.25 for i in range(6)}, "parent"),
        "policy": _measured({f"r{i}": (0.75 if i < 3 else 0.25) for i in range(6)}, "dpo"),
    }
    learning_measure.add_figures(record, heldout=heldout, measured=measured)
    assert record["parent"]["pass_at_1"] == 0.25 and record["candidate"]["pass_at_1"] == 0.5
    assert set(record["candidate"]["by_prompt"]) == {f"r{i}" for i in range(6)}  # not the gate's g1
    assert record["pass_at_1"] == 0.5 and record["promoted"] is True
    assert record["gate"] == {"parent": 0.25, "candidates": {"online_rl": 0.125, "dpo": 0.5}, "selected": "dpo",
                              "prompts": 2}  # fmt: skip
    # the truth pairs for the reward's held-out accuracy: the report set's first samples that failed (all 12)
    assert record["reward_accuracy_heldout_ladder"]["pairs"] == 12
    unused = ("reward_accuracy_before", "reward_accuracy_after", "policy_preference_before", "policy_preference_after")
    shown = {**record, "round": 1, "label_accuracy": {"accuracy": 1.0}, "votes_used": 1, **dict.fromkeys(unused)}
    line = learning_measure.round_line("main", shown)
    assert line.endswith("; gate set: parent 0.250, online_rl 0.125, dpo 0.500*")


def test_the_gate_set_holds_other_tasks_of_the_held_out_templates(tmp_path):
    from bench import learning

    args = learning.make_parser().parse_args(["--out", str(tmp_path), "--heldout", "48", "--gate-prompts", "48"])
    report = [json.loads(line) for line in learning.heldout_file(args).read_text().splitlines()]
    gate = [json.loads(line) for line in learning.gate_file(args).read_text().splitlines()]
    assert len(gate) >= 40 and not {t["prompt"] for t in gate} & {t["prompt"] for t in report}
    assert {t["task_id"].split("/")[1] for t in gate + report} == {"heldout"}
    assert {t["template"] for t in gate} - {t["template"] for t in report}  # drawn anew, not the report's list


@pytest.mark.slow
def test_a_model_is_measured_on_the_report_set_once(tmp_path, make_tiny_model, snapshot_dir):
    from training.ladder import ladder_tasks

    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(t.record()) + "\n" for t in ladder_tasks(n=2, seed=1, split="heldout")))
    config = tmp_path / "evaluate.yaml"
    config.write_text((ROOT / "training" / "recipes" / "ladder" / "evaluate.yaml").read_text() + "max_new_tokens: 8\n")
    model = make_tiny_model("llama", hidden=32, layers=1, heads=2)
    settings = {"heldout": heldout, "config": config, "snapshot": str(snapshot_dir), "cache": tmp_path / "measure"}

    first = learning_measure.measure(str(model), **settings)
    assert sorted(first) == sorted(json.loads(line)["task_id"] for line in heldout.read_text().splitlines())
    assert {row["n"] for row in first.values()} == {4} and {row["model"] for row in first.values()} == {str(model)}
    logs = list((tmp_path / "measure").glob("*.log"))
    assert len(logs) == 1
    logs[0].unlink()
    assert learning_measure.measure(str(model), **settings) == first  # from the cache: no new run, no new log
    assert not list((tmp_path / "measure").glob("*.log"))


def test_the_paired_verdict_reads_the_lower_end_of_the_paired_rise_where_unpaired_intervals_overlap():
    # 8 templates x 8 prompts, half of them hard (0 -> 0.25) and half easy (0.75 -> 1.0): every prompt rises by
    # 0.25, so the paired interval is [0.25, 0.25], while the spread between templates makes the two rounds'
    # intervals overlap
    templates = {f"p{t}_{i}": f"t{t}" for t in range(8) for i in range(8)}
    base = {p: (0.0 if int(t[1:]) < 4 else 0.75) for p, t in templates.items()}

    def verdict(after: dict[str, float]) -> dict:
        rounds = [{**_round(0, base, templates), "round": 0}, _round(1, after, templates)]
        target = learning_report.targets({"rounds": rounds}, templates)["pass_rise"]
        assert target["met"] is False and target["outside_intervals"] is False
        lines = learning_report.summary({"rounds": rounds, "targets": {**_targets_rest(), "pass_rise": target}})
        assert f"its lower end >= 0.10: {'MET' if target['met_paired'] else 'NOT MET'}" in lines
        return target

    even = verdict({p: r + 0.25 for p, r in base.items()})
    assert (even["paired"]["low"], even["paired"]["high"], even["met_paired"]) == (0.25, 0.25, True)
    # half the templates rise by 0.25, half not at all: +0.125 on average, but its lower end is under 0.10
    uneven = verdict({p: r + (0.25 if int(templates[p][1:]) % 2 else 0.0) for p, r in base.items()})
    assert uneven["value"] == 0.125 and uneven["paired"]["low"] < 0.10 and uneven["met_paired"] is False


def _targets_rest() -> dict:
    rest = {"value": None, "target": 1, "met": False}
    return {"no_worse_promoted": {"value": [], "met": True}, "round_seconds": rest, "label_accuracy": rest}
