"""A real Celery worker for tests: ``celery -A feedback worker`` in a subprocess, on the test database and Redis.

Use the ``celery_worker`` fixture (tests/feedback/conftest.py re-exports it; other test folders can import it
from here). The worker consumes one queue of its own (so that parallel test runs sharing a Redis database do
not take each other's tasks); send tasks with ``worker.send(task, **kwargs)``. Tests that use it need
``@pytest.mark.django_db(transaction=True)`` so that the worker sees their rows, and ``@pytest.mark.redis``.

A test module can set ``CELERY_WORKER_CONCURRENCY`` (default 1), ``CELERY_WORKER_ENV`` (extra environment) and
``CELERY_WORKER_IMPORTS`` (test-only modules the worker imports at start, before its pool forks, e.g.
``["tests.paused_snapshots"]``); the worker lives for the module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


def _database_url() -> str:
    """The test database (pytest-django's, already created) as a URL for the worker's settings."""
    db = connection.settings_dict
    auth = db["USER"] or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{db['NAME']}"


class Worker:
    def __init__(self, *, concurrency: int, env: dict[str, str], workdir: Path, imports: tuple[str, ...] = ()) -> None:
        self.queue = f"test-{uuid.uuid4().hex[:10]}"
        self.concurrency = concurrency
        self.imports = imports
        self.datasets_dir = workdir / "datasets"
        self.log_path = workdir / "worker.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "feedback.settings",
            "DATABASE_URL": _database_url(),
            "DB_CONN_MAX_AGE": "0",  # no connection left open when pytest drops the test database
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CODEPREF_DATASETS_DIR": str(self.datasets_dir),
            "CODEPREF_TRAINING_DIR": str(workdir / "training"),
            "CODEPREF_VAR_DIR": str(workdir / "var"),
            "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 (the worker writes to it until stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "feedback",
                "worker",
                "-Q",
                self.queue,
                "-c",
                str(self.concurrency),
                "--pool",
                "prefork",
                "-n",
                f"{self.queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
                *(("-I", ",".join(self.imports)) if self.imports else ()),
            ],  # fmt: skip
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited ({self.process.returncode}):\n{self.log()}")
            if " ready." in self.log() and len(self.children()) >= self.concurrency:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Celery worker was not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def children(self) -> list[psutil.Process]:
        """The pool's child processes (the ones that run tasks)."""
        if self.process is None or self.process.poll() is not None:
            return []
        return psutil.Process(self.process.pid).children()

    def kill_children(self) -> list[int]:
        """SIGKILL every pool child, as an out-of-memory kill would; returns their pids."""
        pids = [child.pid for child in self.children()]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def send(self, task, **kwargs):
        """``task.apply_async(kwargs=...)`` through Redis to this worker's queue (never inline)."""
        from feedback.celery import app

        eager = app.conf.task_always_eager
        app.conf.task_always_eager = False
        try:
            with app.connection_for_write(REDIS_URL) as conn:
                return task.apply_async(kwargs=kwargs, queue=self.queue, connection=conn)
        finally:
            app.conf.task_always_eager = eager

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        children = self.children()
        self.process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for child in children:
            if child.is_running():
                child.kill()
        from feedback.celery import app

        try:  # messages a killed test left behind would otherwise stay in Redis
            with app.connection_for_write(REDIS_URL) as conn:
                conn.default_channel.queue_delete(self.queue)
        except Exception:  # noqa: BLE001 (best effort)
            pass


@contextmanager
def running_worker(
    *, workdir: Path, concurrency: int = 1, env: dict[str, str] | None = None, imports: tuple[str, ...] = ()
):
    worker = Worker(concurrency=concurrency, env=env or {}, workdir=workdir, imports=imports)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message}")


@pytest.fixture(scope="module")
def celery_worker(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """A worker subprocess for the module, on the test database and Redis (REDIS_URL, default db 15)."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("the Celery worker tests need PostgreSQL (a worker process cannot share an in-memory SQLite)")
    concurrency = getattr(request.module, "CELERY_WORKER_CONCURRENCY", 1)
    env = getattr(request.module, "CELERY_WORKER_ENV", {})
    imports = tuple(getattr(request.module, "CELERY_WORKER_IMPORTS", ()))
    from feedback.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # results come from the worker through the result backend
    try:
        with django_db_blocker.unblock():
            workdir = tmp_path_factory.mktemp("celery")
            with running_worker(workdir=workdir, concurrency=concurrency, env=env, imports=imports) as worker:
                yield worker
    finally:
        app.conf.task_always_eager = eager
