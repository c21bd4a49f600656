"""`make demo`'s first run, for real: `manage.py demo --serve` in a fresh folder (SQLite, inline tasks), with the
`test` model preset so that the model builds in seconds.

The test holds the model's build lock (the one a second `make demo` waits on) while it checks that the site
already answers and hands the demo volunteer a hand-written pair; then lets the background build go and waits
for the model's pairs to join the queue, screened.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from feedback.management.commands import demo

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240
MODEL_TIMEOUT_S = 420


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(what: str, check, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the demo exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {what} after {timeout}s:\n{log.read_text()[-4000:]}")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=20) as connection:
        return connection.execute(sql).fetchall()


def _log_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    answer = session.post(
        f"{base}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "login": demo.VOLUNTEER[0], "password": demo.VOLUNTEER[1]},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.url == f"{base}/rank/", answer.url
    return session


MODEL_PAIRS = """
    SELECT p.state, count(*) FROM feedback_pair p
    JOIN feedback_completion c ON c.id = p.completion_a_id
    JOIN feedback_modelversion m ON m.id = c.model_version_id
    WHERE m.name LIKE 'bootstrap-%' GROUP BY p.state
"""
MODEL_COMPLETIONS = """
    SELECT c.outcome, count(*) FROM feedback_completion c JOIN feedback_modelversion m ON m.id = c.model_version_id
    WHERE m.name LIKE 'bootstrap-%' GROUP BY c.outcome
"""


def test_make_demo_serves_before_the_model_is_built_and_its_screened_pairs_join_later(tmp_path):
    var, port = tmp_path / "var", _free_port()
    base, db, status_file = f"http://127.0.0.1:{port}", var / "codepref.sqlite3", var / "demo-model.json"
    model = var / "models" / "bootstrap"
    model.parent.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "CODEPREF_"))}
    env.update(CODEPREF_VAR_DIR=str(var), CODEPREF_MODEL=str(model), STATIC_ROOT=str(tmp_path / "staticfiles"))
    log = tmp_path / "demo.log"
    command = [sys.executable, "manage.py", "demo", "--serve", "--addr", f"127.0.0.1:{port}", "--model-preset", "test"]

    lock = open(model.parent / f".{model.name}.lock", "w")  # noqa: SIM115 (held across the steps below)
    fcntl.flock(lock, fcntl.LOCK_EX)
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for("answer from the site", lambda: _answers(f"{base}/healthz"), START_TIMEOUT_S, proc, log)
        answered = time.monotonic() - started
        # The model is not built (we hold its lock), yet the volunteer ranks the hand-written pairs.
        session = _log_in(base)
        assert 'data-pair="' in session.get(f"{base}/rank/", timeout=10).text
        status = _wait_for(
            "building status",
            lambda: json.loads(status_file.read_text()) if status_file.exists() else None,
            60,
            proc,
            log,
        )
        assert status["stage"] == "building" and status["preset"] == "test"
        assert _rows(db, MODEL_COMPLETIONS) == [] and _rows(db, MODEL_PAIRS) == []
        assert _rows(db, "SELECT count(*) FROM feedback_pair WHERE state = 'open'")[0][0] >= 40

        fcntl.flock(lock, fcntl.LOCK_UN)
        done = _wait_for(
            "model pairs",
            lambda: (s := json.loads(status_file.read_text()))["stage"] in ("done", "failed") and s,
            MODEL_TIMEOUT_S,
            proc,
            log,
        )
        joined_after = time.monotonic() - started
        assert done["stage"] == "done", done
        outcomes = dict(_rows(db, MODEL_COMPLETIONS))
        pairs = dict(_rows(db, MODEL_PAIRS))
        assert sum(outcomes.values()) == done["completions"] > 0
        assert outcomes.get("passed", 0) == done["passed"]
        assert "not_run" not in outcomes  # tested before any pair of theirs is formed
        # Every demo prompt got its model pair: open ones joined the queue, the degenerate ones were retired.
        assert pairs.get("open", 0) == done["pairs_joined"]
        assert pairs.get("retired", 0) == done["pairs_held_back"]
        assert done["pairs_joined"] + done["pairs_held_back"] == 54
        assert _answers(f"{base}/healthz")
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        lock.close()

    output = log.read_text()
    assert f"[model] {done['model']}: {done['passed']} of {done['completions']} completions pass their tests" in output
    assert "[model] building the model: step" not in output  # steps go to the status file; the log shows them
    for misleading in ("No hostname was supplied", "No directory at", "Writing model shards"):
        assert misleading not in output, misleading
    print(f"site answered after {answered:.0f}s; the model's pairs joined after {joined_after:.0f}s (test preset)")
