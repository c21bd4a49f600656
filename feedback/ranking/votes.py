"""Recording a vote, exactly once: a retry with the same idempotency key counts nothing.

On PostgreSQL the usual case is one statement (``_VOTE_SQL``); the ORM code is the general path. Unique
constraints ``(volunteer, pair)`` and ``(volunteer, idempotency_key)`` make a concurrent retry land once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from feedback.errors import Conflict, NotFound, ServiceError
from feedback.models import MAX_ID, Assignment, DatasetSnapshot, Pair, Vote

from .limits import MAX_KEY_LENGTH, MAX_RATIONALE_LENGTH, MAX_TIME_TAKEN_MS, SCREEN_CHOICES
from .reveal import reveal_body
from .statements import execute_one_or_none, loaded_instance, one_statement_paths


def pair_id_checked(pair_id) -> int:
    if isinstance(pair_id, bool) or not isinstance(pair_id, int) or not 1 <= pair_id <= MAX_ID:
        raise ServiceError(f"pair must be a positive integer id; got {pair_id!r:.40}")
    return pair_id


def choice_from_screen(screen_choice: str, *, left_is_a: bool) -> str:
    """left / right / tie / both_bad, as seen on screen, to the choice stored in terms of completions."""
    if screen_choice == "left":
        return Vote.Choice.A if left_is_a else Vote.Choice.B
    if screen_choice == "right":
        return Vote.Choice.B if left_is_a else Vote.Choice.A
    if screen_choice in ("tie", "both_bad"):
        return screen_choice
    raise ServiceError(f"choice must be one of {', '.join(SCREEN_CHOICES)}; got {screen_choice!r}")


@dataclass(frozen=True)
class VoteResult:
    vote: Vote
    created: bool
    # The pair's known answer ("" for a pair that is not gold) when the vote's statement read it; None: unknown.
    gold_choice: str | None = None
    # What the answer reveals of the pair (reveal.reveal_body), when the vote's statement read it; None: unknown.
    reveal: dict | None = None


def _replay(*, user, pair_id: int, key: str) -> VoteResult | None:
    """The stored vote for this key or pair, or a Conflict if the request contradicts it."""
    for vote in Vote.objects.filter(Q(idempotency_key=key) | Q(pair_id=pair_id), volunteer=user):
        if vote.idempotency_key == key and vote.pair_id == pair_id:
            return VoteResult(vote, created=False)
        if vote.idempotency_key == key:
            raise Conflict(f"idempotency_key {key!r} was already used for a vote on pair {vote.pair_id}")
        raise Conflict(f"you already voted on pair {pair_id} ({vote.screen_choice}); a vote cannot be changed")
    return None


def vote_record(
    *,
    user,
    pair_id: int,
    screen_choice: str,
    key: str,
    rationale: str = "",
) -> VoteResult:
    """Store a volunteer's vote on an assigned pair, exactly once.

    One transaction inserts the vote, bumps the pair's count and closes it at k votes. A retry with the
    same idempotency key returns the stored vote and counts nothing; a different second vote is a Conflict.
    The time taken is the server's measurement, from the assignment's hand-out to this vote (a client
    cannot claim a careful read it did not make).
    """
    key, rationale = _checked_text(key, rationale)
    if screen_choice not in SCREEN_CHOICES:
        raise ServiceError(f"choice must be one of {', '.join(SCREEN_CHOICES)}; got {screen_choice!r}")
    pair_id = pair_id_checked(pair_id)
    if one_statement_paths():
        inserted = _vote_insert_in_one_statement(
            user=user, pair_id=pair_id, screen_choice=screen_choice, key=key, rationale=rationale
        )
        if inserted is not None:
            return inserted
    assignment = (
        Assignment.objects.filter(volunteer=user, pair_id=pair_id)
        .values_list("pk", "pair_id", "left_is_a", "created_at", "skipped_at", "released_at", "voted_at", named=True)
        .first()
    )
    if assignment is None or assignment.voted_at is not None:
        # Only a pair already voted on can hold a vote to replay: the usual first vote skips this query.
        replay = _replay(user=user, pair_id=pair_id, key=key)
        if replay is not None:
            return replay
    if assignment is None:
        raise NotFound(f"pair {pair_id} is not assigned to you")
    if assignment.skipped_at is not None:
        raise Conflict(f"you skipped pair {pair_id}")
    try:
        vote = _vote_insert(
            user=user, assignment=assignment, screen_choice=screen_choice, key=key, rationale=rationale
        )
    except IntegrityError as exc:
        # The key was used on another pair, or a concurrent retry of this request won the race.
        replay = _replay(user=user, pair_id=pair_id, key=key)
        if replay is None:
            raise ServiceError(f"pair {pair_id} cannot take a vote now") from exc
        return replay
    return VoteResult(vote, created=True)


def _checked_text(key: str, rationale: str) -> tuple[str, str]:
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ServiceError(f"idempotency_key must be 1 to {MAX_KEY_LENGTH} characters")
    rationale = " ".join((rationale or "").split())
    if len(rationale) > MAX_RATIONALE_LENGTH:
        raise ServiceError(f"rationale must be at most {MAX_RATIONALE_LENGTH} characters")
    if "\x00" in key or "\x00" in rationale:
        raise ServiceError("idempotency_key and rationale must not contain NUL characters")
    return key, rationale


@transaction.atomic
def _vote_insert(*, user, assignment, screen_choice: str, key: str, rationale: str) -> Vote:
    """The general path: the vote, its count on the pair (closing it at k) and the assignment marked voted."""
    now = timezone.now()
    vote = Vote.objects.create(
        pair_id=assignment.pair_id,
        volunteer=user,
        choice=choice_from_screen(screen_choice, left_is_a=assignment.left_is_a),
        left_is_a=assignment.left_is_a,
        idempotency_key=key,
        rationale=rationale,
        time_taken_ms=_elapsed_ms(assignment.created_at, now),
        created_at=now,
    )
    # A released (expired) assignment gave its claim back: a late vote takes one again.
    reclaim = 1 if assignment.released_at is not None else 0
    Pair.objects.filter(pk=assignment.pair_id).update(
        votes_count=F("votes_count") + 1,
        claims_count=F("claims_count") + reclaim,
        last_vote_at=now,
        state=Case(
            When(
                Q(state=Pair.State.OPEN) & Q(votes_count__gte=F("votes_wanted") - 1),
                then=Value(Pair.State.COMPLETE),
            ),
            default=F("state"),
        ),
    )
    Assignment.objects.filter(pk=assignment.pk).update(voted_at=now)
    return vote


def _elapsed_ms(assigned_at: datetime, now: datetime) -> int | None:
    elapsed = int((now - assigned_at).total_seconds() * 1000)
    return elapsed if 0 <= elapsed <= MAX_TIME_TAKEN_MS else None


# vote_record's usual case as one statement (one round trip, atomic on its own): mark the volunteer's
# unanswered assignment voted, insert the vote in terms of completions, count it on the pair and close the
# pair at k. It returns no row, changing nothing, when the pair is not assigned, already voted on or
# skipped; it fails on the unique constraints when the key was used before. Either way the ORM path below
# then gives the replay or the error.
_VOTE_SQL = """
WITH a AS (
    UPDATE feedback_assignment SET voted_at = %(now)s::timestamptz
    WHERE volunteer_id = %(user)s::bigint AND pair_id = %(pair)s::bigint AND voted_at IS NULL AND skipped_at IS NULL
    RETURNING left_is_a, released_at, created_at
),
v AS (
    INSERT INTO feedback_vote
        (pair_id, volunteer_id, choice, left_is_a, idempotency_key, rationale, time_taken_ms, created_at)
    SELECT %(pair)s::bigint, %(user)s::bigint,
        CASE WHEN a.left_is_a THEN %(choice_left_a)s::varchar ELSE %(choice_left_b)s::varchar END,
        a.left_is_a, %(key)s::varchar, %(rationale)s::varchar,
        -- the server's measurement, as _elapsed_ms computes it
        CASE WHEN %(now)s::timestamptz >= a.created_at
            AND %(now)s::timestamptz - a.created_at <= %(max_ms)s::integer * interval '1 millisecond'
            THEN floor(extract(epoch FROM %(now)s::timestamptz - a.created_at) * 1000)::integer END,
        %(now)s::timestamptz
    FROM a
    RETURNING id, choice, left_is_a, time_taken_ms
),
counted AS (
    UPDATE feedback_pair SET
        votes_count = votes_count + 1,
        -- A released (expired) assignment gave its claim back: a late vote takes one again.
        claims_count = claims_count + (SELECT CASE WHEN a.released_at IS NULL THEN 0 ELSE 1 END FROM a),
        last_vote_at = %(now)s::timestamptz,
        state = CASE WHEN state = 'open' AND votes_count >= votes_wanted - 1 THEN 'complete' ELSE state END
    WHERE id = %(pair)s::bigint AND EXISTS (SELECT 1 FROM v)
    RETURNING gold_choice, prompt_id, completion_a_id, completion_b_id
)
-- with what the answer reveals of the pair (reveal.py), so that the answer needs no other statement
SELECT v.id, v.choice, v.left_is_a, v.time_taken_ms, c.gold_choice,
    pr.test_style <> 'none' AND pr.tests ~ '[^[:space:]]', ca.outcome, ma.name, cb.outcome, mb.name,
    held.version, held.state
FROM v CROSS JOIN counted c
    JOIN feedback_prompt pr ON pr.id = c.prompt_id
    JOIN feedback_completion ca ON ca.id = c.completion_a_id
    JOIN feedback_modelversion ma ON ma.id = ca.model_version_id
    JOIN feedback_completion cb ON cb.id = c.completion_b_id
    JOIN feedback_modelversion mb ON mb.id = cb.model_version_id
    -- reveal.snapshot_holding: a snapshot already holding the vote blocks its undo
    LEFT JOIN LATERAL (SELECT s.version, s.state FROM feedback_datasetsnapshot s
        WHERE s.state IN ('published', 'building') AND s.last_vote_id >= v.id ORDER BY s.version LIMIT 1) held ON true
"""


def _vote_insert_in_one_statement(
    *, user, pair_id: int, screen_choice: str, key: str, rationale: str
) -> VoteResult | None:
    """The stored vote with its pair's known answer ("" if not gold) and its reveal, or None when the ORM path
    must settle it."""
    now = timezone.now()
    params = {
        "user": user.pk,
        "pair": pair_id,
        "choice_left_a": choice_from_screen(screen_choice, left_is_a=True),
        "choice_left_b": choice_from_screen(screen_choice, left_is_a=False),
        "key": key,
        "rationale": rationale,
        "max_ms": MAX_TIME_TAKEN_MS,
        "now": now,
    }
    row = execute_one_or_none(_VOTE_SQL, params)
    if row is None:
        return None
    (vote_id, choice, left_is_a, ms, gold_choice, has_tests, a_outcome, a_model, b_outcome, b_model,
     held_version, held_state) = row  # fmt: skip
    values = {
        "id": vote_id,
        "pair_id": pair_id,
        "volunteer_id": user.pk,
        "choice": choice,
        "left_is_a": left_is_a,
        "idempotency_key": key,
        "rationale": rationale,
        "time_taken_ms": ms,
        "created_at": now,
    }
    vote = loaded_instance(Vote, values)
    held = None
    if held_version is not None:
        held = loaded_instance(DatasetSnapshot, {"version": held_version, "state": held_state})
    reveal = reveal_body(vote, has_tests=has_tests, a=(a_outcome, a_model), b=(b_outcome, b_model), held=held)
    return VoteResult(vote, created=True, gold_choice=gold_choice or "", reveal=reveal)
