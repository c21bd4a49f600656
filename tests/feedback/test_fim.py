"""Fill-in-the-middle prompts end to end (issue 14): imported with a suffix, generated with the model's FIM
template (local StarCoder look-alike with its special tokens, or a served model), tested as prefix + middle
+ suffix, and shown to volunteers with the code after the gap."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.coders import generation, registry
from feedback.coders.importing import prompts_import
from feedback.coders.verdicts import completions_run_tests
from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, Pair, Prompt, Volunteer, Vote
from tests import factories
from tests.training.fake_openai import completion_choices
from training import fim

pytestmark = pytest.mark.django_db

PREFIX = 'def add(a, b):\n    """Return the sum of a and b."""\n    total = '
SUFFIX = "\n    return total\n"
TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


def _fim_line(**extra) -> str:
    return json.dumps(
        {
            "id": "fim/add",
            "prompt": PREFIX,
            "suffix": SUFFIX,
            "language": "python",
            "tests": TESTS,
            "entry_point": "add",
            "completions": [{"model": "m1", "text": "a + b"}, {"model": "m2", "text": "a - b"}],
            **extra,
        }
    )


def _generate(version, prompts, n=1, **params):
    return generation.completions_generate(
        prompt_ids=[p.pk for p in prompts], model_version_id=version.pk, n=n, params={"max_new_tokens": 8, **params}
    )


def test_an_imported_fim_prompt_keeps_its_suffix_and_is_tested_as_prefix_middle_suffix(settings):
    report = prompts_import(lines=[_fim_line()])
    assert report.bad_lines == [] and report.prompts_added == 1
    prompt = Prompt.objects.get()
    assert prompt.text == PREFIX and prompt.suffix == SUFFIX
    ids = list(Completion.objects.values_list("pk", flat=True))
    completions_run_tests(completion_ids=ids)
    outcomes = dict(Completion.objects.values_list("text", "outcome"))
    assert outcomes == {"a + b": "passed", "a - b": "failed"}


def test_the_suffix_is_part_of_a_prompts_identity_and_a_bad_suffix_names_the_line():
    report = prompts_import(lines=[_fim_line(), _fim_line(id="fim/other", suffix="\n    return -total\n")])
    assert report.bad_lines == [] and Prompt.objects.count() == 2
    with pytest.raises(Exception, match="line 1.*suffix"):
        prompts_import(lines=[_fim_line(suffix=42)], strict=True)


def test_a_served_version_with_a_template_is_sent_the_fim_string_and_stops_at_eos(server):
    served = registry.model_version_register(name="sc", backend="openai", target="starcoder", base_url=server.base_url)
    ModelVersion.objects.filter(pk=served.pk).update(fim_template="starcoder")
    served.refresh_from_db()
    prompt = factories.PromptFactory(text=PREFIX, suffix=SUFFIX, tests=TESTS, entry_point="add")
    server.script = [(200, completion_choices("a + b"))]
    (completion,) = _generate(served, [prompt])
    (request,) = server.requests
    assert request["json"]["prompt"] == f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    assert request["json"]["stop"] == fim.FIM_STOP and "suffix" not in request["json"]
    assert completion.text == "a + b"


def test_a_served_version_without_a_template_gets_the_suffix_as_the_apis_parameter(server):
    served = registry.model_version_register(name="gpt", backend="openai", target="m", base_url=server.base_url)
    prompt = factories.PromptFactory(text=PREFIX, suffix=SUFFIX, tests=TESTS, entry_point="add")
    server.script = [(200, completion_choices("a + b"))]
    _generate(served, [prompt])
    assert server.requests[0]["json"]["prompt"] == PREFIX and server.requests[0]["json"]["suffix"] == SUFFIX


def test_a_local_model_without_fim_tokens_is_refused_before_anything_is_sampled(tiny_model, one_torch_thread):
    version = registry.model_version_register(name="tiny", backend="transformers", target=tiny_model)
    gap = factories.PromptFactory(text=PREFIX, suffix=SUFFIX)
    plain = factories.PromptFactory()
    with pytest.raises(ServiceError, match="cannot fill in the middle"):
        _generate(version, [plain, gap], stop=[])
    assert Completion.objects.count() == 0


@pytest.fixture(scope="module")
def starcoder_like(tmp_path_factory):
    from training import lookalike

    return lookalike.fim_model(tmp_path_factory.mktemp("fim") / "model")


def test_the_starcoder_lookalike_fills_gaps_with_its_own_fim_tokens(starcoder_like, one_torch_thread):
    from training.generate import load

    _, tokenizer = load(str(starcoder_like))
    assert fim.template_for_tokenizer(tokenizer) == fim.STARCODER
    ids = tokenizer(fim.build("x = ", "\n", fim.STARCODER), add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<fim_prefix>")  # one special token, not its characters
    version = registry.model_version_register(name="sc-like", backend="transformers", target=str(starcoder_like))
    prompt = factories.PromptFactory(text=PREFIX, suffix=SUFFIX)
    completions = _generate(version, [prompt], n=4)
    assert completions and all(c.params["stop"] == fim.FIM_STOP for c in completions)
    assert not any("<fim_" in c.text for c in completions)


def test_the_volunteer_sees_the_code_after_the_gap_on_the_page_and_in_the_api(volunteer, client):
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    factories.PairFactory(prompt=factories.PromptFactory(text=PREFIX, suffix=SUFFIX))
    token = AuthToken.objects.create(volunteer)[1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = api.get("/api/v1/pairs/next/").json()
    assert body["prompt"]["suffix"] == SUFFIX
    client.force_login(volunteer)
    page = client.get("/rank/").content.decode()
    assert "code continues after the gap" in page and "return" in page.split("after the gap", 1)[1]
    assert Pair.objects.count() == 1


def test_a_fim_pair_is_exported_with_its_suffix_and_the_training_stages_leave_it_out_loudly(caplog):
    import uuid

    from feedback.datasets.services import snapshot_build
    from training import data

    fim_pair = factories.PairFactory(prompt=factories.PromptFactory(text=PREFIX, suffix=SUFFIX))
    plain_pair = factories.PairFactory()
    voter = factories.UserFactory(username="fimvoter")
    for pair in (fim_pair, plain_pair):
        Vote.objects.create(pair=pair, volunteer=voter, choice="a", left_is_a=True, idempotency_key=uuid.uuid4().hex)
    snapshot = snapshot_build().snapshot

    def rows(part):
        return [
            json.loads(line)
            for split in ("train", "test")
            for line in (snapshot.path / part / f"{split}.jsonl").read_text().splitlines()
        ]

    assert {r["pair_id"]: r["suffix"] for r in rows("preference")} == {fim_pair.pk: SUFFIX, plain_pair.pk: ""}
    assert {r["prompt_id"]: r["suffix"] for r in rows("prompts")} == {
        fim_pair.prompt_id: SUFFIX,
        plain_pair.prompt_id: "",
    }
    opened = data.open_snapshot(snapshot.path)
    with caplog.at_level("WARNING", logger="training"):
        kept = [r for split in ("train", "test") for r in data.preference_rows(opened, split)]
    assert len(kept) == 1 and kept[0]["prompt"].startswith(plain_pair.prompt.text.rstrip())
    assert "1 fill-in-the-middle row(s) left out" in caplog.text
