"""The prompt/completion boundary (training/boundary.py), for every architecture training/tiny.py builds.

HumanEval-style prompts end in a newline and completions start with indentation; joined, the two merge into one
token. Each stage must hand its trainer prompts that end on a token boundary (the tokenized prompt a prefix of the
tokenized prompt + completion, which TRL's trainers assume), and generation must still give completions of the
original prompt: prompt + completion is the program the model wrote.
"""

from __future__ import annotations

import logging

import pytest

from tests.training.conftest import TINY
from training import data

ARCHITECTURES = ["llama", "gpt_bigcode", "mpt"]


class _Built(Exception):
    """Raised by a capturing trainer once it is built: the test needs its data, not its training."""


def _capture(monkeypatch, name: str) -> dict:
    """Replace ``trl.<name>`` by a subclass that records the rows it is given and the built trainer, then stops."""
    import trl

    real = getattr(trl, name)
    seen: dict = {}

    class Capturing(real):
        def __init__(self, *args, **kwargs):
            seen["rows"] = kwargs["train_dataset"].to_list()
            super().__init__(*args, **kwargs)
            seen["trainer"] = self
            raise _Built

    monkeypatch.setattr(trl, name, Capturing)
    return seen


def _run_stage(module, stage: str, snapshot, out, model, *extra: str) -> list[str]:
    """Build the stage's trainer; returns TRL's warnings that the tokenized prompt is not a prefix."""
    from accelerate.logging import MultiProcessAdapter

    MultiProcessAdapter.warning_once.cache_clear()  # TRL warns once per process: this test must see its own
    argv = ["--config", str(TINY / f"{stage}.yaml"), "--snapshot", str(snapshot), "--output_dir", str(out)]
    trl_logger, collect = logging.getLogger("trl"), _Collect()
    trl_logger.addHandler(collect)
    try:
        with pytest.raises(_Built):
            module.main([*argv, "--model_name_or_path", str(model), "--disable_tqdm", "true", *extra])
    finally:
        trl_logger.removeHandler(collect)
    return [m for m in collect.messages if "not a prefix" in m]


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _tokenizer(model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model))


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text)["input_ids"]


def _assert_prompt_is_a_token_prefix(tokenizer, prompt: str, completion: str) -> None:
    prompt_ids, joined = _ids(tokenizer, prompt), _ids(tokenizer, prompt + completion)
    assert joined[: len(prompt_ids)] == prompt_ids, (
        f"tokenized prompt ends in {tokenizer.convert_ids_to_tokens(prompt_ids[-2:])}, prompt + completion has "
        f"{tokenizer.convert_ids_to_tokens(joined[len(prompt_ids) - 2 : len(prompt_ids) + 1])} there"
    )


# --- the text ------------------------------------------------------------------------------------


def test_the_prompts_trailing_whitespace_moves_to_the_front_of_each_completion():
    from training.boundary import at_token_boundary, split_prompt

    prompt = 'def f(x):\n    """Doc."""\n'
    assert split_prompt(prompt) == ('def f(x):\n    """Doc."""', "\n")
    assert at_token_boundary(prompt, "    return x\n", "    pass\n") == (
        'def f(x):\n    """Doc."""',
        "\n    return x\n",
        "\n    pass\n",
    )
    assert at_token_boundary("x = 1", "\ny = 2") == ("x = 1", "\ny = 2")  # already on a boundary
    assert at_token_boundary("def f():\n  \n", "    pass") == ("def f():", "\n  \n    pass")


@pytest.mark.parametrize(
    "tail,written,completion",
    [
        ("\n", "\n    return x\n", "    return x\n"),  # the model wrote the tail first: the rest is the completion
        ("\n", "", ""),  # end-of-text at once
        ("\n    ", "\n  ", ""),  # stopped inside the tail
        ("", "\n    return x", "\n    return x"),
        ("\n", " x", " x"),  # a backend that cannot be steered: the nearest program the prompt can express
    ],
)
def test_what_the_model_wrote_maps_back_to_a_completion_of_the_whole_prompt(tail, written, completion):
    from training.boundary import completion_of

    assert completion_of(tail, written) == completion


# --- what each stage feeds its trainer -------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_sft_trains_on_prompts_that_end_on_a_token_boundary(
    tmp_path, monkeypatch, make_tiny_model, snapshot_dir, arch
):
    from training import sft

    model = make_tiny_model(arch, hidden=32, layers=1, heads=2)
    tokenizer = _tokenizer(model)
    seen = _capture(monkeypatch, "SFTTrainer")
    assert _run_stage(sft, "sft", snapshot_dir, tmp_path / "sft", model) == []  # TRL's warning is gone

    prompts = data.prompt_rows(data.open_snapshot(snapshot_dir), "train")
    programs = {r["prompt"] + r["reference_solution"] for r in prompts}
    assert seen["rows"] and {r["prompt"] + r["completion"] for r in seen["rows"]} == programs  # the same programs
    for row in seen["rows"]:
        _assert_prompt_is_a_token_prefix(tokenizer, row["prompt"], row["completion"])
    # What TRL made of them: the loss starts right after the whole tokenized prompt (where prompt and completion
    # merge, TRL leaves the prompt's last token out of the sequence, with a warning).
    for row, example in zip(seen["rows"], seen["trainer"].train_dataset, strict=True):
        prompt_ids = _ids(tokenizer, row["prompt"])
        assert [label == -100 for label in example["labels"]].index(False) == len(prompt_ids)
        assert example["input_ids"][: len(prompt_ids)] == prompt_ids


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_dpo_trains_on_prompts_that_end_on_a_token_boundary(
    tmp_path, monkeypatch, make_tiny_model, snapshot_dir, arch
):
    from training import dpo

    model = make_tiny_model(arch, hidden=32, layers=1, heads=2)
    tokenizer = _tokenizer(model)
    seen = _capture(monkeypatch, "DPOTrainer")
    assert _run_stage(dpo, "dpo", snapshot_dir, tmp_path / "dpo", model) == []  # TRL's warning is gone

    original = data.read_jsonl(data.open_snapshot(snapshot_dir).file("preference", "train"))
    assert len(seen["rows"]) == len(original)
    for row, before in zip(seen["rows"], original, strict=True):
        for side in ("chosen", "rejected"):
            assert row["prompt"] + row[side] == before["prompt"] + before[side]
            _assert_prompt_is_a_token_prefix(tokenizer, row["prompt"], row[side])
    for row, example in zip(seen["rows"], seen["trainer"].train_dataset, strict=True):
        assert example["prompt_ids"] == _ids(tokenizer, row["prompt"])  # TRL kept the whole prompt


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_reward_model_trains_on_prompts_that_end_on_a_token_boundary(
    tmp_path, monkeypatch, make_tiny_model, snapshot_dir, arch
):
    from training import reward

    model = make_tiny_model(arch, hidden=32, layers=1, heads=2)
    tokenizer = _tokenizer(model)
    seen = _capture(monkeypatch, "RewardTrainer")
    _run_stage(reward, "reward", snapshot_dir, tmp_path / "reward", model)

    original = data.read_jsonl(data.open_snapshot(snapshot_dir).file("preference", "train"))
    assert len(seen["rows"]) == len(original)
    for row, before in zip(seen["rows"], original, strict=True):
        for side in ("chosen", "rejected"):
            assert row["prompt"] + row[side] == before["prompt"] + before[side]  # RewardTrainer scores the join
            _assert_prompt_is_a_token_prefix(tokenizer, row["prompt"], row[side])


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_online_rl_samples_after_prompts_that_end_on_a_token_boundary(
    tmp_path, monkeypatch, make_tiny_model, snapshot_dir, arch
):
    from training import online_rl

    model = make_tiny_model(arch, hidden=32, layers=1, heads=2)
    tokenizer = _tokenizer(model)
    seen = _capture(monkeypatch, "GRPOTrainer")
    _run_stage(online_rl, "online_rl", snapshot_dir, tmp_path / "grpo", model, "--reward_model_weight", "0")

    original = data.prompt_rows(data.open_snapshot(snapshot_dir), "train", with_tests_only=True)
    assert len(seen["rows"]) == len(original)
    for row, before in zip(seen["rows"], original, strict=True):
        assert before["prompt"].startswith(row["prompt"]) and not row["prompt"][-1:].isspace()
        rest = before["prompt"][len(row["prompt"]) :] + before["reference_solution"]  # what a good sample writes
        _assert_prompt_is_a_token_prefix(tokenizer, row["prompt"], rest)


# --- generation: the model is prompted on the boundary, the completion belongs to the whole prompt ------

PROMPT = 'def add(a, b):\n    """Return the sum of a and b."""\n'


def _own_copy(make_tiny_model, arch: str, tmp_path) -> str:
    """A model folder of this test's own, so that a hook on the loaded (cached) model reaches no other test."""
    import shutil

    return str(shutil.copytree(make_tiny_model(arch, hidden=32, layers=1, heads=2), tmp_path / "model"))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_model_writes_the_trimmed_newline_first_even_where_it_would_go_on_with_the_line(
    tmp_path, monkeypatch, make_tiny_model, arch
):
    from tests.training import scripted
    from training import boundary, generate

    path = _own_copy(make_tiny_model, arch, tmp_path)
    model, tokenizer = generate.load(path)
    written: list[tuple[str, str]] = []
    real = boundary.completion_of
    monkeypatch.setattr(boundary, "completion_of", lambda tail, text: written.append((tail, text)) or real(tail, text))
    handle = scripted.script_text(model, tokenizer, " return a + b\n")  # the docstring's line, continued
    try:
        completions = generate.generate_rows(path, [(PROMPT, 1), (PROMPT, 2)], max_new_tokens=12, stop=[])
    finally:
        handle.remove()
    assert [tail for tail, _ in written] == ["\n", "\n"]
    assert all(text.startswith("\n") for _, text in written)  # after the trimmed prompt: a new line first
    # and each returned completion of the whole prompt makes the program the model wrote
    assert sorted(PROMPT + c for c in completions) == sorted(PROMPT.rstrip() + text for _, text in written)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_evaluation_runs_what_the_model_wrote_as_a_completion_of_the_original_prompt(
    tmp_path, make_tiny_model, snapshot_dir, arch
):
    from tests.training import scripted
    from training import generate
    from training.configs import EvaluateArguments
    from training.evaluate import sample_and_test

    prompt = data.prompt_rows(data.open_snapshot(snapshot_dir), "test", with_tests_only=True)[0]
    assert prompt["prompt"].endswith('"""\n') and prompt["reference_solution"].startswith("    return")
    path = _own_copy(make_tiny_model, arch, tmp_path)
    model, tokenizer = generate.load(path)
    args = EvaluateArguments(
        snapshot=str(snapshot_dir), model_name_or_path=path, output_dir=str(tmp_path), n_samples=2, pass_k=[1]
    )
    # A model trained on the boundary writes newline + indentation as one token after the trimmed prompt.
    handle = scripted.script_text(model, tokenizer, "\n" + prompt["reference_solution"])
    try:
        (result,) = sample_and_test(path, [prompt], args)
    finally:
        handle.remove()
    assert result["sample"] == prompt["reference_solution"]  # a completion of the prompt as stored
    assert result["outcomes"] == ["passed", "passed"]  # run as the original prompt + completion
    assert result["verdict_strength"] == "strong"  # judged outside the sandbox


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_online_rl_samples_write_the_trimmed_newline_first(make_tiny_model, arch):
    import torch
    from transformers import AutoModelForCausalLM

    from tests.training import scripted
    from training import online_rl

    path = make_tiny_model(arch, hidden=32, layers=1, heads=2)
    tokenizer = _tokenizer(path)
    head = PROMPT.rstrip()
    inputs = tokenizer([head, head], return_tensors="pt")

    def sample(tails):
        model = AutoModelForCausalLM.from_pretrained(str(path))
        scripted.script_text(model, tokenizer, " return a + b\n")  # the docstring's line, continued
        online_rl.add_stop_rule(model, tokenizer, ["\ndef "], tails)
        torch.manual_seed(0)
        out = model.generate(**inputs, max_new_tokens=6, do_sample=True, pad_token_id=tokenizer.eos_token_id)
        return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    assert all(text.startswith(" return") for text in sample(None))  # left alone, it goes on with the line
    assert all(text.startswith("\n") for text in sample({head: "\n"}))  # as the trainers call it, a new line


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_generation_still_stops_at_the_next_top_level_statement(tmp_path, make_tiny_model, arch):
    from tests.training import scripted
    from training import generate

    path = _own_copy(make_tiny_model, arch, tmp_path)
    model, tokenizer = generate.load(path)
    calls = []
    counter = model.register_forward_hook(lambda *args: calls.append(1))
    handle = scripted.script_text(model, tokenizer, "\n    return a + b\n\n\ndef other():\n    pass\n" * 8, eos=False)
    try:
        (completion,) = generate.generate_rows(path, [(PROMPT, 3)], max_new_tokens=64)  # the default stops
    finally:
        handle.remove()
        counter.remove()
    assert completion == "    return a + b\n\n"
    assert len(calls) < 20  # it stopped there, not at max_new_tokens
