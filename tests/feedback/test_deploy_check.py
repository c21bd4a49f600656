"""`manage.py check --deploy` passes with production settings taken from the environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CODEPREF_"))}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "CODEPREF_PRODUCTION": "1",
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": "example.org",
}


def test_the_deploy_check_passes_with_production_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", "--deploy", **PRODUCTION)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when CODEPREF_PRODUCTION=1" in result.stderr


def test_the_wsgi_module_freezes_what_start_up_loaded():
    import gc

    import feedback.wsgi  # noqa: F401

    assert gc.get_freeze_count() > 10_000


def test_the_deploy_check_stays_clean_with_json_logs_and_a_metrics_token():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64), LOG_FORMAT="json", METRICS_TOKEN=secrets.token_urlsafe(32),
        METRICS_ALLOWED_IPS="10.0.0.5", **PRODUCTION,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    # JSON logs from the first line on: what the check printed to stderr, if anything, is JSON objects.
    assert all(line.startswith("{") for line in result.stderr.splitlines() if line.strip())
