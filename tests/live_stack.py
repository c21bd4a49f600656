"""Real processes for drills: gunicorn on the test database, nginx with deploy/nginx.conf in front, a Redis
of the test's own (on a free port, so that it can be stopped and resumed without touching the machine's).

Each helper starts its process, waits until it answers, and stops only the process it started.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.celery_worker import _database_url

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited {process.returncode} before answering:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def start_gunicorn(workdir: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, int, Path]:
    """One gunicorn (one gthread worker) on the test database; returns (process, port, access log)."""
    port = free_port()
    log = workdir / f"{name}.log"
    access = workdir / f"{name}.access.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "feedback.settings",
        "DATABASE_URL": _database_url(),
        "DB_CONN_MAX_AGE": "0",  # no connection left open when pytest drops the test database
        "CODEPREF_VAR_DIR": str(workdir / "var"),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "feedback.wsgi",
            "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--workers", "1", "--threads", "4",
            "--access-logfile", str(access), "--graceful-timeout", "2",
        ],
        cwd=ROOT, env=environment, stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    wait_for_port(port, process, log)
    return process, port, access


def start_nginx(workdir: Path, upstream_ports: list[int]) -> tuple[subprocess.Popen, int]:
    """deploy/nginx.conf as compose runs it, with the upstream pointed at ``upstream_ports`` (round robin)."""
    port = free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstream_ports)
    assert "    server web:8000;\n" in site and "    listen 8000;\n" in site
    site = site.replace("    server web:8000;\n", servers).replace(
        "    listen 8000;\n", f"    listen 127.0.0.1:{port};\n"
    )
    temp = workdir / "nginx"
    temp.mkdir(parents=True, exist_ok=True)
    (temp / "site.conf").write_text(site)
    main = f"""
daemon off;
worker_processes 1;
pid {temp}/nginx.pid;
error_log {temp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {temp}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {temp}/site.conf;
}}
"""
    (temp / "nginx.conf").write_text(main)
    log = temp / "stdout.log"
    process = subprocess.Popen(
        [NGINX, "-p", str(temp), "-c", str(temp / "nginx.conf")],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    wait_for_port(port, process, log, timeout=15)
    return process, port


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    """A Redis of the test's own: nothing persisted, loopback only."""
    port = free_port()
    log = workdir / "redis.log"
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    wait_for_port(port, process, log, timeout=15)
    return process, port


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, seconds: float) -> None:
        self.status, self.headers, self.body, self.seconds = status, headers, body, seconds

    def json(self):
        assert self.headers.get("content-type", "").startswith("application/json"), (self.status, self.body[:300])
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: dict | str | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    timeout: float = 30,
) -> Answer:
    """One HTTP request from the loopback address ``source`` (127.0.0.2 is another client to the server)."""
    headers = dict(headers or {})
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        data = body.encode() if body is not None else None
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    started = time.monotonic()
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    found = {key.lower(): value for key, value in response.getheaders()}
    return Answer(response.status, found, payload, time.monotonic() - started)
