"""The demo command and its bundled data set."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from feedback.management.commands import demo
from feedback.models import Completion, ModelVersion, Pair, Prompt

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The demo hashes two passwords per run; the default hasher would make these tests seconds slower.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def prepared_models(monkeypatch):
    """Building and sampling the local model takes minutes and has its own tests: here it is only counted."""
    calls = []
    monkeypatch.setattr(demo.Command, "_prepare_models", lambda self: calls.append(Prompt.objects.count()))
    return calls


def state():
    return (
        Prompt.objects.count(),
        Completion.objects.count(),
        Pair.objects.count(),
        ModelVersion.objects.count(),
        get_user_model().objects.count(),
    )


def test_the_demo_imports_the_demo_set_and_creates_the_demo_volunteer_and_admin(capsys):
    call_command("demo")
    assert Prompt.objects.filter(source="codepref", language="python").count() >= 40
    assert Prompt.objects.exclude(test_style=Prompt.TestStyle.HUMANEVAL).count() == 0
    assert Completion.objects.count() >= 3 * Prompt.objects.count()
    assert Pair.objects.count() >= 40
    assert set(ModelVersion.objects.values_list("name", flat=True)) == {
        "demo-correct",
        "demo-clunky",
        "demo-subtle-bug",
        "demo-broken",
    }

    user = get_user_model().objects.get(username="demo")
    assert user.check_password(demo.VOLUNTEER[1])
    assert user.volunteer.languages == ["python"]
    assert user.volunteer.accepted_terms_at is not None
    assert user.volunteer.accepted_licence
    assert not user.is_staff
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password(demo.ADMIN[1])

    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/" in out
    assert demo.VOLUNTEER[1] in out and demo.ADMIN[1] in out


def test_the_demo_prepares_the_models_after_importing_the_prompts(prepared_models):
    call_command("demo")
    assert prepared_models == [54]


def test_running_the_demo_twice_adds_nothing(capsys):
    call_command("demo")
    before = state()
    capsys.readouterr()
    call_command("demo")
    assert state() == before
    assert "0 prompts added, 54 already present, 0 completions added, 0 pairs formed" in capsys.readouterr().out


def test_the_demo_resets_a_changed_demo_password_so_the_printed_one_works():
    call_command("demo")
    user = get_user_model().objects.get(username="demo")
    user.set_password("something else")
    user.save()
    demo.Command()._create_users()
    user.refresh_from_db()
    assert user.check_password(demo.VOLUNTEER[1])


def test_serve_runs_the_development_server_on_the_given_address(monkeypatch, capsys, prepared_models):
    calls = []
    real = demo.call_command

    def fake_call_command(name, *args, **kwargs):
        if name == "runserver":
            calls.append((args, kwargs))
        else:
            real(name, *args, **kwargs)

    class Background:
        terminated = False

        def poll(self):
            return None

        def terminate(self):
            self.terminated = True

        def wait(self, timeout):
            return 0

    background = Background()
    monkeypatch.setattr(demo, "call_command", fake_call_command)
    monkeypatch.setattr(demo.Command, "_start_model_in_background", lambda self: background)
    call_command("demo", "--serve", "--addr", "0.0.0.0:8123")
    assert calls == [(("0.0.0.0:8123",), {"use_reloader": False, "insecure_serving": True})]
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/" in out
    assert "prepared in the background" in out
    # The model is prepared in the background, not before serving; stopping the server stops it.
    assert prepared_models == []
    assert background.terminated


def test_serving_creates_the_static_root_so_whitenoise_has_no_missing_folder_to_warn_about(
    monkeypatch, settings, tmp_path
):
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    monkeypatch.setattr(demo, "call_command", lambda name, *a, **k: None if name == "runserver" else None)
    command = demo.Command()
    command.model_preset = "test"
    finished = type("Finished", (), {"poll": lambda self: 0})()
    monkeypatch.setattr(demo.Command, "_start_model_in_background", lambda self: finished)
    command._serve("127.0.0.1:8124")
    assert settings.STATIC_ROOT.is_dir()


def test_the_default_broker_url_names_its_host_so_kombu_does_not_warn():
    """kombu warns "No hostname was supplied" for a broker URL without a host, on every task the demo sends."""
    from kombu import Connection

    from feedback.celery import app

    assert Connection(app.conf.broker_url).hostname == "localhost"
    assert app.conf.task_always_eager


@pytest.mark.parametrize(
    ("addr", "url"),
    [
        ("8000", "http://127.0.0.1:8000/"),
        ("localhost:9000", "http://localhost:9000/"),
        ("[::1]:80", "http://[::1]:80/"),
    ],
)
def test_the_printed_url_follows_the_address(addr, url):
    assert demo._url_for(addr) == url


def test_every_demo_prompt_has_tests_an_entry_point_and_varied_completions():
    entries = [json.loads(line) for line in demo.DEMO_PROMPTS.read_text(encoding="utf-8").splitlines()]
    assert len(entries) >= 40
    assert len({entry["id"] for entry in entries}) == len(entries)
    for entry in entries:
        models = [completion["model"] for completion in entry["completions"]]
        assert 3 <= len(models) <= 4, entry["id"]
        assert {"demo-correct", "demo-subtle-bug"} <= set(models), entry["id"]
        assert "def check(candidate):" in entry["tests"] and entry["tests"].count("assert") >= 4, entry["id"]
        assert f"def {entry['entry_point']}(" in entry["prompt"], entry["id"]


def test_the_correct_demo_completions_pass_their_tests():
    """One subprocess runs them all, each program in a fresh namespace: our own code, not untrusted input."""
    entries = [json.loads(line) for line in demo.DEMO_PROMPTS.read_text(encoding="utf-8").splitlines()]
    programs = {
        entry["id"]: entry["prompt"]
        + completion["text"]
        + "\n"
        + entry["tests"]
        + f"\ncheck({entry['entry_point']})\n"
        for entry in entries
        for completion in entry["completions"]
        if completion["model"] == "demo-correct"
    }
    runner = (
        "import json, sys\n"
        "failed = []\n"
        "for name, program in json.load(sys.stdin).items():\n"
        "    try:\n"
        "        exec(compile(program, name, 'exec'), {'__name__': '__demo__'})\n"
        "    except BaseException as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print(json.dumps(failed))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", runner], input=json.dumps(programs), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert len(programs) == len(entries)
