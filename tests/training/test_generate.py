"""Sampling completions: stop rules for code, batched local generation that is reproducible per row, the
hub path, and the OpenAI-compatible client against a small server speaking the same protocol."""

from __future__ import annotations

import pytest

from tests.training.fake_openai import FakeServer, completion_choices
from training import generate, tiny
from training.openai_client import OPENAI_MAX_STOP, OpenAIClient


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Sampling runs on one thread here (the fixture lives in tests/conftest.py)."""


# --- stop rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("    return a + b\n\ndef other():\n    pass\n", "    return a + b\n"),
        ("    return a + b\n\n\nclass C:\n", "    return a + b\n\n"),
        (
            "    x = 1\n    # keep indented comments\n    return x\n# top-level comment",
            "    x = 1\n    # keep indented comments\n    return x",
        ),
        ("    return 1\nif __name__ == '__main__':\n    main()", "    return 1"),
        ("    return 1\nprint(f(2))", "    return 1"),
        ("    return 1\n@decorator\ndef g(): pass", "    return 1"),
        ("    return 1\n", "    return 1\n"),
    ],
)
def test_completions_are_cut_at_a_new_top_level_statement(text, expected):
    assert generate.truncate_at_stop(text, generate.DEFAULT_STOP) == expected


def test_a_completion_that_opens_with_a_definition_keeps_it():
    text = "\ndef add(a, b):\n    return a + b\n\ndef sub(a, b):\n"
    assert generate.truncate_at_stop(text, generate.DEFAULT_STOP) == "\ndef add(a, b):\n    return a + b\n"


def test_the_earliest_stop_sequence_wins_and_no_stops_keeps_everything():
    text = "    a = 1\n#x\nclass A: pass\n"
    assert generate.truncate_at_stop(text, ["\nclass ", "\n#"]) == "    a = 1"
    assert generate.truncate_at_stop(text, []) == text


# --- local models ---------------------------------------------------------------------------------


def test_generation_returns_n_texts_per_prompt_and_repeats_with_the_same_seed(tiny_model):
    prompts = ["def add(a, b):\n", "class Stack:\n    def push(self, item):\n"]
    first = generate.generate(tiny_model, prompts, n=2, max_new_tokens=10, stop=[], seed=3, batch_size=3)
    again = generate.generate(tiny_model, prompts, n=2, max_new_tokens=10, stop=[], seed=3, batch_size=3)
    other = generate.generate(tiny_model, prompts, n=2, max_new_tokens=10, stop=[], seed=4, batch_size=3)
    assert [len(texts) for texts in first] == [2, 2]
    assert first == again
    assert first != other
    assert all(tiny.EOS not in t for texts in first for t in texts)


def test_a_rows_text_does_not_depend_on_its_batch(tiny_model):
    row = ("def fib(n):\n", 12345)
    alone = generate.generate_rows(tiny_model, [row], max_new_tokens=12, stop=[], batch_size=1)
    crowded = generate.generate_rows(
        tiny_model,
        [("import os\nimport sys\n\n\ndef main(argv):\n", 1), row, ("x = 1\n", 2)],
        max_new_tokens=12,
        stop=[],
        batch_size=3,
    )
    assert crowded[1] == alone[0]


def test_greedy_generation_gives_the_same_text_for_every_sample(tiny_model):
    texts = generate.generate(tiny_model, ["def f(x):\n"], n=3, temperature=0, max_new_tokens=8, stop=[])[0]
    assert len(set(texts)) == 1


def test_stop_sequences_end_the_text(tiny_model):
    texts = generate.generate(tiny_model, ["def f(x):\n"], n=4, max_new_tokens=24, stop=[" "], seed=5)[0]
    # Cut at the first space after the text's first character: no space is left past leading blanks.
    assert all(" " not in t.lstrip() for t in texts)


def test_eos_ends_only_its_own_row(tiny_model, tmp_path):
    import shutil

    copy = shutil.copytree(tiny_model, tmp_path / "model")  # a model of its own: the hook stays off the cache
    model, tokenizer = generate.load(str(copy))
    eos = tokenizer.eos_token_id

    def first_row_says_eos(module, args, output):
        output.logits[0, -1, :] = -1e4
        output.logits[0, -1, eos] = 1e4
        return output

    handle = model.register_forward_hook(first_row_says_eos)
    try:
        # Rows are ordered longest prompt first within a batch: the first row is the longer prompt.
        texts = generate.generate_rows(
            str(copy), [("x = 1\n", 1), ("def long_function_name(a, b):\n", 2)], max_new_tokens=8, stop=[]
        )
    finally:
        handle.remove()
    assert texts[1] == ""  # EOS at once, and not decoded as text
    assert texts[0] != "" and tiny.EOS not in texts[0]


def test_a_loaded_model_is_cached_per_process(tiny_model):
    first = generate.load(tiny_model)
    assert generate.load(tiny_model) is first


def test_a_hub_id_is_loaded_with_from_pretrained(monkeypatch):
    import transformers

    asked = []

    def offline(name, **kwargs):
        asked.append(name)
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", offline)
    with pytest.raises(generate.GenerationError, match="cannot load this hub id"):
        generate.load("bigcode/starcoderbase-1b")
    assert asked == ["bigcode/starcoderbase-1b"]


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(generate.GenerationError, match="no such model folder"):
        generate.load(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(generate.GenerationError, match="without config.json"):
        generate.load(str(tmp_path / "empty"))


# --- OpenAI-compatible servers ------------------------------------------------------------------


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


def client_for(server, **options):
    return OpenAIClient(base_url=server.base_url, model="coder-7b", api_key="sk-test", backoff=0, **options)


def test_the_completions_api_gets_the_request_and_the_key(server):
    server.script = [(200, completion_choices("    return a + b\n\ndef other():\n", "    return b + a\n"))]
    texts = client_for(server).complete(
        "def add(a, b):\n", n=2, temperature=0.5, top_p=0.9, max_new_tokens=64, stop=None, seed=7
    )
    assert texts == ["    return a + b\n", "    return b + a\n"]  # the stop set applies here too
    (request,) = server.requests
    assert request["path"] == "/v1/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["json"]
    assert {k: body[k] for k in ("model", "prompt", "max_tokens", "temperature", "top_p", "n", "seed")} == {
        "model": "coder-7b",
        "prompt": "def add(a, b):\n",
        "max_tokens": 64,
        "temperature": 0.5,
        "top_p": 0.9,
        "n": 2,
        "seed": 7,
    }
    assert body["stop"] == generate.DEFAULT_STOP[:OPENAI_MAX_STOP]


def test_the_chat_api_is_used_when_asked(server):
    server.script = [(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "print(1)"}}]})]
    texts = client_for(server, endpoint="chat").complete("Write code.", n=1, stop=[])
    assert texts == ["print(1)"]
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["json"]["messages"] == [{"role": "user", "content": "Write code."}]
    assert "prompt" not in request["json"]


def test_a_503_is_retried_and_then_succeeds(server):
    server.script = [(503, {"error": {"message": "overloaded"}}), (200, completion_choices("    pass\n"))]
    assert client_for(server).complete("def f():\n", n=1) == ["    pass\n"]
    assert len(server.requests) == 2


def test_retries_stop_at_the_cap(server):
    server.script = [(429, {"error": {"message": "rate limited"}})]
    with pytest.raises(generate.GenerationError, match="HTTP 429 after 3 tries: rate limited"):
        client_for(server, max_retries=2).complete("def f():\n", n=1)
    assert len(server.requests) == 3


def test_a_400_is_a_clear_error_and_not_retried(server):
    server.script = [(400, {"error": {"message": "model 'coder-7b' not found", "type": "invalid_request_error"}})]
    with pytest.raises(generate.GenerationError, match=r"HTTP 400: model 'coder-7b' not found"):
        client_for(server).complete("def f():\n", n=1)
    assert len(server.requests) == 1


def test_a_server_that_ignores_n_is_asked_again_for_the_rest(server):
    server.script = [(200, completion_choices("    return 1\n"))]
    texts = client_for(server).complete("def f():\n", n=3, seed=1)
    assert len(texts) == 3 and len(server.requests) == 3
    assert [r["json"]["n"] for r in server.requests] == [3, 2, 1]


def test_an_unreachable_server_is_a_clear_error():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenAIClient(base_url=f"http://127.0.0.1:{port}/v1", model="m", backoff=0, max_retries=1)
    with pytest.raises(generate.GenerationError, match="no answer after 2 tries"):
        client.complete("x", n=1)
