"""The vote path over HTTP against gunicorn on PostgreSQL, beside a raw psycopg baseline of the same writes.

    python bench/vote_path.py                          # 32 volunteers, 20 s, 100,000 pairs
    python bench/vote_path.py --seconds 10 --pairs 20000 --rounds 3
    python bench/vote_path.py --worker-class sync --workers 4

It creates its own database (``--db``, default codepref_bench), migrates it, loads ``--pairs`` pairs (four
completions of ~500 bytes per prompt, six pairs per prompt, written with COPY), creates ``--concurrency``
volunteers with API tokens, and starts gunicorn (``feedback.wsgi``) on a free port against that database.
Then, for ``--seconds`` after a short warm-up:

- **API**: one thread per volunteer, each on its own keep-alive connection: ``GET /api/v1/pairs/next/``
  once, then ``POST /api/v1/votes/`` in a loop, voting on the pair that the previous answer carried (one
  round trip per vote). Every request is timed; any status other than 200/201/204 is an error.
- **Baseline**: psycopg alone, the same number of threads, each transaction inserting a vote row of the
  same shape (other volunteers, so the unique constraints hold) and updating the pair's counters with the
  same UPDATE the service runs.

It prints votes/s, p50 and p99 latency, errors, baseline transactions/s and their ratio (target >= 0.15 at
32 volunteers, p99 < 150 ms, zero errors), then stops gunicorn and drops the database (``--keep-db`` keeps
it). With ``--rounds`` > 1 the two runs alternate and medians are reported. The load generator, gunicorn
and PostgreSQL share the machine's cores, and on a machine shared with other work the figures are noisy:
compare configurations within one invocation.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.15
TARGET_P99_MS = 150
COMPLETIONS_PER_PROMPT = 4  # six pairs per prompt
# The 'redis' option's cache: where production keeps the rate limits' counts (CACHE_URL).
REDIS_CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/14")
PAIRS_PER_PROMPT = COMPLETIONS_PER_PROMPT * (COMPLETIONS_PER_PROMPT - 1) // 2


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Measured time of each run.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured API load before each API run.")
    parser.add_argument("--concurrency", type=int, default=32, help="Volunteers (threads) in both runs.")
    parser.add_argument("--pairs", type=int, default=100_000, help="Pairs loaded (six per prompt).")
    parser.add_argument("--rounds", type=int, default=1, help="Alternating baseline/API runs; medians reported.")
    parser.add_argument(
        "--gold-fraction",
        type=float,
        default=0.1,
        help="Share of the pairs loaded as gold (a known answer): quality control's gold pairs are handed out at "
        "CODEPREF_QC_GOLD_RATE and for each new volunteer's onboarding. 0: no gold pairs.",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["gthread:2x8"],
        metavar="SPEC",
        help="gunicorn set-ups to measure, each as CLASS:WORKERS[xTHREADS][,option...], "
        "e.g. 'gthread:2x8' 'sync:4' 'gthread:2x8,orm' (orm: the ORM vote path; noprepare: its statements not "
        "prepared; nocache: token lookups not cached; syncclaim: claims committed synchronously; nospread: every "
        "claim starts at the first least-claimed pair; querycheck: Django's SELECT 1 health check; nofreeze: "
        "start-up objects not frozen out of the garbage collector; nometrics: without django-prometheus's request "
        "middleware; redis: rate limits counted in Redis at $BENCH_CACHE_URL, as in production, instead of each "
        "process's memory). Several are run in turn in every round.",
    )
    parser.add_argument("--db", default="codepref_bench", help="Database to create (dropped at the end).")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL.")
    parser.add_argument("--timeline", action="store_true", help="Print each second's requests and p99.")
    parser.add_argument("--keep-db", action="store_true", help="Keep the database afterwards.")
    return parser


# --- data -------------------------------------------------------------------------------------
def _code(rng: random.Random, name: str, size: int) -> str:
    """Python-looking text of about ``size`` bytes."""
    lines = [f"def {name}(values: list[int], limit: int = {rng.randint(1, 99)}) -> list[int]:"]
    words = ["total", "item", "index", "seen", "result", "value", "count", "window", "best", "step"]
    while sum(len(line) + 1 for line in lines) < size:
        a, b = rng.sample(words, 2)
        lines.append(f"    {a} = {b} + {rng.randint(0, 999)}  # {rng.choice(words)} {rng.randint(0, 99999)}")
    lines.append("    return result")
    return "\n".join(lines) + "\n"


def load(pairs: int, volunteers: int, baseline_users: int, gold_fraction: float = 0.0) -> dict:
    """Fill the (migrated) database through Django's connection: COPY for the bulk, the ORM for accounts."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from knox.models import AuthToken

    from feedback import models

    rng = random.Random(7)
    prompts = (pairs + PAIRS_PER_PROMPT - 1) // PAIRS_PER_PROMPT
    model_version = models.ModelVersion.objects.create(name="bench", backend=models.ModelVersion.Backend.IMPORTED)
    prompt_rows, completion_rows, pair_rows = [], [], []
    completion_id = pair_id = 0
    for prompt_id in range(1, prompts + 1):
        text = _code(rng, f"task_{prompt_id}", 250)
        prompt_rows.append(
            models.Prompt(
                id=prompt_id,
                text=text,
                language="python",
                source="bench",
                external_id=f"bench/{prompt_id}",
                content_hash=models.content_hash("python", text, ""),
            )
        )
        ids = []
        for _ in range(COMPLETIONS_PER_PROMPT):
            completion_id += 1
            body = _code(rng, f"task_{prompt_id}", 500)
            completion_rows.append(
                models.Completion(
                    id=completion_id,
                    prompt_id=prompt_id,
                    model_version_id=model_version.pk,
                    text=body,
                    text_hash=hashlib.sha256(body.encode()).hexdigest(),
                )
            )
            ids.append(completion_id)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if pair_id < pairs:
                    pair_id += 1
                    pair = models.Pair(
                        id=pair_id, prompt_id=prompt_id, language="python", completion_a_id=a, completion_b_id=b
                    )
                    if rng.random() < gold_fraction:  # quality control's gold: a known answer, as the tests give
                        pair.state, pair.gold_choice, pair.gold_source = models.Pair.State.GOLD, "a", "tests"
                        pair.decided_by_tests, pair.gold_explanation = True, "A passes the tests; B fails them."
                    pair_rows.append(pair)
    for rows in (prompt_rows, completion_rows, pair_rows):
        _copy(connection, rows)
    with connection.cursor() as cursor:
        for table in ("feedback_prompt", "feedback_completion", "feedback_pair"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cursor.execute(f"ANALYZE {table}")

    User = get_user_model()
    api_tokens = []
    for i in range(volunteers):
        user = User.objects.create(username=f"bench-api-{i}", password="!")
        models.Volunteer.objects.filter(user=user).update(
            accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0"
        )
        api_tokens.append((user.pk, AuthToken.objects.create(user)[1]))
    # The baseline's voters only need to exist for the foreign key; enough of them that each can vote on
    # every pair once and the baseline never runs out.
    first = User.objects.order_by("-pk").values_list("pk", flat=True).first() + 1
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,
                is_active, date_joined)
            SELECT g, '!', false, 'bench-base-' || g, '', '', '', false, true, now()
            FROM generate_series(%s, %s) g""",
            [first, first + baseline_users - 1],
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), (SELECT max(id) FROM auth_user))")
    base_users = list(range(first, first + baseline_users))
    connection.close()
    return {"api": api_tokens, "base_users": base_users, "pairs": pair_id}


def _copy(connection, instances: list) -> None:
    """COPY model instances into their table, every concrete field prepared as Django would save it."""
    model = type(instances[0])
    fields = [f for f in model._meta.concrete_fields]
    for instance in instances:
        for field in fields:
            if getattr(instance, field.attname) is None and field.has_default():
                setattr(instance, field.attname, field.get_default())
            if getattr(field, "auto_now_add", False):
                setattr(instance, field.attname, field.pre_save(instance, add=True))
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
            for instance in instances:
                copy.write_row(
                    [f.get_db_prep_save(getattr(instance, f.attname), connection=connection) for f in fields]
                )
    connection.connection.commit()


# --- HTTP -------------------------------------------------------------------------------------
class Client:
    """A minimal HTTP/1.1 client on one keep-alive socket: the load generator must cost little CPU."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.auth = f"Authorization: Token {token}\r\n".encode()
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.reconnects = 0
        self.closed_by_server = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()
        raw = head + self.auth + b"\r\n" + body
        for attempt in range(2):
            reused = self.sock is not None
            if not reused:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.sock.sendall(raw)
                return self._response()
            except (ConnectionError, _Closed):
                # The server closed an idle keep-alive connection before reading: the request is resent
                # once (votes carry an idempotency key, so a resend is safe).
                self.close()
                if not reused or attempt:
                    raise
                self.reconnects += 1
        raise AssertionError("unreachable")

    def _response(self) -> tuple[int, bytes]:
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed
            buffer += chunk
        lines = buffer[:end].split(b"\r\n")
        status = int(lines[0][9:12])
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        rest = buffer[end + 4 :]
        if length is None:
            length = 0 if status in (204, 304) else None
        while length is None or len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                if length is None:
                    break
                raise ConnectionError("connection closed inside a response body")
            rest += chunk
        if length is None:
            length = len(rest)
        body, self.buffer = rest[:length], rest[length:]
        if close:
            self.closed_by_server += 1
            self.close()
        return status, body


class _Closed(Exception):
    pass


def api_run(
    server: subprocess.Popen, port: int, tokens: list[tuple[int, str]], seconds: float, warmup: float, db: str
) -> dict:  # noqa: E501
    import orjson

    start_at = time.perf_counter() + 0.5
    measure_from = start_at + warmup
    stop_at = measure_from + seconds
    results = []
    lock = threading.Lock()

    def volunteer(token: str) -> None:
        client = Client(port, token)
        latencies: list[float] = []
        starts: list[float] = []
        votes = errors = 0
        first_error = ""
        exhausted = False
        pair = None
        while time.perf_counter() < start_at:
            time.sleep(0.01)
        while (now := time.perf_counter()) < stop_at:
            try:
                if pair is None:
                    status, body = client.request("GET", "/api/v1/pairs/next/")
                    if status == 204:
                        exhausted = True
                        break
                    ok = status == 200
                    if ok:
                        pair = orjson.loads(body)["pair"]
                else:
                    payload = orjson.dumps({"pair": pair, "choice": "left", "idempotency_key": uuid.uuid4().hex})
                    status, body = client.request("POST", "/api/v1/votes/", payload)
                    ok = status == 201
                    if ok:
                        following = orjson.loads(body)["next"]
                        pair = following["pair"] if following else None
                        if now >= measure_from:
                            votes += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported as an error
                status, body, ok = 0, repr(exc).encode(), False
                client.close()
            done = time.perf_counter()
            if now >= measure_from:
                latencies.append(done - now)
                starts.append(now - measure_from)
                if not ok:
                    errors += 1
                    first_error = first_error or f"{status} {body[:200]!r}"
            if not ok:
                pair = None
                time.sleep(0.05)
        client.close()
        with lock:
            results.append(
                (votes, errors, latencies, first_error, client.reconnects, exhausted, client.closed_by_server, starts)
            )

    threads = [threading.Thread(target=volunteer, args=(token,)) for _, token in tokens]
    for thread in threads:
        thread.start()
    while time.perf_counter() < measure_from:
        time.sleep(0.01)
    cpu_start, pg_start, own_start = _cpu_of_tree(server.pid), _cpu_of_postgres(db), os.times()
    for thread in threads:
        thread.join()
    cpu_after, pg_after, own_after = _cpu_of_tree(server.pid), _cpu_of_postgres(db), os.times()
    latencies = sorted(x for r in results for x in r[2])
    votes = sum(r[0] for r in results)
    return {
        "timeline": _timeline([(s, x) for r in results for s, x in zip(r[7], r[2], strict=True)], seconds),
        "votes_per_s": votes / seconds,
        "p50_ms": _percentile(latencies, 0.50),
        "p90_ms": _percentile(latencies, 0.90),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": _percentile(latencies, 1.0),
        "errors": sum(r[1] for r in results),
        "first_error": next((r[3] for r in results if r[3]), ""),
        "reconnects": sum(r[4] for r in results),
        "exhausted": sum(r[5] for r in results),
        "closed_by_server": sum(r[6] for r in results),
        "requests": sum(len(r[2]) for r in results),
        # Keep-alive connections stay with the worker that accepted them: an uneven split shows here.
        "client_means_ms": sorted(1000 * statistics.fmean(r[2]) for r in results if r[2]),
        "server_cpu_ms_per_vote": 1000 * (cpu_after - cpu_start) / max(votes, 1),
        "postgres_cpu_ms_per_vote": 1000 * _cpu_delta(pg_start, pg_after) / max(votes, 1),
        "client_cpu_ms_per_vote": 1000
        * ((own_after.user + own_after.system) - (own_start.user + own_start.system))
        / max(votes, 1),
    }


def _timeline(samples: list[tuple[float, float]], seconds: float) -> list[tuple[int, int, float]]:
    """Per second of the run: requests started and their p99 (ms), to show whether slow requests cluster."""
    buckets: dict[int, list[float]] = {}
    for start, latency in samples:
        buckets.setdefault(int(start), []).append(latency)
    return [
        (second, len(b), _percentile(sorted(b), 0.99)) for second, b in sorted(buckets.items()) if second < seconds
    ]


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_of_postgres(db: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the benchmark's database, by process id."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
                if title.startswith(b"postgres: ") and f" {db} ".encode() in title:
                    found[int(entry.name)] = _cpu_seconds(int(entry.name))
            except OSError:
                pass
    return found


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _cpu_of_tree(pid: int) -> float:
    """User + system CPU seconds of a process and its children (gunicorn's master and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def parse_config(spec: str) -> dict:
    """CLASS:WORKERS[xTHREADS][,option...] -> gunicorn arguments and environment."""
    head, *options = spec.split(",")
    worker_class, _, size = head.partition(":")
    workers, _, threads = size.partition("x")
    if worker_class not in ("sync", "gthread") or not workers.isdigit() or (threads and not threads.isdigit()):
        raise SystemExit(f"--configs {spec!r}: expected CLASS:WORKERS[xTHREADS][,option...], e.g. gthread:2x8")
    switches = {
        "orm": "BENCH_VOTE_SQL",
        "noprepare": "BENCH_PREPARE",
        "nocache": "BENCH_TOKEN_CACHE",
        "syncclaim": "BENCH_ASYNC_CLAIM",
        "nospread": "BENCH_SPREAD_PICK",
        "querycheck": "BENCH_SOCKET_CHECK",
        "nofreeze": "BENCH_GC_FREEZE",
        "nometrics": "BENCH_REQUEST_METRICS",
    }
    settings = {"redis": ("CACHE_URL", REDIS_CACHE_URL)}
    unknown = set(options) - set(switches) - set(settings)
    if unknown:
        raise SystemExit(f"--configs {spec!r}: unknown option(s) {', '.join(sorted(unknown))}")
    return {
        "spec": spec,
        "arguments": ["--worker-class", worker_class, "--workers", workers, "--threads", threads or "1"],
        "env": {
            **{switches[option]: "0" for option in options if option in switches},
            **dict(settings[option] for option in options if option in settings),
        },
    }


def _balance(config: dict, concurrency: int) -> list[str]:
    """gthread: each worker takes at most its share of the volunteers' keep-alive connections.

    A keep-alive connection stays with the worker that accepted it, and when 32 clients connect at once
    one worker can take most of them: their latency then doubles while the other worker idles (seen here as
    per-volunteer mean latencies of 26 to 98 ms). A proxy in front of gunicorn spreads requests over its
    upstream connections; this cap does the same for the benchmark's direct connections.
    """
    arguments = config["arguments"]
    if arguments[arguments.index("--worker-class") + 1] != "gthread":
        return []
    workers = int(arguments[arguments.index("--workers") + 1])
    return ["--worker-connections", str(-(-concurrency // workers))]


def start_gunicorn(config: dict, database_url: str, concurrency: int) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore",
        # Volunteers here vote as fast as the server answers: the rate limits still count every request (their
        # cost is measured) but are set too high to refuse one.
        "API_USER_RATE": "100000000/min",
        "API_VOTE_RATE": "100000000/min",
        **config["env"],
    }
    command = [
        sys.executable, "-m", "gunicorn", "vote_path_app:application",
        "--pythonpath", str(ROOT / "bench"),
        "--bind", f"127.0.0.1:{port}",
        *config["arguments"],
        *_balance(config, concurrency),
        "--preload",  # Django is set up before the fork: workers answer at once, CPU is not boot time
        "--backlog", "2048",
        "--keep-alive", "30",
        "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start listening within 60 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- baseline ---------------------------------------------------------------------------------
BASE_INSERT = (
    "INSERT INTO feedback_vote (pair_id, volunteer_id, choice, left_is_a, idempotency_key, rationale, time_taken_ms,"
    " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
BASE_UPDATE = (
    "UPDATE feedback_pair SET votes_count = votes_count + 1, claims_count = claims_count + 0, last_vote_at = %s,"
    " state = CASE WHEN state = 'open' AND votes_count >= votes_wanted - 1 THEN 'complete' ELSE state END"
    " WHERE id = %s"
)


class BaselineVoter:
    """One baseline thread's voters and place: every (voter, pair) once, carried across rounds."""

    def __init__(self, index: int, stride: int, users: list[int], pairs: int):
        self.index, self.stride, self.users, self.pairs = index, stride, users, pairs
        self.user = 0
        self.pair = pairs - index

    def next(self) -> tuple[int, int]:
        if self.pair <= 0:
            self.user, self.pair = self.user + 1, self.pairs - self.index
        vote = (self.users[self.user], self.pair)
        self.pair -= self.stride
        return vote


def baseline_run(database_url: str, voters: list[BaselineVoter], seconds: float, db: str) -> dict:
    """psycopg alone: one transaction per vote, inserting the vote row and updating the pair's counters."""
    import psycopg
    from django.utils import timezone

    start_at = time.perf_counter() + 0.5
    stop_at = start_at + seconds
    counts = []
    lock = threading.Lock()

    def worker(voter: BaselineVoter) -> None:
        done = errors = 0
        with psycopg.connect(database_url) as conn:
            while time.perf_counter() < start_at:
                time.sleep(0.01)
            while time.perf_counter() < stop_at:
                user_id, pair_id = voter.next()
                now = timezone.now()
                try:
                    with conn.transaction():
                        conn.execute(BASE_INSERT, (pair_id, user_id, "a", True, uuid.uuid4().hex, "", None, now))
                        conn.execute(BASE_UPDATE, (now, pair_id))
                    done += 1
                except psycopg.Error:
                    errors += 1
            with lock:
                counts.append((done, errors))
            # Keep the connection (and its backend's CPU count) until it has been read.
            finished.wait()
            measured.wait()

    finished = threading.Barrier(len(voters) + 1)
    measured = threading.Event()
    threads = [threading.Thread(target=worker, args=(voter,)) for voter in voters]
    for thread in threads:
        thread.start()
    while time.perf_counter() < start_at:
        time.sleep(0.005)
    pg_start, own_start = _cpu_of_postgres(db), os.times()
    finished.wait()
    pg_after, own_after = _cpu_of_postgres(db), os.times()
    measured.set()
    for thread in threads:
        thread.join()
    done = max(sum(c[0] for c in counts), 1)
    return {
        "tx_per_s": sum(c[0] for c in counts) / seconds,
        "errors": sum(c[1] for c in counts),
        "postgres_cpu_ms_per_tx": 1000 * _cpu_delta(pg_start, pg_after) / done,
        "client_cpu_ms_per_tx": 1000 * (own_after.user + own_after.system - own_start.user - own_start.system) / done,
    }


def check_counts() -> str:
    """Every pair's vote count against its vote rows, after both runs: a fast path must not lose a count."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FILTER (WHERE p.votes_count <> coalesce(v.n, 0)), coalesce(sum(v.n), 0)
            FROM feedback_pair p LEFT JOIN (SELECT pair_id, count(*) n FROM feedback_vote GROUP BY pair_id) v
            ON v.pair_id = p.id"""
        )
        wrong, total = cursor.fetchone()
    connection.close()
    return f"{total:,} vote rows, {wrong} pair(s) whose count disagrees"


# --- main -------------------------------------------------------------------------------------
def _server_admin(args):
    import psycopg

    return psycopg.connect(f"{args.server}/postgres", autocommit=True)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    configs = [parse_config(spec) for spec in args.configs]
    database_url = f"{args.server}/{args.db}"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback.settings")
    print(
        f"vote path: {args.concurrency} volunteers, {args.seconds:g} s per run (after {args.warmup:g} s warm-up), "
        f"{args.rounds} round(s), {args.pairs:,} pairs ({args.gold_fraction:.0%} gold); "
        f"gunicorn {' | '.join(args.configs)} (gthread workers take an equal share of the connections)",
        flush=True,
    )

    with _server_admin(args) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{args.db}"')
    server = None
    api_results: dict[str, list[dict]] = {config["spec"]: [] for config in configs}
    base_results: list[dict] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        migrated = time.perf_counter()
        # Room for 10,000 baseline transactions a second: each voter votes on each pair at most once.
        sweeps = int(args.rounds * args.seconds * 10_000 / max(args.pairs, 1)) + 2
        data = load(args.pairs, args.concurrency, baseline_users=args.concurrency * sweeps,
                    gold_fraction=args.gold_fraction)  # fmt: skip
        users = data["base_users"]
        voters = [
            BaselineVoter(i, args.concurrency, users[i :: args.concurrency], data["pairs"])
            for i in range(args.concurrency)
        ]
        print(f"  set-up: migrate {migrated - started:.1f} s, load {time.perf_counter() - migrated:.1f} s", flush=True)

        for round_no in range(1, args.rounds + 1):
            base = baseline_run(database_url, voters, args.seconds, args.db)
            base_results.append(base)
            print(f"  round {round_no}: baseline {base['tx_per_s']:.0f} tx/s (errors {base['errors']})", flush=True)
            for config in configs:
                server, port = start_gunicorn(config, database_url, args.concurrency)
                api = api_run(server, port, data["api"], args.seconds, args.warmup, args.db)
                stop(server)
                server = None
                api_results[config["spec"]].append(api)
                print(
                    f"  round {round_no}: {config['spec']:<24} {api['votes_per_s']:5.0f} votes/s  "
                    f"p50 {api['p50_ms']:6.1f}  p90 {api['p90_ms']:6.1f}  p99 {api['p99_ms']:6.1f}  "
                    f"max {api['max_ms']:6.0f} ms  errors {api['errors']}  "
                    f"ratio {api['votes_per_s'] / base['tx_per_s']:.3f}",
                    flush=True,
                )
                means = api["client_means_ms"]
                if means:
                    print(
                        f"    mean latency per volunteer: {means[0]:.0f} to {means[-1]:.0f} ms; connections closed "
                        f"by the server: {api['closed_by_server']} in {api['requests']} requests"
                    )
                if args.timeline:
                    print(
                        "    per second (requests, p99 ms): "
                        + "  ".join(f"{sec}:{n}/{p:.0f}" for sec, n, p in api["timeline"])
                    )
                if api["first_error"]:
                    print(f"    first error: {api['first_error']}")
                if api["exhausted"]:
                    print(f"    {api['exhausted']} volunteer(s) ran out of pairs: use more --pairs")
        consistency = check_counts()
    finally:
        if server is not None:
            stop(server)
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            with _server_admin(args) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')

    tx = statistics.median(r["tx_per_s"] for r in base_results)
    base_errors = sum(r["errors"] for r in base_results)
    base_cpu = statistics.median(r["postgres_cpu_ms_per_tx"] + r["client_cpu_ms_per_tx"] for r in base_results)
    print(
        f"baseline (psycopg, {args.concurrency} threads): {tx:.0f} tx/s, errors {base_errors}; CPU per transaction: "
        f"PostgreSQL {statistics.median(r['postgres_cpu_ms_per_tx'] for r in base_results):.2f} ms, "
        f"psycopg client {statistics.median(r['client_cpu_ms_per_tx'] for r in base_results):.2f} ms"
    )
    print(f"check: {consistency}")
    for spec, results in api_results.items():

        def median(key: str) -> float:
            return statistics.median(r[key] for r in results)  # noqa: B023

        votes, p99, errors = median("votes_per_s"), median("p99_ms"), sum(r["errors"] for r in results)
        ratio = votes / tx if tx else float("nan")
        met = ratio >= TARGET_RATIO and p99 < TARGET_P99_MS and errors == 0 and " 0 pair(s)" in consistency
        print(
            f"API {spec}: {votes:.0f} votes/s, p50 {median('p50_ms'):.1f} ms, p99 {p99:.1f} ms, errors {errors}; "
            f"CPU per vote: gunicorn {median('server_cpu_ms_per_vote'):.2f} ms, PostgreSQL "
            f"{median('postgres_cpu_ms_per_vote'):.2f} ms, load generator {median('client_cpu_ms_per_vote'):.2f} ms"
        )
        api_cpu = (
            median("server_cpu_ms_per_vote") + median("postgres_cpu_ms_per_vote") + median("client_cpu_ms_per_vote")
        )
        print(
            f"  ratio votes/s / baseline tx/s: {ratio:.3f} (target >= {TARGET_RATIO}, p99 < {TARGET_P99_MS} ms, "
            f"zero errors): {'met' if met else 'NOT met'}; "
            f"by CPU (baseline CPU per tx / API CPU per vote, less sensitive to other load): {base_cpu / api_cpu:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
