"""Faults under load: volunteers vote through the API while parts of the stack fail, one after another.

``run(stack, ...)`` drives a ``tests.drill_stack.Stack`` (its own PostgreSQL cluster, Redis, gunicorn and a
Celery worker that pauses each build, ``tests.paused_snapshots``) through these phases, with ``volunteers``
threads voting the whole time:

1. ``steady``: nothing fails;
2. ``gunicorn-worker-killed``: SIGKILL one gunicorn worker (the master starts another);
3. ``backends-terminated``: ``pg_terminate_backend`` on every connection to the database;
4. ``postgres-restarted``: ``pg_ctl stop -m fast``, a pause, ``pg_ctl start``;
5. ``redis-stopped``: a snapshot requested as Redis stops and one while it is down (503 + Retry-After),
   Redis started again, the refused request retried until accepted;
6. ``worker-killed-mid-build``: a snapshot requested, its build seen started, the Celery pool process killed;
7. ``recovered``: nothing fails; every request must now succeed.

Each vote carries an idempotency key; after a 503 or a broken connection the client sends the same vote again
until it gets an answer (a 2xx, or a 4xx), as a real client would. ``run`` returns every outcome and the
checks' inputs; ``verdict(report)`` lists what broke the rules (empty when all held).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.drill_stack import Stack

ALLOWED = {200, 201, 202, 204, 400, 401, 403, 404, 409, 503}


@dataclass
class Outcome:
    phase: str
    what: str  # "next", "vote", "snapshot"
    status: int  # 0: no HTTP answer (see error)
    seconds: float
    error: str = ""
    json_body: bool = True
    started: float = 0.0  # time.monotonic() when it was sent


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: dict[int, tuple[int, str]] = field(default_factory=dict)  # vote id -> (user id, key)
    unanswered: list[tuple[int, str]] = field(default_factory=list)  # votes still being retried at the end
    stored: list[tuple[int, int, str]] = field(default_factory=list)  # (vote id, user id, key) in the database
    snapshots: dict[int, str] = field(default_factory=dict)  # version accepted (202) -> its final state
    refused_snapshots: int = 0  # 503s while Redis was down
    phases: list[tuple[str, float]] = field(default_factory=list)
    timeout: float = 15.0
    notes: list[str] = field(default_factory=list)
    web_killed_at: float = 0.0  # time.monotonic() of the gunicorn worker's SIGKILL


class Drill:
    def __init__(self, stack: Stack, *, volunteers: int, think: float, timeout: float) -> None:
        self.stack = stack
        self.tokens = stack.seed["volunteers"][:volunteers]
        self.think = think
        self.report = Report(timeout=timeout)
        self.phase = "steady"
        self.stop = threading.Event()
        self.lock = threading.Lock()

    # --- HTTP ---------------------------------------------------------------------------------
    def call(self, session: requests.Session, what: str, method: str, path: str, **kwargs) -> requests.Response | None:
        began = time.monotonic()
        phase = self.phase
        try:
            response = session.request(method, self.stack.base_url + path, timeout=self.report.timeout, **kwargs)
        except requests.RequestException as exc:
            with self.lock:
                self.report.outcomes.append(
                    Outcome(phase, what, 0, time.monotonic() - began, type(exc).__name__, started=began)
                )
            return None
        json_body = response.status_code == 204 or response.headers.get("Content-Type", "").startswith(
            "application/json"
        )
        with self.lock:
            self.report.outcomes.append(
                Outcome(
                    phase, what, response.status_code, time.monotonic() - began, json_body=json_body, started=began
                )
            )
        return response

    def volunteer(self, user_id: int, token: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        pair, pending = None, None
        while not self.stop.is_set():
            if pending is None and pair is None:
                response = self.call(session, "next", "GET", "/api/v1/pairs/next/")
                if response is not None and response.status_code == 200:
                    pair = response.json()["pair"]
                elif response is not None and response.status_code == 204:
                    time.sleep(0.5)  # nothing left for this volunteer
                else:
                    session.close()  # a fresh connection after a broken one
                    time.sleep(0.2)
                continue
            if pending is None:
                pending = (pair, uuid.uuid4().hex)
            body = {"pair": pending[0], "choice": "left", "idempotency_key": pending[1]}
            response = self.call(session, "vote", "POST", "/api/v1/votes/", json=body)
            if response is None or response.status_code == 503:
                session.close()
                time.sleep(0.2)
                continue  # the same vote again: it must land once
            if response.status_code in (200, 201):
                data = response.json()
                with self.lock:
                    self.report.acknowledged[data["id"]] = (user_id, pending[1])
                pair = data["next"]["pair"] if data["next"] else None
            else:
                pair = None
            pending = None
            time.sleep(self.think)
        if pending is not None:
            with self.lock:
                self.report.unanswered.append((user_id, pending[1]))

    # --- snapshots ------------------------------------------------------------------------------
    def maintainer(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.stack.seed['maintainer']}"
        return session

    def request_snapshot(self, session: requests.Session) -> int | None:
        """POST /datasets/: the version on a 202; None on a 503 (which must carry Retry-After)."""
        response = self.call(session, "snapshot", "POST", "/api/v1/datasets/", json={})
        if response is None:
            return None
        if response.status_code == 202:
            version = response.json()["version"]
            self.report.snapshots[version] = "building"
            return version
        if response.status_code == 503:
            self.report.refused_snapshots += 1
            if not response.headers.get("Retry-After"):
                self.report.notes.append("a 503 without Retry-After")
        return None

    def snapshot_rows(self) -> dict[int, tuple[str, float]]:
        rows = self.stack.postgres.sql(
            "SELECT version, state, progress FROM feedback_datasetsnapshot", db=self.stack.db
        )
        return {version: (state, progress) for version, state, progress in rows}

    def wait_built(self, versions: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                rows = self.snapshot_rows()
            except Exception:  # noqa: BLE001 (the database may be restarting)
                rows = {}
            for version in versions:
                if version in rows:
                    self.report.snapshots[version] = rows[version][0]
            if all(self.report.snapshots.get(v) in ("published", "failed") for v in versions):
                return
            time.sleep(0.5)

    # --- phases ---------------------------------------------------------------------------------
    def enter(self, phase: str) -> None:
        self.phase = phase
        self.report.phases.append((phase, time.monotonic()))

    def redis_phase(self, settle: float) -> None:
        session = self.maintainer()
        accepted = []
        racing = threading.Thread(target=lambda: accepted.append(self.request_snapshot(self.maintainer())))
        racing.start()
        self.stack.redis.stop()  # during (or just after) the first request
        racing.join()
        if self.request_snapshot(session) is not None:  # Redis is down: refused, not "building"
            self.report.notes.append("a snapshot was accepted while Redis was down")
        time.sleep(settle)
        self.stack.redis.start()
        deadline = time.monotonic() + 60
        while (version := self.request_snapshot(session)) is None and time.monotonic() < deadline:
            time.sleep(1)  # the client retries after Retry-After (shortened here)
        versions = [v for v in [*accepted, version] if v is not None]
        self.wait_built(versions, timeout=120)

    def worker_phase(self) -> None:
        session = self.maintainer()
        version = None
        deadline = time.monotonic() + 30
        while version is None and time.monotonic() < deadline:
            version = self.request_snapshot(session)
        if version is None:
            self.report.notes.append("no snapshot accepted for the worker phase")
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state, progress = self.snapshot_rows().get(version, ("", 0.0))
            if state == "building" and progress > 0:  # paused mid-build by tests.paused_snapshots
                self.stack.worker.kill_one_child()
                break
            time.sleep(0.1)
        else:
            self.report.notes.append(f"the build of v{version} was never seen running")
        self.wait_built([version], timeout=120)

    def run(self, *, phase_seconds: float, postgres_down: float) -> Report:
        threads = [threading.Thread(target=self.volunteer, args=tuple(t)) for t in self.tokens]
        for thread in threads:
            thread.start()
        try:
            self.enter("steady")
            time.sleep(phase_seconds)
            self.enter("gunicorn-worker-killed")
            self.report.web_killed_at = time.monotonic()
            self.stack.web.kill_one_child()
            time.sleep(phase_seconds)
            self.enter("backends-terminated")
            self.report.notes.append(f"terminated {self.stack.postgres.terminate_backends(self.stack.db)} backends")
            time.sleep(phase_seconds)
            self.enter("postgres-restarted")
            self.stack.postgres.stop("fast")
            time.sleep(postgres_down)
            self.stack.postgres.start()
            time.sleep(phase_seconds)
            self.enter("redis-stopped")
            self.redis_phase(settle=postgres_down)
            self.enter("worker-killed-mid-build")
            self.worker_phase()
            self.enter("recovered")
            time.sleep(phase_seconds)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=self.report.timeout + 5)
        self.report.stored = self.stack.postgres.sql(
            "SELECT id, volunteer_id, idempotency_key FROM feedback_vote", db=self.stack.db
        )
        self.report.snapshots.update(
            {v: s for v, (s, _) in self.snapshot_rows().items() if v in self.report.snapshots}
        )
        return self.report


def run(stack: Stack, *, volunteers: int = 8, phase_seconds: float = 4.0, postgres_down: float = 3.0,
        think: float = 0.02, timeout: float = 15.0) -> Report:  # fmt: skip
    return Drill(stack, volunteers=volunteers, think=think, timeout=timeout).run(
        phase_seconds=phase_seconds, postgres_down=postgres_down
    )


def verdict(report: Report) -> list[str]:
    """What broke the drill's rules; empty when every rule held."""
    problems = [note for note in report.notes if not note.startswith("terminated")]
    stored = {vote_id: (user, key) for vote_id, user, key in report.stored}
    lost = sorted(set(report.acknowledged) - set(stored))
    if lost:
        problems.append(f"{len(lost)} acknowledged votes are not in the database: {lost[:10]}")
    changed = [i for i in set(report.acknowledged) & set(stored) if report.acknowledged[i] != stored[i]]
    if changed:
        problems.append(f"{len(changed)} acknowledged ids hold another vote: {changed[:10]}")
    keys = Counter((user, key) for user, key in stored.values())
    doubled = [k for k, n in keys.items() if n > 1]
    if doubled:
        problems.append(f"{len(doubled)} votes stored more than once")
    unacknowledged = {stored[i] for i in set(stored) - set(report.acknowledged)}
    if not unacknowledged <= set(report.unanswered):
        problems.append(f"{len(unacknowledged - set(report.unanswered))} stored votes no client was told about")
    for outcome in report.outcomes:
        if outcome.status == 0 and outcome.error in ("ReadTimeout", "Timeout", "ConnectTimeout"):
            problems.append(f"a {outcome.what} request hung past {report.timeout} s in {outcome.phase}")
        elif outcome.status == 0 and not _on_the_killed_worker(outcome, report.web_killed_at):
            problems.append(f"a {outcome.what} request got no answer ({outcome.error}) in {outcome.phase}")
        elif outcome.status and outcome.status not in ALLOWED:
            problems.append(f"a {outcome.what} request got {outcome.status} in {outcome.phase}")
        elif outcome.status and not outcome.json_body:
            problems.append(f"a {outcome.what} request got a non-JSON {outcome.status} in {outcome.phase}")
        elif outcome.phase == "recovered" and outcome.status not in (200, 201, 202, 204):
            problems.append(f"after recovery a {outcome.what} request got {outcome.status or outcome.error}")
    not_built = {v: s for v, s in report.snapshots.items() if s != "published"}
    if not_built:
        problems.append(f"accepted snapshots not built: {not_built}")
    if report.refused_snapshots == 0:
        problems.append("no snapshot request was refused while Redis was down")
    return sorted(set(problems))


def _on_the_killed_worker(outcome: Outcome, killed_at: float) -> bool:
    """A request the killed gunicorn worker was serving, or sent on a keep-alive connection it held (the first
    request after the kill on each such connection): no HTTP answer can come back. A buffering proxy in front
    would answer these with a 502; the client sends the vote again either way."""
    return outcome.started <= killed_at + KILLED_CONNECTION_WINDOW and outcome.started + outcome.seconds >= killed_at


KILLED_CONNECTION_WINDOW = 2.0


def summary(report: Report) -> dict:
    by_phase: dict[str, Counter] = {}
    for outcome in report.outcomes:
        by_phase.setdefault(outcome.phase, Counter())[outcome.status or outcome.error] += 1
    return {
        "requests": len(report.outcomes),
        "acknowledged_votes": len(report.acknowledged),
        "stored_votes": len(report.stored),
        "unanswered_at_stop": len(report.unanswered),
        "no_answer_from_the_killed_worker": sum(
            1 for o in report.outcomes if o.status == 0 and _on_the_killed_worker(o, report.web_killed_at)
        ),
        "snapshots": dict(sorted(report.snapshots.items())),
        "refused_snapshots": report.refused_snapshots,
        "max_seconds": round(max((o.seconds for o in report.outcomes), default=0.0), 2),
        "by_phase": {phase: dict(counts) for phase, counts in by_phase.items()},
        "notes": report.notes,
    }
