"""A whole codepref stack of its own on loopback, for drills: a PostgreSQL cluster (``initdb`` + ``pg_ctl`` on a
free port, trust auth), a ``redis-server`` on a free port (AOF on, as compose runs it), gunicorn and a Celery
worker. Every process is started here and only those are stopped or killed: the machine's own PostgreSQL and
Redis are never touched.

Used by the drills in the test suite (short forms) and by ``bench/schema_fuzz.py`` / ``bench/fault_drill.py``
(full forms). The seed (accounts, tokens, pairs) runs in a subprocess, ``python -m tests.live_seed``, so that
the calling process need not point Django at the stack's database.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing() -> str:
    """What this machine lacks to start a drill stack ("" when nothing)."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL's initdb (looked in {PG_BIN}; set PG_BIN)"
    if shutil.which("redis-server") is None:
        return "redis-server"
    return ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def _as_postgres() -> list[str]:
    """initdb and the server refuse to run as root: run them as the postgres account when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Postgres:
    """A throw-away cluster in ``workdir/pg`` (fsync off: drills measure behaviour, not durability on power loss)."""

    def __init__(self, workdir: Path) -> None:
        # Its own folder in /tmp: the server runs as the postgres account, which cannot enter a root-only
        # pytest folder.
        self.home = Path(tempfile.mkdtemp(prefix="codepref-drill-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        self.log = self.home / "server.log"

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres")
        self.home.chmod(0o755)
        subprocess.run(
            [*_as_postgres(), str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync", "--locale=C"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._ctl("-o", options, "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def sql(self, query: str, params=(), *, db: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def create_db(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_backends(self, db: str) -> int:
        """End every server process serving ``db`` (as an administrator or a failover would); returns how many."""
        rows = self.sql(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [db],
        )
        return rows[0][0]

    def close(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.home, ignore_errors=True)


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.home = workdir / "redis"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.home),
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no"],
            stdout=open(self.home / "server.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip
        wait_listening(self.port, timeout=20, process=self.process)

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits, as ``docker compose stop`` would make it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Service:
    """A subprocess with its own log file, started in ``ROOT``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.command, self.env = name, command, env
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def children(self) -> list[psutil.Process]:
        if self.process is None or self.process.poll() is not None:
            return []
        return psutil.Process(self.process.pid).children()

    def kill_one_child(self) -> int:
        """SIGKILL one child (a gunicorn worker, a Celery pool process), as the OOM killer would; its pid."""
        children = self.children()
        if not children:
            raise RuntimeError(f"{self.name} has no child process to kill")
        os.kill(children[0].pid, signal.SIGKILL)
        return children[0].pid

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        children = self.children()
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for child in children:
            if child.is_running():
                child.kill()


class Stack:
    """PostgreSQL + Redis + gunicorn (+ a Celery worker when asked) in ``workdir``; a context manager."""

    def __init__(
        self, workdir: Path, *, db: str = "codepref", worker: bool = True, web_workers: int = 2, pairs: int = 400
    ) -> None:
        self.workdir = workdir
        self.pairs = pairs
        self.db = db
        self.postgres = Postgres(workdir)
        self.redis = Redis(workdir)
        self.port = free_port()
        self.want_worker = worker
        self.web_workers = web_workers
        self.web: Service | None = None
        self.worker: Service | None = None
        self.seed: dict = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CODEPREF_", "CELERY_"))
        } | {
            "DJANGO_SETTINGS_MODULE": "feedback.settings",
            "DJANGO_DEBUG": "0",
            "DATABASE_URL": self.postgres.url(self.db),
            "CELERY_BROKER_URL": self.redis.url(0),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CACHE_URL": self.redis.url(1),  # rate-limit counts, as in production
            # The drills measure faults and the schema, not the rate limits (tests/feedback/test_limits_live.py
            # does): limits no drill reaches.
            "API_ANON_RATE": "100000000/min",
            "API_USER_RATE": "100000000/min",
            "API_VOTE_RATE": "100000000/min",
            "CODEPREF_VAR_DIR": str(self.workdir / "var"),
            "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
            "PYTHONWARNINGS": "ignore",
        }

    def __enter__(self) -> Stack:
        try:
            self.postgres.init()
            self.postgres.start()
            self.postgres.create_db(self.db)
            self.redis.start()
            self.seed = self._seed()
            self.web = Service("gunicorn", self._gunicorn_command(), self.env(), self.workdir)
            self.web.start()
            wait_listening(self.port, timeout=60, process=self.web.process)
            if self.want_worker:
                self.start_worker()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _seed(self) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "tests.live_seed"],
            cwd=ROOT, env={**self.env(), "LIVE_SEED_PAIRS": str(self.pairs)}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{done.stdout}\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def _gunicorn_command(self) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn", "feedback.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--worker-class", "gthread", "--workers", str(self.web_workers), "--threads", "4",
            "--timeout", "30", "--graceful-timeout", "5", "--log-level", "warning",
        ]  # fmt: skip

    def start_worker(self) -> None:
        command = [
            sys.executable, "-m", "celery", "-A", "feedback", "worker", "-Q", "default", "-c", "1",
            "--pool", "prefork", "-n", f"drill-{self.port}@%h", "--without-gossip", "--without-mingle",
            "-l", "INFO", "-I", "tests.paused_snapshots",
        ]  # fmt: skip
        self.worker = Service("worker", command, self.env(), self.workdir)
        self.worker.start()
        deadline = time.monotonic() + 90
        while " ready." not in self.worker.log():
            if self.worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{self.worker.log()[-3000:]}")
            time.sleep(0.2)

    def close(self) -> None:
        for service in (self.web, self.worker):
            if service is not None:
                service.stop()
        self.redis.close()
        self.postgres.close()


def schemathesis_run(base_url: str, token: str, *, max_examples: int, seed: int, workdir: Path) -> dict:
    """Schemathesis (every check, every phase) against the served schema with ``token``; its exit code, the
    counts from its summary and the tail of its output."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")),
         "--config-file", str(ROOT / "bench" / "schemathesis.toml"),
         "run", f"{base_url}/api/v1/schema/", "--checks", "all", "-H", f"Authorization: Token {token}",
         "--max-examples", str(max_examples), "--seed", str(seed), "--no-color", "--output-truncate", "false",
         "--request-timeout", "30",
         "--report", "junit", "--report-dir", str(workdir)],
        capture_output=True, text=True, timeout=1800, cwd=ROOT,
    )  # fmt: skip
    output = done.stdout + done.stderr
    summary = next((line.strip("= ") for line in reversed(output.splitlines()) if " in " in line), "")
    generated = next((line.strip() for line in output.splitlines() if re.match(r"\s*[\d,]+ generated", line)), "")
    return {"returncode": done.returncode, "summary": summary, "generated": generated, "output": output}
