"""Running the crowd: accounts and tokens for the simulated volunteers, then their votes through the API.

Volunteers take turns (a shuffled round robin), one vote per turn, so every profile meets the pairs in
proportion to its size; ``concurrency`` threads take turns in parallel against a running server. A turn:
``GET /api/v1/pairs/next/`` when the volunteer holds no pair (the vote's answer carries the next one), the
oracle's facts for that pair, the profile's choice, ``POST /api/v1/votes/`` with an idempotency key made from
the account and the pair, so a retried or repeated run lands each vote once.

Each choice is drawn from a generator seeded by (seed, account, pair): the same seed gives the same votes
whatever order the server hands the pairs out in.

Reading time is either waited (``reading_seconds``: real sleeps, for a load test) or simulated
(``SimulatedTime``): the crowd votes at machine speed, and the harness writes each vote's times where they would
have been had the volunteer read that long: the assignment's hand-out moved back by the reading time (the server
measures a vote's time from it), the vote stamped at the volunteer's own clock. Quality control, which reads
those times, then sees a crowd of people, not of scripts (issue 10's loop benchmark runs it this way).

Every vote's answer claims the volunteer's next pair, so a run cut short by its bounds leaves each volunteer
holding one pair until the assignment expires (``ASSIGNMENT_TTL_SECONDS``) or the same crowd runs again
(a re-run answers the pairs it holds first).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection
from django.utils import timezone
from knox.models import AuthToken

from feedback.accounts.services import api_token_issue, volunteer_has_accepted_terms, volunteer_terms_accept
from feedback.models import Assignment, Vote

from .oracle import Oracle
from .profiles import PROFILES, Profile, mix_apportion, screen_choice, volunteer_accuracy

NEXT = "/api/v1/pairs/next/"
VOTES = "/api/v1/votes/"
TOKEN_NAME = "crowd simulator"


class CrowdError(RuntimeError):
    """The API answered something a volunteer cannot go on from."""


@dataclass
class Member:
    username: str
    profile: Profile
    accuracy: float
    token: str = ""
    token_id: str = ""
    pending: dict | None = None
    done: bool = False
    cast: int = 0
    replayed: int = 0
    conflicts: int = 0
    user_id: int = 0
    clock: datetime | None = None  # SimulatedTime: when this volunteer sees the next pair


@dataclass(frozen=True)
class SimulatedTime:
    """Reading time simulated, not waited: a profile reads ``reading_seconds`` x its ``reading`` share x 0.5-1.5,
    then takes ``pause`` seconds before the next pair; each volunteer's clock starts ``start`` + 0-60 s."""

    reading_seconds: float
    start: datetime
    pause: tuple[float, float] = (1.0, 10.0)


@dataclass
class RunResult:
    stopped: str = "no pair left"
    wall_seconds: float = 0.0
    vote_latencies_ms: list[float] = field(default_factory=list)
    error: str = ""


def username_for(seed: int, profile: str, index: int) -> str:
    return f"crowd-{seed}-{profile}-{index:04d}"


def idempotency_key(member: Member, pair_id: int) -> str:
    return f"{member.username}-p{pair_id}"


def crowd_enlist(*, mix: dict[str, int], volunteers: int, seed: int) -> list[Member]:
    """The crowd's accounts (made on first use, found again by name on a re-run), with the terms accepted."""
    users = get_user_model().objects
    members = []
    for name, count in mix_apportion(mix, volunteers).items():
        for index in range(1, count + 1):
            username = username_for(seed, name, index)
            user = users.filter(username=username).first() or users.create_user(username=username)
            if not volunteer_has_accepted_terms(user):
                volunteer_terms_accept(user=user)
            accuracy = volunteer_accuracy(PROFILES[name], random.Random(f"{seed}:{username}"))
            members.append(Member(username=username, profile=PROFILES[name], accuracy=accuracy, user_id=user.pk))
    return members


def crowd_tokens_issue(members: list[Member], *, lifetime_seconds: float) -> None:
    """A fresh API token per volunteer, expiring soon after the run (``crowd_tokens_revoke`` deletes them)."""
    users = get_user_model().objects.in_bulk([m.username for m in members], field_name="username")
    for member in members:
        instance, member.token = api_token_issue(
            user=users[member.username], name=TOKEN_NAME, ttl=timedelta(seconds=lifetime_seconds)
        )
        member.token_id = instance.pk


def crowd_tokens_revoke(members: list[Member]) -> None:
    AuthToken.objects.filter(pk__in=[m.token_id for m in members if m.token_id]).delete()


class _Budget:
    """The run's bounds: votes left and a deadline."""

    def __init__(self, max_votes: int, max_seconds: float) -> None:
        self.left = max_votes
        self.deadline = time.monotonic() + max_seconds
        self.lock = threading.Lock()

    def take(self) -> str | None:
        """None when a vote may be cast (and counts it), else why the run stops."""
        with self.lock:
            if time.monotonic() >= self.deadline:
                return "max seconds"
            if self.left <= 0:
                return "max votes"
            self.left -= 1
            return None

    def give_back(self) -> None:
        with self.lock:
            self.left += 1


def _expect(status: int, body, wanted: tuple[int, ...], what: str) -> None:
    if status not in wanted:
        raise CrowdError(f"{what}: HTTP {status} {body}")


def _turn(
    member: Member, *, api, oracle: Oracle, seed: int, reading_seconds: float, simulated: SimulatedTime | None
) -> tuple[bool, float]:
    """One turn of one volunteer: (whether a new vote was stored, the vote request's latency in ms)."""
    if member.pending is None:
        status, body = api.request("GET", NEXT, token=member.token)
        if status == 204:
            member.done = True
            return False, 0.0
        _expect(status, body, (200,), f"{member.username}: GET {NEXT}")
        member.pending = body
    pair_id = member.pending["pair"]
    left, right = member.pending["left"]["text"], member.pending["right"]["text"]
    facts = oracle.facts(pair_id)
    rng = random.Random(f"{seed}:{member.username}:{pair_id}")
    choice = screen_choice(
        member.profile,
        accuracy=member.accuracy,
        honest=facts.honest,
        left_is_a=facts.left_is_a(left, right),
        left=left,
        right=right,
        rng=rng,
    )
    voted_at = _read(member, pair_id, rng, reading_seconds=reading_seconds, simulated=simulated)
    vote = {"pair": pair_id, "choice": choice, "idempotency_key": idempotency_key(member, pair_id)}
    started = time.perf_counter()
    status, body = api.request("POST", VOTES, token=member.token, body=vote)
    latency = (time.perf_counter() - started) * 1000
    if status == 409:  # a different vote on this pair is stored already (not by this seed's rule)
        member.conflicts += 1
        member.pending = None
        return False, latency
    _expect(status, body, (200, 201), f"{member.username}: POST {VOTES} {vote}")
    if status == 201 and voted_at is not None:
        Vote.objects.filter(pk=body["id"]).update(created_at=voted_at)
    member.cast += status == 201
    member.replayed += status == 200
    member.pending = body["next"]
    member.done = member.pending is None
    return status == 201, latency


def _read(member: Member, pair_id: int, rng: random.Random, *, reading_seconds: float,
          simulated: SimulatedTime | None) -> datetime | None:  # fmt: skip
    """The volunteer reads the pair: waits ``reading_seconds`` x the profile's share, or, with ``simulated``, moves
    the hand-out back by the simulated reading time and returns when the vote would have been cast."""
    if simulated is None:
        if reading_seconds and member.profile.reading:
            time.sleep(reading_seconds * member.profile.reading * rng.uniform(0.5, 1.5))
        return None
    read = timedelta(seconds=simulated.reading_seconds * member.profile.reading * rng.uniform(0.5, 1.5))
    Assignment.objects.filter(
        volunteer_id=member.user_id, pair_id=pair_id, voted_at__isnull=True, skipped_at__isnull=True
    ).update(created_at=timezone.now() - read)
    if member.clock is None:
        member.clock = simulated.start + timedelta(seconds=random.Random(member.username).uniform(0, 60))
    voted_at = member.clock + read
    member.clock = voted_at + timedelta(seconds=rng.uniform(*simulated.pause))
    return voted_at


def crowd_run(
    members: list[Member],
    *,
    api,
    seed: int,
    max_votes: int,
    max_seconds: float,
    concurrency: int = 1,
    reading_seconds: float = 0.0,
    simulated: SimulatedTime | None = None,
) -> RunResult:
    """Volunteers take turns until none has a pair left, or the votes or the time run out."""
    result = RunResult()
    oracle = Oracle()
    budget = _Budget(max_votes, max_seconds)
    queue = deque(random.Random(seed).sample(members, len(members)))
    state = {"in_flight": 0, "stop": ""}
    ready = threading.Condition()

    def work() -> None:
        while True:
            with ready:
                while not queue and state["in_flight"] and not state["stop"]:
                    ready.wait()
                if state["stop"] or not queue:
                    return
                member = queue.popleft()
                state["in_flight"] += 1
            reason = budget.take()
            voted, latency = False, 0.0
            try:
                if reason is None:
                    voted, latency = _turn(
                        member, api=api, oracle=oracle, seed=seed, reading_seconds=reading_seconds, simulated=simulated
                    )
            except Exception as exc:  # noqa: BLE001 (any failure stops the crowd; the report says which)
                reason, result.error = "error", f"{type(exc).__name__}: {exc}"
            with ready:
                if reason is None and not voted:
                    budget.give_back()
                if voted:
                    result.vote_latencies_ms.append(latency)
                state["in_flight"] -= 1
                state["stop"] = state["stop"] or (reason or "")
                if not member.done and not reason:
                    queue.append(member)
                ready.notify_all()

    started = time.monotonic()
    if concurrency <= 1:
        work()
    else:
        threads = [threading.Thread(target=_in_thread, args=(work,), daemon=True) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    result.wall_seconds = time.monotonic() - started
    result.stopped = state["stop"] or "no pair left"
    return result


def _in_thread(work) -> None:
    """A worker thread's own database connection (the oracle's reads), closed when it ends."""
    close_old_connections()
    try:
        work()
    finally:
        connection.close()
