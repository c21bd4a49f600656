"""Generation on the Django side: stored idempotently, paired by the policy, tests queued after commit;
the registry, the Celery task, the command and the admin actions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from feedback.coders import generation, pairing, registry, tasks
from feedback.errors import Conflict, ServiceError
from feedback.models import Completion, ModelVersion, Pair
from tests import factories
from tests.fake_tasks import RecordingTask
from tests.training.fake_openai import completion_choices
from training import bootstrap

pytestmark = pytest.mark.django_db

FAST = {"max_new_tokens": 6, "stop": []}  # short, and no stops: every sample is text, and distinct


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Sampling runs on one thread here (the fixture lives in tests/conftest.py)."""


@pytest.fixture
def tiny(tiny_model):
    return registry.model_version_register(name="tiny", backend="transformers", target=tiny_model, activate=True)


@pytest.fixture
def prompts():
    return factories.PromptFactory.create_batch(2)


def run(version, prompts, n=2, **params):
    return generation.completions_generate(
        prompt_ids=[p.pk for p in prompts], model_version_id=version.pk, n=n, params={**FAST, **params}
    )


# --- storing ---------------------------------------------------------------------------------------


def test_generation_stores_n_completions_per_prompt_with_their_parameters(tiny, prompts):
    completions = run(tiny, prompts, n=3, temperature=0.7, seed=1)
    assert len(completions) == 6 == Completion.objects.count()
    assert {c.prompt_id for c in completions} == {p.pk for p in prompts}
    first = completions[0]
    assert first.model_version == tiny and first.outcome == Completion.Outcome.NOT_RUN
    assert first.params == {
        "temperature": 0.7,
        "top_p": 0.95,
        "max_new_tokens": 6,
        "stop": [],
        "seed": 1,
        "endpoint": "completions",
        "sample": 0,
    }
    assert len({c.request_key for c in completions}) == 6 and all(len(c.request_key) == 64 for c in completions)


def test_running_the_same_request_twice_adds_no_completions_and_no_pairs(tiny, prompts, monkeypatch):
    first = run(tiny, prompts, n=3)
    counts = Completion.objects.count(), Pair.objects.count()
    assert counts[1] > 0

    def no_model(*args, **kwargs):
        raise AssertionError("the model was asked again")

    monkeypatch.setattr(generation, "generate_rows", no_model)
    again = run(tiny, prompts, n=3)
    assert [c.pk for c in again] == [c.pk for c in first]
    assert (Completion.objects.count(), Pair.objects.count()) == counts


def test_a_sample_dropped_as_a_duplicate_is_reproduced_not_replaced_on_a_rerun(tiny, prompts):
    texts = sorted(c.text for c in run(tiny, prompts[:1], n=3))
    # The same texts, stored by some earlier route without this request's keys: every sample of the
    # request now duplicates one and is dropped, and a re-run samples exactly the same texts again.
    Completion.objects.all().delete()
    for text in texts:
        factories.CompletionFactory(prompt=prompts[0], model_version=tiny, text=text)
    for _ in range(2):
        assert run(tiny, prompts[:1], n=3) == []
        assert sorted(Completion.objects.values_list("text", flat=True)) == texts


def test_the_batch_size_changes_how_not_what_is_generated(tiny, prompts):
    texts = sorted(c.text for c in run(tiny, prompts, n=3, batch_size=1))
    Completion.objects.all().delete()
    assert sorted(c.text for c in run(tiny, prompts, n=3, batch_size=6)) == texts


def test_other_parameters_or_a_larger_n_are_a_new_request(tiny, prompts):
    run(tiny, prompts[:1], n=2)
    run(tiny, prompts[:1], n=4)  # samples 2 and 3 are new
    assert Completion.objects.count() == 4
    run(tiny, prompts[:1], n=2, seed=9)
    assert Completion.objects.count() == 6


@pytest.mark.parametrize(
    "n,params,message",
    [
        (2, {"temperature": 2.5}, "temperature must be from 0 to 2"),
        (2, {"temperature": True}, "temperature must be a number"),
        (2, {"top_p": -0.1}, "top_p must be from 0 to 1"),
        (2, {"max_new_tokens": 0}, "max_new_tokens must be from 1 to 2048"),
        (2, {"max_new_tokens": 4096}, "max_new_tokens must be from 1 to 2048"),
        (2, {"max_new_tokens": 1.5}, "max_new_tokens must be an integer"),
        (0, {}, "n must be an integer from 1 to 16"),
        (17, {}, "n must be an integer from 1 to 16"),
        (2, {"beam_width": 4}, "unknown generation parameter"),
        (2, {"stop": [""]}, "stop must be a list"),
        (2, {"endpoint": "embeddings"}, "endpoint must be one of"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_generated(tiny, prompts, n, params, message):
    with pytest.raises(ServiceError, match=message):
        generation.completions_generate(prompt_ids=[prompts[0].pk], model_version_id=tiny.pk, n=n, params=params)
    assert Completion.objects.count() == 0


def test_an_imported_version_refuses_to_generate(prompts):
    imported = factories.ModelVersionFactory()
    with pytest.raises(ServiceError, match="imported completions; it cannot generate"):
        run(imported, prompts)


def test_unknown_prompts_and_versions_are_named(tiny, prompts):
    with pytest.raises(ServiceError, match="prompt.s. 999999 do not exist"):
        generation.completions_generate(prompt_ids=[999999], model_version_id=tiny.pk, n=1, params=FAST)
    with pytest.raises(ServiceError, match="model version 999999 does not exist"):
        generation.completions_generate(prompt_ids=[prompts[0].pk], model_version_id=999999, n=1, params=FAST)


def test_a_model_folder_that_is_gone_is_a_service_error(prompts, tmp_path):
    gone = registry.model_version_register(name="gone", backend="transformers", target=str(tmp_path / "gone"))
    with pytest.raises(ServiceError, match="no such model folder"):
        run(gone, prompts)


# --- the prompt/completion boundary ------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["llama", "gpt_bigcode", "mpt"])
def test_a_stored_completion_passes_the_sandbox_with_the_original_prompt(tiny_model, tmp_path, arch):
    """The model is prompted up to the prompt's last non-blank character (training/boundary.py) and writes the
    newline and the indentation as one token, as it learnt in training; what is stored is a completion of the
    prompt as imported, which the sandbox runs as prompt + completion."""
    from transformers import AutoTokenizer

    from feedback.coders.verdicts import completions_run_tests
    from tests.training import scripted
    from training import generate
    from training import tiny as tiny_models

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    path = tiny_models.make_model(tmp_path / arch, arch=arch, tokenizer=tokenizer, hidden=32, layers=1, heads=2)
    version = registry.model_version_register(name=f"tiny-{arch}", backend="transformers", target=str(path))
    prompt = factories.PromptFactory(
        text='def add(a, b):\n    """Return the sum of a and b."""\n',
        tests="def check(candidate):\n    assert candidate(2, 3) == 5\n",
        entry_point="add",
    )
    model, tokenizer = generate.load(str(path))
    handle = scripted.script_text(model, tokenizer, "\n    return a + b\n")
    try:
        (completion,) = run(version, [prompt], n=1, max_new_tokens=24)
    finally:
        handle.remove()
    assert completion.text == "    return a + b\n"
    completions_run_tests(completion_ids=[completion.pk])
    completion.refresh_from_db()
    assert completion.outcome == Completion.Outcome.PASSED


# --- tests queued after commit --------------------------------------------------------------------


def test_the_tests_of_new_completions_are_sent_to_the_test_task_after_commit(
    tiny, prompts, monkeypatch, django_capture_on_commit_callbacks
):
    recorder = RecordingTask().install(monkeypatch)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        completions = run(tiny, prompts, n=2)
    assert recorder.sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert set(recorder.names) == {"feedback.tasks.run_tests"}
    assert sorted(pk for kwargs in recorder.sent for pk in kwargs["completion_ids"]) == sorted(
        c.pk for c in completions
    )


def test_a_broker_failure_leaves_the_completions_stored_and_is_logged(
    tiny, prompts, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    RecordingTask(fail=True).install(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        completions = run(tiny, prompts, n=2)
    assert completions and Completion.objects.count() == len(completions)
    assert "not queued" in caplog.text


# --- pairing --------------------------------------------------------------------------------------


def _pairs_by_versions():
    return [
        (p.completion_a.model_version.name, p.completion_b.model_version.name)
        for p in Pair.objects.select_related("completion_a__model_version", "completion_b__model_version")
    ]


def test_the_self_policy_pairs_samples_of_the_same_model(tiny, prompts, settings):
    settings.CODEPREF = {**settings.CODEPREF, "PAIRING_POLICY": "self", "MAX_PAIRS_PER_PROMPT": 6}
    run(tiny, prompts[:1], n=4)
    assert Pair.objects.count() == 6  # all 4 choose 2
    assert set(_pairs_by_versions()) == {("tiny", "tiny")}


def test_pairs_per_prompt_stop_at_the_cap(tiny, prompts, settings):
    settings.CODEPREF = {**settings.CODEPREF, "PAIRING_POLICY": "self", "MAX_PAIRS_PER_PROMPT": 2}
    run(tiny, prompts, n=4)
    assert [Pair.objects.filter(prompt=p).count() for p in prompts] == [2, 2]


def test_completions_equal_after_whitespace_are_not_paired(tiny, prompts, settings):
    settings.CODEPREF = {**settings.CODEPREF, "PAIRING_POLICY": "self"}
    prompt = prompts[0]
    factories.CompletionFactory(prompt=prompt, model_version=tiny, text="    return x + 1\n")
    factories.CompletionFactory(prompt=prompt, model_version=tiny, text="    return  x +\t1")
    assert pairing.pairs_form_for_model(prompt=prompt, model_version=tiny) == []
    factories.CompletionFactory(prompt=prompt, model_version=tiny, text="    return x - 1\n")
    assert len(pairing.pairs_form_for_model(prompt=prompt, model_version=tiny)) == 2


def test_the_arena_policy_pairs_a_model_only_against_its_parent_and_active_versions(tiny_model, prompts, settings):
    settings.CODEPREF = {**settings.CODEPREF, "PAIRING_POLICY": "arena", "MAX_PAIRS_PER_PROMPT": 20}
    prompt = prompts[0]
    parent = factories.ModelVersionFactory(name="parent", backend="transformers", target=tiny_model)
    rival = factories.ModelVersionFactory(name="rival", backend="transformers", target=tiny_model, is_active=True)
    idle = factories.ModelVersionFactory(name="idle", backend="transformers", target=tiny_model)
    for version, text in [(parent, "    return 1\n"), (rival, "    return 2\n"), (idle, "    return 3\n")]:
        factories.CompletionFactory(prompt=prompt, model_version=version, text=text)
    child = registry.model_version_register(
        name="child", backend="transformers", target=tiny_model, parent=parent, activate=True
    )

    run(child, [prompt], n=2)
    pairs = sorted(tuple(sorted(names)) for names in _pairs_by_versions())
    assert pairs == [("child", "parent"), ("child", "parent"), ("child", "rival"), ("child", "rival")]


def test_an_unknown_pairing_policy_fails_before_sampling(tiny, prompts, settings, monkeypatch):
    settings.CODEPREF = {**settings.CODEPREF, "PAIRING_POLICY": "tournament"}
    monkeypatch.setattr(generation, "generate_rows", lambda *a, **k: pytest.fail("sampled anyway"))
    with pytest.raises(ServiceError, match="PAIRING_POLICY must be one of self, arena; got 'tournament'"):
        run(tiny, prompts)


def test_the_arena_policy_forms_nothing_without_a_rival(tiny, prompts, settings):
    settings.CODEPREF = {**settings.CODEPREF, "PAIRING_POLICY": "arena"}
    assert len(run(tiny, prompts[:1], n=3)) == 3
    assert Pair.objects.count() == 0


# --- the openai backend ---------------------------------------------------------------------------


def test_an_openai_endpoint_generates_with_the_key_from_the_environment(server, prompts, monkeypatch):
    monkeypatch.setenv("CODEPREF_OPENAI_API_KEY", "sk-from-env")
    served = registry.model_version_register(
        name="served", backend="openai", target="coder-7b", base_url=server.base_url
    )
    server.script = [(200, completion_choices("    return x + 1\n\ndef more():\n"))]
    completions = run(served, prompts[:1], n=1, max_new_tokens=32, stop=None)  # None: the default code stops
    assert [c.text for c in completions] == ["    return x + 1\n"]
    (request,) = server.requests
    assert request["headers"]["Authorization"] == "Bearer sk-from-env"
    assert request["json"]["model"] == "coder-7b" and request["json"]["max_tokens"] == 32
    assert request["json"]["prompt"] == prompts[0].text


def test_a_400_from_the_server_is_a_clear_service_error(server, prompts):
    served = registry.model_version_register(
        name="served", backend="openai", target="coder-7b", base_url=server.base_url
    )
    server.script = [(400, {"error": {"message": "This model's maximum context length is 2048 tokens"}})]
    with pytest.raises(ServiceError, match="'served'.*HTTP 400: This model's maximum context length is 2048"):
        run(served, prompts[:1], n=1)
    assert Completion.objects.count() == 0


# --- registry, task, command, admin ---------------------------------------------------------------


def test_registering_the_same_version_twice_returns_it_and_a_different_one_conflicts(tiny_model):
    first = registry.model_version_register(name="m", backend="transformers", target=tiny_model)
    again = registry.model_version_register(name="m", backend="transformers", target=tiny_model, activate=True)
    assert again.pk == first.pk and again.is_active
    with pytest.raises(Conflict, match="already exists"):
        registry.model_version_register(name="m", backend="transformers", target="bigcode/starcoderbase-1b")
    with pytest.raises(ServiceError, match="needs a target"):
        registry.model_version_register(name="n", backend="openai", target="")


def test_the_bootstrap_model_is_registered_as_an_active_version(tiny_model):
    version = registry.model_version_bootstrap(out=tiny_model, preset="test", threads=1)
    assert (version.name, version.backend, version.target, version.is_active) == (
        "bootstrap-test-seed0",
        "transformers",
        tiny_model,
        True,
    )
    assert version.metrics["bootstrap"]["steps"] == bootstrap.PRESETS["test"].max_steps
    assert registry.model_version_bootstrap(out=tiny_model, preset="test", threads=1).pk == version.pk


def test_the_celery_task_generates_through_the_service(tiny, prompts):
    result = tasks.generate_completions.delay([p.pk for p in prompts], tiny.pk, 2, FAST)
    assert result.get() == {"model_version": tiny.pk, "prompts": 2, "completions": 4}
    assert Completion.objects.filter(model_version=tiny).count() == 4


def test_the_generate_command_reports_progress_and_counts(tiny, prompts, capsys):
    call_command("generate", "--model", "tiny", "--prompts", "all", "--n", "2", "--max-new-tokens", "6", "--no-stop")
    out = capsys.readouterr().out
    assert "tiny: 4/4 samples (100%" in out
    assert "4 completion(s) for this request, 4 new, 2 new pair(s)" in out
    call_command(
        "generate",
        "--model",
        "tiny",
        "--prompts",
        f"{prompts[0].pk}",
        "--n",
        "2",
        "--max-new-tokens",
        "6",
        "--no-stop",
    )
    assert "every sample of this request is already stored" in capsys.readouterr().out
    assert Completion.objects.count() == 4


def test_the_generate_command_registers_a_new_version_first(tiny_model, prompts, capsys):
    args = ["--model", "fresh", "--backend", "transformers", "--target", tiny_model, "--n", "1", "--no-stop"]
    call_command("generate", *args, "--max-new-tokens", "4")
    version = ModelVersion.objects.get(name="fresh")
    assert (version.backend, version.target) == ("transformers", tiny_model)
    assert Completion.objects.filter(model_version=version).count() == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "nope"], "no model version named 'nope'"),
        (["--model", "tiny", "--prompts", "1,x"], "'x' is not an id"),
        (["--model", "tiny", "--temperature", "3"], "temperature must be from 0 to 2"),
        (["--model", "new", "--backend", "openai"], "--backend and --target go together"),
        (["--model", "tiny", "--backend", "openai", "--target", "coder"], "already exists"),
    ],
)
def test_the_generate_command_names_what_is_wrong(tiny, prompts, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("generate", *args)


def test_the_admin_action_generates_four_completions_for_all_prompts(tiny, prompts, client):
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(admin)
    url = reverse("admin:feedback_modelversion_changelist")
    response = client.post(url, {"action": "generate_for_all_prompts", "_selected_action": [tiny.pk]}, follow=True)
    assert response.status_code == 200
    assert 0 < Completion.objects.filter(model_version=tiny).count() <= 8  # default stops: some may be empty
    assert "generation of 4 completions for 2 prompt(s) done" in response.content.decode()

    other = registry.model_version_register(name="other", backend="transformers", target=tiny.target)
    client.post(url, {"action": "make_active", "_selected_action": [other.pk]})
    assert ModelVersion.objects.get(pk=other.pk).is_active


def test_the_admin_actions_activate_through_the_registry_and_leave_imported_versions_inactive(tiny, client):
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(admin)
    url = reverse("admin:feedback_modelversion_changelist")
    imported = registry.model_version_register(name="canonical", backend="imported", target="")

    response = client.post(url, {"action": "make_active", "_selected_action": [tiny.pk, imported.pk]}, follow=True)
    assert "1 model version(s) active." in response.content.decode()
    assert "1 imported version(s) left inactive." in response.content.decode()
    assert not ModelVersion.objects.get(pk=imported.pk).is_active

    client.post(url, {"action": "make_inactive", "_selected_action": [tiny.pk]})
    assert not ModelVersion.objects.get(pk=tiny.pk).is_active


def test_the_default_model_setting_is_built_registered_or_taken_as_a_hub_id(tiny_model, settings, tmp_path):
    settings.CODEPREF = {**settings.CODEPREF, "MODEL": tiny_model}
    assert registry.model_version_default(preset="test").name == "bootstrap-test-seed0"

    (tmp_path / "own").mkdir()  # a model someone put there: used as it is, never overwritten
    (tmp_path / "own" / "config.json").write_text("{}")
    settings.CODEPREF = {**settings.CODEPREF, "MODEL": str(tmp_path / "own")}
    own = registry.model_version_default(preset="test")
    assert (own.backend, own.target, own.is_active) == ("transformers", str(tmp_path / "own"), True)
    assert not (tmp_path / "own" / "training_info.json").exists()

    settings.CODEPREF = {**settings.CODEPREF, "MODEL": "bigcode/starcoderbase-1b"}
    hub = registry.model_version_default(preset="test")
    assert (hub.name, hub.target) == ("default:bigcode/starcoderbase-1b", "bigcode/starcoderbase-1b")


def test_the_demo_hook_registers_the_local_model_and_samples_two_per_prompt(tiny_model, prompts, settings):
    from feedback.coders.screening import pair_hold_back_reason
    from feedback.management.commands import demo

    settings.CODEPREF = {**settings.CODEPREF, "MODEL": tiny_model}
    command = demo.Command()
    command.model_preset = "test"  # seconds, not minutes
    command._prepare_models()
    version = ModelVersion.objects.get(name="bootstrap-test-seed0")
    assert version.is_active
    assert 0 < Completion.objects.filter(model_version=version).count() <= 2 * len(prompts)
    # Every pair of its samples was formed after their tests ran; the degenerate ones are retired, never open.
    theirs = Pair.objects.filter(completion_a__model_version=version).select_related("completion_a", "completion_b")
    assert not Completion.objects.filter(model_version=version, outcome="not_run").exists()
    for pair in theirs:
        held = pair_hold_back_reason(pair.completion_a, pair.completion_b) is not None
        assert pair.state == (Pair.State.RETIRED if held else Pair.State.OPEN), pair
    before = Completion.objects.count()
    command._prepare_models()  # a second start adds nothing
    assert Completion.objects.count() == before
