"""Tiny models of each seed architecture build offline, save, reload and generate."""

import pytest

from training import tiny


@pytest.fixture(scope="module")
def tokenizer():
    return tiny.make_tokenizer(vocab_size=400, max_bytes=300_000)


def test_the_tokenizer_round_trips_python_source(tokenizer):
    source = "def add(a, b):\n    return a + b\n"
    ids = tokenizer(source)["input_ids"]
    assert tokenizer.decode(ids) == source
    assert len(ids) < len(source)  # BPE merged something
    assert tokenizer.eos_token == tiny.EOS and tokenizer.pad_token_id != tokenizer.eos_token_id


@pytest.mark.parametrize(
    "arch,model_class",
    [("llama", "LlamaForCausalLM"), ("gpt_bigcode", "GPTBigCodeForCausalLM"), ("mpt", "MptForCausalLM")],
)
def test_each_seed_architecture_builds_saves_reloads_and_generates(tmp_path, tokenizer, arch, model_class):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny.make_model(tmp_path / arch, arch=arch, tokenizer=tokenizer, hidden=32, layers=1, heads=2)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert type(model).__name__ == model_class
    reloaded = AutoTokenizer.from_pretrained(path)
    inputs = reloaded(["def f(x):\n"], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_the_same_seed_gives_the_same_weights(tmp_path, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    first = tiny.make_model(tmp_path / "a", tokenizer=tokenizer, seed=3, hidden=32, layers=1, heads=2)
    second = tiny.make_model(tmp_path / "b", tokenizer=tokenizer, seed=3, hidden=32, layers=1, heads=2)
    a = AutoModelForCausalLM.from_pretrained(first).state_dict()
    b = AutoModelForCausalLM.from_pretrained(second).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
