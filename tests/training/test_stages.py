"""Each training stage on its own: parsing, data, the reward and DPO steps on every seed architecture, rewards,
stop rules, pass@k, and the pipeline's failure report. Tiny models on the CPU, a few steps each."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest

from tests.training.conftest import REPO_ROOT, TINY, changed, losses, pipeline_command
from training import cli, data, reward_scoring, run_record
from training.boundary import at_token_boundary

ARCHITECTURES = [
    ("llama", "LlamaForSequenceClassification"),
    ("gpt_bigcode", "GPTBigCodeForSequenceClassification"),
    ("mpt", "MptForSequenceClassification"),
]


def test_no_training_module_imports_django():
    import pkgutil

    import training

    modules = sorted(m.name for m in pkgutil.walk_packages(training.__path__, "training."))
    expected = {"training.dpo", "training.reward", "training.pipeline", "training.evaluate", "training.sandbox.run"}
    assert expected <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "for name in ('sft', 'reward', 'dpo', 'evaluate', 'pipeline'):\n"
        "    importlib.import_module('training.' + name).make_parser()\n"
        "importlib.import_module('training.online_rl').make_parser('rloo')\n"
        "import trl\n"
        "from trl import DPOTrainer, GRPOTrainer, RLOOTrainer, RewardTrainer, SFTTrainer\n"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print('LEAKED', leaked)\n"
        "sys.exit(1 if leaked else 0)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "LEAKED []" in done.stdout


def test_a_recipe_sets_the_defaults_and_a_flag_overrides_it(tmp_path):
    from training import dpo

    script_args, training_args, model_args = cli.parse(
        dpo.make_parser(),
        [
            "--config",
            str(TINY / "dpo.yaml"),
            "--snapshot",
            "snap",
            "--output_dir",
            str(tmp_path),
            "--model_name_or_path",
            "m",
            "--learning_rate",
            "0.5",
        ],
    )
    assert training_args.learning_rate == 0.5  # the flag
    assert training_args.max_steps == 8 and training_args.beta == 0.1  # the recipe
    assert training_args.use_cpu is True and training_args.bf16 is False
    assert training_args.gradient_checkpointing is False and training_args.report_to == []
    assert script_args.snapshot == "snap" and model_args.model_name_or_path == "m"


def test_a_missing_snapshot_is_a_usage_error_naming_the_expected_layout(tmp_path, capsys):
    from training import dpo

    with pytest.raises(SystemExit) as exit_info:
        dpo.main(["--config", str(TINY / "dpo.yaml"), "--output_dir", str(tmp_path), "--model_name_or_path", "m"])
    assert exit_info.value.code == 2
    assert "--snapshot is required" in capsys.readouterr().err


def test_a_bad_evaluate_k_names_the_expected_format(tmp_path, capsys):
    from training import evaluate

    with pytest.raises(SystemExit):
        evaluate.main(
            [
                "--snapshot",
                "s",
                "--output_dir",
                str(tmp_path),
                "--model_name_or_path",
                "m",
                "--n_samples",
                "2",
                "--pass_k",
                "1",
                "5",
            ]
        )
    assert "between 1 and --n_samples (2)" in capsys.readouterr().err


@pytest.mark.parametrize("algorithm,config_class", [("grpo", "GRPOConfig"), ("rloo", "RLOOConfig")])
def test_the_online_rl_algorithm_picks_the_trainer_config(tmp_path, algorithm, config_class):
    from training import online_rl

    argv = [
        "--config",
        str(TINY / "online_rl.yaml"),
        "--snapshot",
        "s",
        "--output_dir",
        str(tmp_path),
        "--algorithm",
        algorithm,
    ]
    chosen = cli.peek_option(argv, "algorithm", "grpo")
    script_args, training_args, _ = cli.parse(online_rl.make_parser(chosen), argv)
    assert script_args.algorithm == algorithm
    assert type(training_args).__name__ == config_class
    assert script_args.stop_sequences[0] == "\ndef "


@pytest.mark.parametrize(
    "recipe",
    sorted(p.name for p in (REPO_ROOT / "training" / "recipes").iterdir() if p.is_dir() and p.name != "accelerate"),
)
def test_every_stage_recipe_parses(tmp_path, recipe):
    from training import dpo, evaluate, online_rl, pipeline, reward, sft

    folder = REPO_ROOT / "training" / "recipes" / recipe
    base = ["--snapshot", "s", "--output_dir", str(tmp_path)]
    # GPU recipes ask for bf16, which transformers accepts on a machine without CUDA only with use_cpu.
    cpu = [] if recipe == "tiny" else ["--use_cpu", "true"]
    for module in (sft, reward, dpo):
        cli.parse(module.make_parser(), ["--config", str(folder / f"{module.STAGE}.yaml"), *base, *cpu])
    argv = ["--config", str(folder / "online_rl.yaml"), *base, *cpu]
    cli.parse(online_rl.make_parser(cli.peek_option(argv, "algorithm", "grpo")), argv)
    cli.parse(evaluate.make_parser(), ["--config", str(folder / "evaluate.yaml"), *base, "--model_name_or_path", "m"])
    (args,) = cli.parse(
        pipeline.make_parser(), ["--config", str(folder / "pipeline.yaml"), *base, "--model_name_or_path", "m"]
    )
    assert pipeline.resolve_recipe(args.recipe) == folder


def test_a_malformed_snapshot_line_is_an_error_naming_file_and_line(tmp_path):
    (tmp_path / "preference").mkdir()
    (tmp_path / "preference" / "train.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{oops\n')
    with pytest.raises(data.SnapshotError, match=r"train\.jsonl:2: not a JSON object"):
        data.preference_rows(data.open_snapshot(tmp_path), "train")
    with pytest.raises(data.SnapshotError, match="expected a snapshot folder"):
        data.open_snapshot(tmp_path / "nowhere")


def test_the_example_snapshot_has_the_exporters_layout(snapshot_dir):
    snapshot = data.open_snapshot(snapshot_dir)
    assert snapshot.version == "example-0"
    for kind in ("preference", "unpaired", "prompts"):
        for split in ("train", "test"):
            assert (snapshot_dir / kind / f"{split}.jsonl").is_file()
            assert (snapshot_dir / kind / f"{split}.parquet").is_file()
    pair = data.read_jsonl(snapshot.file("preference", "train"))[0]
    assert set(pair) >= {
        "prompt",
        "chosen",
        "rejected",
        "pair_id",
        "prompt_id",
        "votes",
        "margin",
        "agreement",
        "chosen_outcome",
        "rejected_outcome",
        "chosen_model",
        "rejected_model",
        "snapshot_version",
    }
    train_prompts = {p["prompt"] for p in data.prompt_rows(snapshot, "train")}
    test_prompts = data.prompt_rows(snapshot, "test", with_tests_only=True)
    assert test_prompts and not train_prompts & {p["prompt"] for p in test_prompts}  # held out for real
    assert {p["test_style"] for p in test_prompts} == {"humaneval"}


def test_sft_leaves_out_a_chosen_completion_whose_tests_failed(tmp_path):
    """The better of two broken completions is a fair preference (the reward model and DPO keep it), but not a
    completion to imitate: SFT skips it by default; a row with no outcome (no tests) is kept."""
    from training import sft

    rows = [
        {"prompt": "def f():\n", "chosen": "    return 1\n", "rejected": "    return\n", "chosen_outcome": "passed"},
        {"prompt": "def g():\n", "chosen": "    return 2\n", "rejected": "    x\n", "suffix": "\nprint(g())\n",
         "chosen_outcome": "failed"},  # fill-in-the-middle: left out by every stage
        {"prompt": "def h():\n", "chosen": "    return h\n", "rejected": "    return (\n", "chosen_outcome": "error"},
        {"prompt": "def k():\n", "chosen": "    return 4\n", "rejected": "    return 5\n"},
    ]  # fmt: skip
    (tmp_path / "preference").mkdir()
    (tmp_path / "preference" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    snapshot = data.open_snapshot(tmp_path)

    def bodies(**flags):
        return [r["completion"].strip() for r in data.sft_rows(snapshot, reference=False, **flags)]

    assert bodies(skip_failed=True) == ["return 1", "return 4"]
    assert bodies(skip_failed=False) == ["return 1", "return h", "return 4"]
    argv = ["--config", str(TINY / "sft.yaml"), "--snapshot", str(tmp_path), "--output_dir", str(tmp_path / "o")]
    argv += ["--model_name_or_path", "m"]
    assert cli.parse(sft.make_parser(), argv)[0].skip_failed_chosen is True
    assert cli.parse(sft.make_parser(), [*argv, "--skip_failed_chosen", "false"])[0].skip_failed_chosen is False
    # nothing left to imitate is an error that says why, before any model is loaded
    only_failed = tmp_path / "only-failed"
    (only_failed / "preference").mkdir(parents=True)
    (only_failed / "preference" / "train.jsonl").write_text(json.dumps(rows[2]) + "\n")
    argv = ["--config", str(TINY / "sft.yaml"), "--snapshot", str(only_failed), "--output_dir", str(tmp_path / "o2")]
    with pytest.raises(data.SnapshotError, match=r"1 chosen completion\(s\) left out because their tests failed"):
        sft.main([*argv, "--model_name_or_path", str(tmp_path / "no-model"), "--include_reference_solutions", "false"])


def test_reference_solutions_pass_their_tests_and_broken_bodies_do_not(snapshot_dir):
    from training.sandbox import SandboxJob, run_many

    snapshot = data.open_snapshot(snapshot_dir)
    prompts = data.prompt_rows(snapshot, "test")
    jobs = [
        SandboxJob(prompt=p["prompt"], completion=body, tests=p["tests"], entry_point=p["entry_point"])
        for p in prompts[:2]
        for body in (p["reference_solution"], "    return None\n", "    return a +\n")
    ]
    outcomes = [r.outcome for r in run_many(jobs, workers=2)]
    assert outcomes == ["passed", "failed", "error"] * 2


@pytest.mark.parametrize(
    "n,c,k,expected", [(5, 0, 1, 0.0), (5, 5, 3, 1.0), (10, 3, 1, 0.3), (4, 1, 2, 0.5), (4, 3, 2, 1.0)]
)
def test_pass_at_k_is_the_unbiased_estimator(n, c, k, expected):
    from training.evaluate import pass_at_k

    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_matches_counting_every_subset_of_k_samples():
    from training.evaluate import pass_at_k

    for n in range(1, 7):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(combinations(samples, k))
                assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_reward_texts_are_scored_with_one_eos_as_reward_trainer_trains(tiny_tokenizer):
    eos = tiny_tokenizer.eos_token
    texts = reward_scoring.reward_texts(tiny_tokenizer, ["p1", "p2"], ["c", "c" + eos])
    assert texts == ["p1c" + eos, "p2c" + eos]
    assert reward_scoring.reward_texts(tiny_tokenizer, ["p"], ["c"], eos=False) == ["pc"]


def test_the_stop_rule_ends_a_row_at_a_new_top_level_statement(tiny_tokenizer):
    import torch

    from training.generate import StopAtNextStatement

    prompt = tiny_tokenizer("def f(a):\n")["input_ids"]
    rows = ["    return a\n\ndef g():\n", "    return a\n    # still f\n", "\ndef f2(a):\n    return a\n"]
    ids = [prompt + tiny_tokenizer(r)["input_ids"] for r in rows]
    width = max(len(x) for x in ids)
    batch = torch.tensor([x + [tiny_tokenizer.pad_token_id] * (width - len(x)) for x in ids])
    done = StopAtNextStatement(tiny_tokenizer, len(prompt), ["\ndef ", "\nclass "])(batch, None)
    # A new def stops the row; an indented line does not; a completion opening with its own def is not cut.
    assert done.tolist() == [True, False, False]


def test_the_tests_reward_is_one_for_a_pass_zero_for_a_failure_and_none_without_tests(snapshot_dir):
    from training.online_rl import TestsPass

    prompt = data.prompt_rows(data.open_snapshot(snapshot_dir), "test")[0]
    reward = TestsPass(stops=["\ndef "], timeout=10)
    rewards = reward(
        prompts=[prompt["prompt"]] * 3,
        completions=[prompt["reference_solution"] + "\ndef junk(:\n", "    return None\n", "    return 1\n"],
        tests=[prompt["tests"], prompt["tests"], ""],
        test_style=["humaneval", "humaneval", "none"],
        entry_point=[prompt["entry_point"]] * 3,
    )
    # The text after the stop sequence is cut before the tests run, so the trailing syntax error is harmless.
    assert rewards == [1.0, 0.0, None]
    assert (reward.runs, reward.passes) == (2, 1)


def test_the_format_penalty_is_minus_one_for_what_the_gate_calls_degenerate_and_reads_no_tests(tmp_path):
    from training import online_rl
    from training.boundary import split_prompt

    head, tail = split_prompt('def f(x):\n    """Return x."""\n')  # online RL's prompts end before the newline
    penalty = online_rl.DegeneratePenalty(stops=["\ndef "])
    completions = [
        tail + "    return x\n",
        tail + "    return x\ndef g(:\n",  # cut at the stop sequence first: the broken tail is not judged
        tail + "    return (x\n",  # unparseable
        "   ",  # empty
        tail + "    x = 1\n" * 4,  # a loop
    ]
    assert penalty(prompts=[head] * 5, completions=completions) == [0.0, 0.0, -1.0, -1.0, -1.0]
    # a shaping term beside a reward, never the only one; a negative weight is refused
    argv = ["--config", str(TINY / "online_rl.yaml"), "--snapshot", str(tmp_path), "--output_dir", str(tmp_path / "o")]
    argv += ["--model_name_or_path", "m", "--degenerate_weight", "0.5"]
    (args, *_) = cli.parse(online_rl.make_parser(), argv)
    rows = [{"test_style": "humaneval"}]
    funcs, weights, _ = online_rl._reward_functions(args, rows, device="cpu", dtype=None)
    assert [f.__name__ for f in funcs] == ["tests", "degenerate"] and weights == [1.0, 0.5]
    args.tests_weight = 0.0
    with pytest.raises(ValueError, match="online RL needs a reward"):
        online_rl._reward_functions(args, rows, device="cpu", dtype=None)
    with pytest.raises(ValueError, match="--degenerate_weight must be >= 0"):
        dataclasses.replace(args, degenerate_weight=-0.5)


def test_the_tests_reward_is_none_for_tests_whose_verdict_would_be_weak():
    """A pass judged in process can be forged (issue 11); as a reward, the policy would learn the forgery."""
    from training.online_rl import TestsPass

    weak = "def check(candidate):\n    for x in (1, 2):\n        assert candidate(x) == x + 1\n"
    strong = "def check(candidate):\n    assert candidate(1) == 2\n"
    reward = TestsPass(stops=["\ndef "], timeout=10)
    rewards = reward(
        prompts=["def inc(x):\n"] * 2,
        completions=["    return x + 1\n"] * 2,
        tests=[weak, strong],
        test_style=["humaneval", "humaneval"],
        entry_point=["inc", "inc"],
    )
    assert rewards == [None, 1.0]
    assert (reward.runs, reward.passes, reward.weak) == (1, 1, 1)


def _stage_argv(stage: str, snapshot: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(TINY / f"{stage}.yaml"),
        "--snapshot",
        str(snapshot),
        "--output_dir",
        str(out),
        "--model_name_or_path",
        str(model),
        "--disable_tqdm",
        "true",
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("arch,head_class", ARCHITECTURES)
def test_reward_and_dpo_train_on_each_seed_architecture(tmp_path, make_tiny_model, snapshot_dir, arch, head_class):
    from transformers import AutoModelForSequenceClassification

    from training import dpo, reward

    base = make_tiny_model(arch, hidden=32, layers=1, heads=2)
    head = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
    assert type(head).__name__ == head_class  # transformers 5 has a sequence-classification head for each

    reward_result = reward.main(_stage_argv("reward", snapshot_dir, tmp_path / "reward", base, "--max_steps", "3"))
    assert reward_result["train_pairs"] == 48 and reward_result["heldout_pairs"] == 16
    assert 0.0 <= reward_result["heldout_accuracy"] <= 1.0
    assert len(losses(tmp_path / "reward")) == 3
    assert changed(base, tmp_path / "reward")  # the backbone moved, not only the new head

    dpo_result = dpo.main(_stage_argv("dpo", snapshot_dir, tmp_path / "dpo", base, "--max_steps", "2"))
    assert dpo_result["heldout_pairs"] == 16 and dpo_result["heldout_reward_accuracy"] is not None
    assert len(losses(tmp_path / "dpo")) == 2
    assert changed(base, tmp_path / "dpo")
    info = json.loads((tmp_path / "dpo" / "run_info.json").read_text())
    assert info["state"] == "succeeded" and info["versions"]["trl"] == "1.16.0"
    assert info["arguments"]["DPOConfig"]["max_steps"] == 2 and info["seed"] == 42
    assert (tmp_path / "dpo" / "loss.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_reward_model_learns_the_labels_not_its_initialisation(tmp_path, make_tiny_model, snapshot_dir):
    """Trained on swapped labels, the same start ranks the held-out pairs the other way round: the accuracy
    comes from the volunteers' choices, not from a lucky random head."""
    import shutil

    from training import reward

    swapped = tmp_path / "swapped"
    shutil.copytree(snapshot_dir, swapped)
    rows = data.read_jsonl(swapped / "preference" / "train.jsonl")
    for row in rows:
        row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    (swapped / "preference" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = make_tiny_model("llama")
    right = reward.main(_stage_argv("reward", snapshot_dir, tmp_path / "right", base, "--max_steps", "8"))
    wrong = reward.main(_stage_argv("reward", swapped, tmp_path / "wrong", base, "--max_steps", "8"))
    assert right["heldout_accuracy_before"] == wrong["heldout_accuracy_before"]  # the same start
    assert right["heldout_accuracy"] > 0.5 > wrong["heldout_accuracy"]


@pytest.mark.slow
def test_a_warm_started_reward_model_starts_where_its_init_left_off(tmp_path, make_tiny_model, snapshot_dir):
    """--init_model_path: the stage starts from a reward model trained before (its accuracy is the "before"
    figure), not from a new random head on the policy's backbone; a path with no model there is refused."""
    from training import reward

    base = make_tiny_model("llama")
    first = reward.main(_stage_argv("reward", snapshot_dir, tmp_path / "first", base, "--max_steps", "8"))
    warm = reward.main(
        _stage_argv(
            "reward", snapshot_dir, tmp_path / "warm", base, "--max_steps", "1", "--learning_rate", "1e-9",
            "--init_model_path", str(tmp_path / "first"),
        )
    )  # fmt: skip
    cold = reward.main(_stage_argv("reward", snapshot_dir, tmp_path / "cold", base, "--max_steps", "1"))
    assert first["heldout_accuracy"] > 0.5
    # the warm start begins where the first model ended (and a learning rate too small to move it keeps it there);
    # the cold one begins from a new head (the example pairs are easy: compare margins, not only accuracies)
    assert warm["heldout_accuracy_before"] == pytest.approx(first["heldout_accuracy"])
    assert warm["heldout_margin_before"] == pytest.approx(first["heldout_margin"], rel=1e-4)
    assert warm["heldout_margin"] == pytest.approx(first["heldout_margin"], rel=1e-3)
    assert cold["heldout_margin_before"] < first["heldout_margin"] / 2
    assert warm["init_model_path"] == str(tmp_path / "first") and cold["init_model_path"] is None
    with pytest.raises(ValueError, match="--init_model_path .*nowhere: no model folder there"):
        reward.main(
            _stage_argv("reward", snapshot_dir, tmp_path / "x", base, "--init_model_path", str(tmp_path / "nowhere"))
        )


@pytest.mark.slow
def test_dpo_with_lora_leaves_a_merged_model_folder(tmp_path, make_tiny_model, snapshot_dir):
    from transformers import AutoModelForCausalLM

    from training import dpo

    base = make_tiny_model("llama")
    out = tmp_path / "dpo-lora"
    result = dpo.main(
        _stage_argv(
            "dpo",
            snapshot_dir,
            out,
            base,
            "--max_steps",
            "2",
            "--use_peft",
            "true",
            "--lora_r",
            "4",
            "--lora_target_modules",
            "all-linear",
            "--learning_rate",
            "5e-4",
        )
    )
    assert (out / "adapter" / "adapter_config.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(str(out))  # a plain folder: no peft needed to load it
    assert not any("lora" in name for name, _ in model.named_parameters())
    assert changed(base, out)
    assert result["heldout_reward_accuracy"] is not None


@pytest.mark.slow
def test_rloo_trains_a_step_on_the_tests_reward_alone(tmp_path, make_tiny_model, snapshot_dir):
    from training import online_rl

    base = make_tiny_model("llama")
    out = tmp_path / "rloo"
    argv = _stage_argv(
        "online_rl",
        snapshot_dir,
        out,
        base,
        "--algorithm",
        "rloo",
        "--max_steps",
        "1",
        "--num_generations",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--max_completion_length",
        "12",
    )
    result = online_rl.main(argv)
    assert result["algorithm"] == "rloo" and result["reward_functions"] == ["tests"]
    assert result["tests_runs"] == 2
    rows = run_record.read_metrics(out / "metrics.jsonl")
    assert any(isinstance(r.get("loss"), float) and math.isfinite(r["loss"]) for r in rows)


def test_the_pipeline_stops_at_the_first_failed_stage_and_names_its_log(tmp_path, make_tiny_model, snapshot_dir):
    out = tmp_path / "run"
    command = pipeline_command(
        snapshot=snapshot_dir,
        output_dir=out,
        model=make_tiny_model("llama"),
        extra=["--stages", "dpo", "evaluate", "--stage_args", json.dumps({"dpo": ["--max_steps", "not-a-number"]})],
    )
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["state"] == "failed" and summary["failed_stage"] == "dpo"
    assert [s["stage"] for s in summary["stages"]] == ["dpo"]  # evaluate never started
    log = out / "dpo" / "stage.log"
    assert str(log) in summary["message"] and "exited with status 2" in summary["message"]
    assert "not-a-number" in log.read_text()
    assert "pipeline failed: stage dpo exited with status 2" in done.stderr


def test_the_pipeline_refuses_stages_out_of_order(tmp_path, capsys):
    from training import pipeline

    with pytest.raises(SystemExit):
        pipeline.main(
            [
                "--snapshot",
                "s",
                "--output_dir",
                str(tmp_path),
                "--model_name_or_path",
                "m",
                "--stages",
                "dpo",
                "reward",
            ]
        )
    assert "must keep the order sft, reward, dpo, online_rl, evaluate" in capsys.readouterr().err


def test_the_pipeline_plan_passes_each_stage_the_folders_of_the_stages_before_it(tmp_path, snapshot_dir):
    from training import pipeline
    from training.configs import PipelineArguments

    args = PipelineArguments(
        snapshot=str(snapshot_dir),
        output_dir=str(tmp_path),
        model_name_or_path="org/parent-model",
        recipe="training/recipes/tiny",
        launcher="accelerate launch --config_file z.yaml",
        stage_args={"dpo": ["--max_steps", "3"]},
        seed=7,
    )
    steps = {s["stage"]: s["command"] for s in pipeline.plan(args)}

    def flag(stage, name):
        command = steps[stage]
        return command[command.index(name) + 1]

    assert flag("sft", "--model_name_or_path") == "org/parent-model"
    assert flag("reward", "--model_name_or_path") == flag("dpo", "--model_name_or_path") == str(tmp_path / "sft")
    assert flag("online_rl", "--model_name_or_path") == str(tmp_path / "dpo")
    assert (
        flag("online_rl", "--reward_model_path") == flag("evaluate", "--reward_model_path") == str(tmp_path / "reward")
    )
    assert flag("evaluate", "--model_name_or_path") == str(tmp_path / "online_rl")
    assert flag("evaluate", "--parent_model_path") == "org/parent-model"
    assert steps["dpo"][:5] == ["accelerate", "launch", "--config_file", "z.yaml", "-m"]
    assert steps["evaluate"][:3] == [sys.executable, "-m", "training.evaluate"]  # never under the launcher
    assert steps["dpo"][-4:] == ["--seed", "7", "--max_steps", "3"] and flag("sft", "--seed") == "7"


def test_sigterm_cancels_the_running_stage_and_says_so_in_the_summary(tmp_path, make_tiny_model, snapshot_dir):
    import os
    import signal
    import time

    out = tmp_path / "run"
    command = pipeline_command(
        snapshot=snapshot_dir,
        output_dir=out,
        model=make_tiny_model("llama"),
        extra=["--stages", "sft", "dpo", "--stage_args", json.dumps({"sft": ["--max_steps", "100000"]})],
    )
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = out / "sft" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until the stage is really training
    assert metrics.exists(), "the sft stage never started training"
    stage_pid = json.loads((out / "sft" / "run_info.json").read_text())["pid"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143, process.stderr.read()[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["state"] == "cancelled" and summary["failed_stage"] == "sft"
    assert [s["state"] for s in summary["stages"]] == ["cancelled"]  # dpo never started
    with pytest.raises(ProcessLookupError):
        os.kill(stage_pid, 0)  # the stage process is gone, not left training in the background
    assert json.loads((out / "sft" / "run_info.json").read_text())["state"] == "running"  # killed mid-stage
    assert not (out / "sft" / "result.json").exists()


def test_the_15b_recipe_loads_the_base_in_4_bits_on_this_processs_gpu(tmp_path):
    """QLoRA as TRL's scripts set it up: the quantisation config and a device map reach every model load."""
    from training import sft
    from training.configs import prepare_training_args

    folder = REPO_ROOT / "training" / "recipes" / "starcoder-15b"
    _, training_args, model_args = cli.parse(
        sft.make_parser(),
        ["--config", str(folder / "sft.yaml"), "--snapshot", "s", "--output_dir", str(tmp_path), "--use_cpu", "true"],
    )
    prepare_training_args(training_args, model_args)
    init = training_args.model_init_kwargs
    assert init["quantization_config"].load_in_4bit and init["quantization_config"].bnb_4bit_quant_type == "nf4"
    assert init["device_map"] == {"": 0} and init["trust_remote_code"] is False


def test_reference_pairs_put_each_reference_against_each_distinct_failing_completion(snapshot_dir):
    snapshot = data.open_snapshot(snapshot_dir)
    rows = data.read_jsonl(snapshot.file("preference", "train"))
    references = {p["prompt_id"]: p["reference_solution"] for p in data.prompt_rows(snapshot, "train")}
    failing = {(r["prompt_id"], r["rejected"]) for r in rows}  # the example's chosen side always passes

    pairs = data.reference_pairs(snapshot, "train")

    assert len(pairs) == len(failing)
    expected = {at_token_boundary(r["prompt"], references[r["prompt_id"]], r["rejected"]) for r in rows}
    assert {(p["prompt"], p["chosen"], p["rejected"]) for p in pairs} == expected
