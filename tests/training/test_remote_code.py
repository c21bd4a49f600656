"""Seed models that ship their own code (Replit Code V1's ``auto_map``): one flag, off by default, reaches every
loader; without it every loader refuses with a message naming the flag; with it the model goes through
generation, every pipeline stage and the evaluation. The checkpoint is a look-alike built here
(training/lookalike): its config, model and tokenizer classes exist only in Python files beside the weights."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.training.conftest import REPO_ROOT, pipeline_command


@pytest.fixture(scope="module")
def remote_model(tmp_path_factory, tiny_tokenizer):
    from training import lookalike

    return lookalike.remote_code_model(tmp_path_factory.mktemp("remote") / "model", tokenizer=tiny_tokenizer)


def test_the_lookalike_names_its_own_classes(remote_model):
    from training import loading

    config = json.loads((remote_model / "config.json").read_text())
    assert config["model_type"] == "codepref_tiny_mpt"
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_tinympt.TinyMptForCausalLM"
    assert (remote_model / "modeling_tinympt.py").is_file()
    assert loading.needs_remote_code(remote_model)


@pytest.mark.parametrize("loader", ["tokenizer", "causal_lm", "sequence_classifier"])
def test_without_the_flag_each_loader_refuses_and_names_the_flag(remote_model, loader):
    from training import loading

    with pytest.raises(loading.RemoteCodeRefused, match="trust_remote_code"):
        getattr(loading, loader)(remote_model)


@pytest.mark.parametrize("loader,expected", [("tokenizer", "TinyMptTokenizer"), ("causal_lm", "TinyMptForCausalLM")])
def test_with_the_flag_the_repository_classes_are_the_ones_loaded(remote_model, loader, expected):
    from training import loading

    assert type(getattr(loading, loader)(remote_model, trust_remote_code=True)).__name__ == expected


def test_the_reward_model_loader_carries_the_flag(remote_model):
    from training import loading, reward_scoring

    with pytest.raises(loading.RemoteCodeRefused):
        reward_scoring.load_reward_model(remote_model, device="cpu")
    model, _ = reward_scoring.load_reward_model(remote_model, device="cpu", trust_remote_code=True)
    assert type(model).__name__ == "TinyMptForSequenceClassification"


def test_a_lora_adapter_on_it_merges_only_with_the_flag(remote_model, tmp_path):
    from peft import LoraConfig, get_peft_model

    from training import loading, saving

    base = loading.causal_lm(remote_model, trust_remote_code=True)
    adapter = tmp_path / "adapter"
    get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(
        str(adapter)
    )
    loading.tokenizer(remote_model, trust_remote_code=True).save_pretrained(str(adapter))
    with pytest.raises(loading.RemoteCodeRefused):
        saving.merge_adapter(adapter, tmp_path / "refused")
    saving.merge_adapter(adapter, tmp_path / "merged", trust_remote_code=True)
    merged = loading.causal_lm(tmp_path / "merged", trust_remote_code=True)
    assert type(merged).__name__ == "TinyMptForCausalLM"


def test_generation_refuses_without_the_flag_and_samples_with_it(remote_model):
    from training import generate

    with pytest.raises(generate.GenerationError, match="trust_remote_code"):
        generate.generate(str(remote_model), ["def add(a, b):\n"], n=1, max_new_tokens=4)
    texts = generate.generate(str(remote_model), ["def add(a, b):\n"], n=2, max_new_tokens=8, trust_remote_code=True)
    assert len(texts) == 1 and len(texts[0]) == 2


def test_the_evaluate_stage_accepts_the_flag(tmp_path, remote_model, snapshot_dir, capsys):
    """It used to exit 2 on --trust_remote_code."""
    from training import evaluate

    result = evaluate.main(
        [
            "--config", str(REPO_ROOT / "training/recipes/tiny/evaluate.yaml"),
            "--snapshot", str(snapshot_dir),
            "--output_dir", str(tmp_path / "eval"),
            "--model_name_or_path", str(remote_model),
            "--max_prompts", "2", "--n_samples", "1", "--pass_k", "1", "--max_new_tokens", "8",
            "--trust_remote_code", "true",
        ]
    )  # fmt: skip
    assert result["pass@1"]["policy"] is not None


@pytest.mark.slow
def test_every_pipeline_stage_runs_the_remote_code_model_with_the_flag_and_none_without(
    tmp_path, remote_model, snapshot_dir
):
    refused = subprocess.run(
        pipeline_command(snapshot=snapshot_dir, output_dir=tmp_path / "refused", model=remote_model),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert refused.returncode != 0
    summary = json.loads((tmp_path / "refused" / "summary.json").read_text())
    assert summary["failed_stage"] == "sft"
    assert "trust_remote_code" in (tmp_path / "refused" / "sft" / "stage.log").read_text()

    done = subprocess.run(
        pipeline_command(
            snapshot=snapshot_dir,
            output_dir=tmp_path / "cycle",
            model=remote_model,
            extra=["--trust_remote_code", "true"],
        ),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((tmp_path / "cycle" / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == ["sft", "reward", "dpo", "online_rl", "evaluate"]
    for stage in ("sft", "reward", "dpo", "online_rl"):
        config = json.loads((tmp_path / "cycle" / stage / "config.json").read_text())
        assert config["model_type"] == "codepref_tiny_mpt", stage  # still the repository's own classes
