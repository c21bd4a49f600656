"""The seed models' settings on the platform (issue 14): a model version that runs its repository's code only
when told to, per-language stop sequences and a per-version prompt prefix in generation, and a served
(OpenAI-compatible) version whose weights a training cycle trains."""

from __future__ import annotations

import json

import pytest

from feedback.coders import generation, registry
from feedback.cycles.runs import run_dir_for
from feedback.cycles.services import training_cycle_execute
from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, TrainingRun
from tests import factories
from tests.feedback.test_training_cycle import (  # noqa: F401 (fixtures)
    cycle_settings,
    enqueued,
    make_snapshot,
    no_snapshot_build,
)
from tests.training.fake_openai import completion_choices
from training.languages import STOP_SEQUENCES
from training.openai_client import OPENAI_MAX_STOP

pytestmark = pytest.mark.django_db


def _generate(version, prompts, n=1, **params):
    return generation.completions_generate(
        prompt_ids=[p.pk for p in prompts], model_version_id=version.pk, n=n, params={"max_new_tokens": 16, **params}
    )


# --- generation -------------------------------------------------------------------------------------


def test_each_prompt_stops_at_its_own_languages_sequences_and_the_list_is_stored(server):
    served = registry.model_version_register(name="served", backend="openai", target="coder", base_url=server.base_url)
    python = factories.PromptFactory(language="python")
    js = factories.PromptFactory(language="javascript", text="function add(a, b) {\n", tests="", test_style="none")
    server.script = [(200, completion_choices("  return a + b;\n"))]
    _generate(served, [python, js])
    sent = {r["json"]["prompt"]: r["json"]["stop"] for r in server.requests}
    assert sent[js.text] == list(STOP_SEQUENCES["javascript"])
    assert sent[python.text] == list(STOP_SEQUENCES["python"])[:OPENAI_MAX_STOP]  # the API takes 4
    stored = Completion.objects.get(prompt=js)
    assert stored.params["stop"] == list(STOP_SEQUENCES["javascript"])


def test_a_versions_own_stops_and_prefix_go_with_every_prompt_and_the_completion_belongs_to_the_prompt(server):
    prefix = "<filename>solutions/solution_1.py\n# Here is the correct implementation of the code exercise\n"
    served = registry.model_version_register(name="served", backend="openai", target="coder", base_url=server.base_url)
    ModelVersion.objects.filter(pk=served.pk).update(prompt_prefix=prefix, stop_sequences=["\nEND"])
    served.refresh_from_db()
    prompt = factories.PromptFactory()
    server.script = [(200, completion_choices("    return x + 1\n"))]
    (completion,) = _generate(served, [prompt])
    (request,) = server.requests
    assert request["json"]["prompt"] == prefix + prompt.text
    assert request["json"]["stop"] == ["\nEND"]
    assert completion.text == "    return x + 1\n"  # the program tested is prompt + completion, no prefix


def test_a_request_stop_list_still_wins_over_the_language_default(server):
    served = registry.model_version_register(name="served", backend="openai", target="coder", base_url=server.base_url)
    server.script = [(200, completion_choices("x"))]
    _generate(served, [factories.PromptFactory()], stop=["\n\n"])
    assert server.requests[0]["json"]["stop"] == ["\n\n"]


@pytest.fixture(scope="module")
def remote_model(tmp_path_factory):
    from training import lookalike, tiny

    tokenizer = tiny.make_tokenizer(vocab_size=512, max_bytes=200_000)
    return lookalike.remote_code_model(tmp_path_factory.mktemp("remote") / "model", tokenizer=tokenizer)


def test_a_version_runs_its_repositorys_code_only_with_trust_remote_code_set(remote_model, one_torch_thread):
    version = registry.model_version_register(name="replit-like", backend="transformers", target=str(remote_model))
    prompt = factories.PromptFactory()
    with pytest.raises(ServiceError, match="trust_remote_code"):
        _generate(version, [prompt], stop=[])
    assert Completion.objects.count() == 0
    ModelVersion.objects.filter(pk=version.pk).update(trust_remote_code=True)
    version.refresh_from_db()
    completions = _generate(version, [prompt], n=4, stop=[])  # a random model: some samples may be blank
    assert completions and all(c.model_version_id == version.pk and c.text.strip() for c in completions)


def test_the_admin_names_a_version_that_runs_remote_code_loudly(admin_client):
    ModelVersion.objects.create(name="replit-like", backend="transformers", target="x", trust_remote_code=True)
    page = admin_client.get("/admin/feedback/modelversion/").content.decode()
    assert "RUNS THE MODEL" in page


# --- cycles ---------------------------------------------------------------------------------------


def _arguments(run: TrainingRun) -> dict:
    return json.loads((run_dir_for(run) / "arguments.json").read_text())


@pytest.mark.usefixtures("cycle_settings", "no_snapshot_build", "enqueued")
def test_a_cycle_trains_the_weights_a_served_version_names_and_the_child_replaces_it(server, tmp_path):
    weights = tmp_path / "served-weights"
    weights.mkdir()
    served = registry.model_version_register(
        name="served", backend="openai", target="coder", base_url=server.base_url, activate=True
    )
    ModelVersion.objects.filter(pk=served.pk).update(
        weights=str(weights), trust_remote_code=True, prompt_prefix="# solution\n"
    )
    make_snapshot(1, rows=20, last_vote_id=40)
    run = training_cycle_execute(force=True)
    assert run.state == TrainingRun.State.SUCCEEDED, run.message
    args = _arguments(run)
    assert args["model_name_or_path"] == str(weights)
    assert args["trust_remote_code"] == "true" and args["prompt_prefix"] == "# solution\n"
    child = run.model_version
    assert child.parent_id == served.pk and child.backend == ModelVersion.Backend.TRANSFORMERS
    assert child.trust_remote_code and child.prompt_prefix == "# solution\n"
    assert child.metrics["serve"]["weights"] == child.target
    served.refresh_from_db()
    assert child.is_active and not served.is_active  # the fake pipeline's policy wins clearly


@pytest.mark.usefixtures("cycle_settings", "no_snapshot_build", "enqueued")
def test_a_served_version_without_weights_fails_the_cycle_saying_why(
    server,
):
    registry.model_version_register(
        name="served", backend="openai", target="coder", base_url=server.base_url, activate=True
    )
    make_snapshot(1, rows=20, last_vote_id=40)
    run = training_cycle_execute(force=True)
    assert run.state == TrainingRun.State.FAILED
    assert "served by an OpenAI-compatible endpoint and names no weights" in run.message
    assert ModelVersion.objects.filter(backend="transformers").count() == 0


# --- registering ------------------------------------------------------------------------------------


def test_register_model_records_a_served_version_with_its_settings():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(
        "register_model", "replit-served", "--backend", "openai", "--target", "replit", "--base-url",
        "http://vllm:8000/v1", "--weights", "replit/replit-code-v1-3b", "--trust-remote-code",
        "--prompt-prefix", "# solution\\n", "--stop", "\\ndef ", "--fim-template", "starcoder", "--activate",
        stdout=out,
    )  # fmt: skip
    version = ModelVersion.objects.get(name="replit-served")
    assert (version.backend, version.base_url, version.weights) == (
        "openai",
        "http://vllm:8000/v1",
        "replit/replit-code-v1-3b",
    )
    assert version.trust_remote_code and version.is_active
    assert version.prompt_prefix == "# solution\n" and version.stop_sequences == ["\ndef "]
    assert version.fim_template == "starcoder"
    assert "RUNS ITS REPOSITORY'S CODE" in out.getvalue()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--fim-template", "<fim>{prefix}"], "must hold {prefix} and {suffix} once each"),
        (["--stop", "x" * 40], "1 to 32 characters"),
        (["--base-url", "ftp://x"], "base_url must start with http"),
    ],
)
def test_register_model_refuses_bad_settings_naming_them(flags, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("register_model", "bad", "--backend", "openai", "--target", "m", *flags)
    assert not ModelVersion.objects.filter(name="bad").exists()
