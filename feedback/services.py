"""Writes that span models: recording votes, skips and reports, forming pairs.

Every function here is keyword-only, named ``<entity>_<action>``, and raises ``ServiceError`` (400)
or ``Conflict`` (409) for input it refuses; views turn those into an error message.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from . import selectors
from .errors import Conflict, ServiceError  # noqa: F401 (re-exported until the reshape lands)
from .models import Assignment, Completion, Flag, Pair, Vote, whitespace_normalised

SCREEN_CHOICES = ("left", "right", "tie", "both_bad")
MAX_KEY_LENGTH = 64
MAX_RATIONALE_LENGTH = 280
MAX_ID = 2**63 - 1  # bigint: a larger number would be a database error, not an answer
MAX_MS = 2**31 - 1


def _pair_id(pair_id) -> int:
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
    time_taken_ms: int | None = None,
) -> VoteResult:
    """Store a volunteer's vote on an assigned pair, exactly once.

    One transaction inserts the vote, bumps the pair's count and closes it at k votes. A retry with the
    same idempotency key returns the stored vote and counts nothing; a different second vote is a Conflict.
    """
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ServiceError(f"idempotency_key must be 1 to {MAX_KEY_LENGTH} characters")
    rationale = " ".join((rationale or "").split())
    if len(rationale) > MAX_RATIONALE_LENGTH:
        raise ServiceError(f"rationale must be at most {MAX_RATIONALE_LENGTH} characters")
    if "\x00" in key or "\x00" in rationale:
        raise ServiceError("idempotency_key and rationale must not contain NUL characters")
    if screen_choice not in SCREEN_CHOICES:
        raise ServiceError(f"choice must be one of {', '.join(SCREEN_CHOICES)}; got {screen_choice!r}")
    if time_taken_ms is not None and not 0 <= time_taken_ms <= MAX_MS:
        raise ServiceError("time_taken_ms must be a whole number of milliseconds")
    pair_id = _pair_id(pair_id)

    if selectors.one_statement_paths():
        vote = _vote_insert_in_one_statement(
            user=user, pair_id=pair_id, screen_choice=screen_choice, key=key, rationale=rationale, ms=time_taken_ms
        )
        if vote is not None:
            return VoteResult(vote, created=True)
    assignment = (
        Assignment.objects.filter(volunteer=user, pair_id=pair_id)
        .values_list("pk", "left_is_a", "skipped_at", "released_at", "voted_at", named=True)
        .first()
    )
    if assignment is None or assignment.voted_at is not None:
        # Only a pair already voted on can hold a vote to replay: the usual first vote skips this query.
        replay = _replay(user=user, pair_id=pair_id, key=key)
        if replay is not None:
            return replay
    if assignment is None:
        raise ServiceError(f"pair {pair_id} is not assigned to you")
    if assignment.skipped_at is not None:
        raise ServiceError(f"you skipped pair {pair_id}")

    now = timezone.now()
    try:
        with transaction.atomic():
            vote = Vote.objects.create(
                pair_id=pair_id,
                volunteer=user,
                choice=choice_from_screen(screen_choice, left_is_a=assignment.left_is_a),
                left_is_a=assignment.left_is_a,
                idempotency_key=key,
                rationale=rationale,
                time_taken_ms=time_taken_ms,
                created_at=now,
            )
            # A released (expired) assignment gave its claim back: a late vote takes one again.
            reclaim = 1 if assignment.released_at is not None else 0
            Pair.objects.filter(pk=pair_id).update(
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
    except IntegrityError as exc:
        # The key was used on another pair, or a concurrent retry of this request won the race.
        replay = _replay(user=user, pair_id=pair_id, key=key)
        if replay is None:
            raise ServiceError(f"pair {pair_id} cannot take a vote now") from exc
        return replay
    return VoteResult(vote, created=True)


# vote_record's usual case as one statement (one round trip, atomic on its own): mark the volunteer's
# unanswered assignment voted, insert the vote in terms of completions, count it on the pair and close the
# pair at k. It returns no row, changing nothing, when the pair is not assigned, already voted on or
# skipped; it fails on the unique constraints when the key was used before. Either way the ORM path below
# then gives the replay or the error.
_VOTE_SQL = """
WITH a AS (
    UPDATE feedback_assignment SET voted_at = %(now)s::timestamptz
    WHERE volunteer_id = %(user)s::bigint AND pair_id = %(pair)s::bigint AND voted_at IS NULL AND skipped_at IS NULL
    RETURNING left_is_a, released_at
),
v AS (
    INSERT INTO feedback_vote
        (pair_id, volunteer_id, choice, left_is_a, idempotency_key, rationale, time_taken_ms, created_at)
    SELECT %(pair)s::bigint, %(user)s::bigint,
        CASE WHEN a.left_is_a THEN %(choice_left_a)s::varchar ELSE %(choice_left_b)s::varchar END,
        a.left_is_a, %(key)s::varchar, %(rationale)s::varchar, %(ms)s::integer, %(now)s::timestamptz
    FROM a
    RETURNING id, choice, left_is_a
),
counted AS (
    UPDATE feedback_pair SET
        votes_count = votes_count + 1,
        -- A released (expired) assignment gave its claim back: a late vote takes one again.
        claims_count = claims_count + (SELECT CASE WHEN a.released_at IS NULL THEN 0 ELSE 1 END FROM a),
        last_vote_at = %(now)s::timestamptz,
        state = CASE WHEN state = 'open' AND votes_count >= votes_wanted - 1 THEN 'complete' ELSE state END
    WHERE id = %(pair)s::bigint AND EXISTS (SELECT 1 FROM v)
)
SELECT id, choice, left_is_a FROM v
"""


def _vote_insert_in_one_statement(
    *, user, pair_id: int, screen_choice: str, key: str, rationale: str, ms
) -> Vote | None:
    now = timezone.now()
    params = {
        "user": user.pk,
        "pair": pair_id,
        "choice_left_a": choice_from_screen(screen_choice, left_is_a=True),
        "choice_left_b": choice_from_screen(screen_choice, left_is_a=False),
        "key": key,
        "rationale": rationale,
        "ms": ms,
        "now": now,
    }
    try:
        # Alone it is atomic; inside a caller's transaction a failure must not abort that transaction.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            row = selectors.execute_one(_VOTE_SQL, params)
    except IntegrityError:
        return None
    if row is None:
        return None
    vote_id, choice, left_is_a = row
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
    return selectors.loaded_instance(Vote, values)


@transaction.atomic
def pair_skip(*, user, pair_id: int) -> Assignment:
    """The volunteer passes on an assigned pair; it goes back to others and never returns to them."""
    pair_id = _pair_id(pair_id)
    assignment = Assignment.objects.select_for_update().filter(volunteer=user, pair_id=pair_id).first()
    if assignment is None:
        raise ServiceError(f"pair {pair_id} is not assigned to you")
    if assignment.voted_at is not None:
        raise Conflict(f"you already voted on pair {pair_id}")
    if assignment.skipped_at is None:
        if assignment.released_at is None:
            Pair.objects.filter(pk=pair_id, claims_count__gt=0).update(claims_count=F("claims_count") - 1)
        assignment.skipped_at = timezone.now()
        assignment.save(update_fields=["skipped_at"])
    return assignment


def flag_create(*, user, pair_id: int, reason: str, note: str = "") -> tuple[Flag, bool]:
    """Report a pair (broken / harmful / personal data). Reporting the same thing twice stores it once."""
    if reason not in Flag.Reason.values:
        raise ServiceError(f"reason must be one of {', '.join(Flag.Reason.values)}; got {reason!r}")
    note = " ".join((note or "").split())
    if len(note) > 500:
        raise ServiceError("note must be at most 500 characters")
    if "\x00" in note:
        raise ServiceError("note must not contain NUL characters")
    pair_id = _pair_id(pair_id)
    pair = Pair.objects.filter(pk=pair_id).only("id", "prompt_id").first()
    if pair is None:
        raise ServiceError(f"pair {pair_id} does not exist")
    if not Assignment.objects.filter(volunteer=user, pair_id=pair_id).exists():
        raise ServiceError(f"pair {pair_id} is not assigned to you")
    try:
        with transaction.atomic():
            flag, created = Flag.objects.get_or_create(
                reporter=user, pair=pair, reason=reason, defaults={"prompt_id": pair.prompt_id, "note": note}
            )
    except IntegrityError:
        flag, created = Flag.objects.get(reporter=user, pair=pair, reason=reason), False
    return flag, created


def assignments_release_expired() -> int:
    """Give back the claims of assignments nobody answered in time; returns how many were released."""
    now = timezone.now()
    released = 0
    with transaction.atomic():
        expired = list(
            Assignment.objects.select_for_update(skip_locked=True)
            .filter(expires_at__lt=now, voted_at__isnull=True, skipped_at__isnull=True, released_at__isnull=True)
            .values_list("pk", "pair_id")[:1000]
        )
        for pk, pair_id in expired:
            Assignment.objects.filter(pk=pk).update(released_at=now)
            Pair.objects.filter(pk=pair_id, claims_count__gt=0).update(claims_count=F("claims_count") - 1)
            released += 1
    return released


def pairs_form(
    *,
    completions: Iterable[Completion],
    max_pairs: int | None = None,
    cross_model_only: bool = False,
) -> list[Pair]:
    """Form pairs from completions of one prompt: every two distinct ones, up to the per-prompt cap.

    Two completions that are equal after whitespace normalisation are never paired; a pair that
    already exists is not formed again, and existing pairs count towards the cap.
    """
    completions = sorted(completions, key=lambda c: c.pk)
    if len(completions) < 2:
        return []
    prompt = completions[0].prompt
    cap = settings.CODEPREF["MAX_PAIRS_PER_PROMPT"] if max_pairs is None else max_pairs
    existing = set(Pair.objects.filter(prompt=prompt).values_list("completion_a_id", "completion_b_id"))
    room = cap - len(existing)
    formed: list[Pair] = []
    normalised = {c.pk: whitespace_normalised(c.text) for c in completions}
    for a, b in itertools.combinations(completions, 2):
        if room <= 0:
            break
        if (a.pk, b.pk) in existing or normalised[a.pk] == normalised[b.pk]:
            continue
        if cross_model_only and a.model_version_id == b.model_version_id:
            continue
        formed.append(
            Pair(
                prompt=prompt,
                language=prompt.language,
                completion_a=a,
                completion_b=b,
                decided_by_tests=_decided_by_tests(a, b),
            )
        )
        room -= 1
    Pair.objects.bulk_create(formed, ignore_conflicts=True)
    return formed


def _decided_by_tests(a: Completion, b: Completion) -> bool:
    outcomes = {a.outcome, b.outcome}
    return Completion.Outcome.PASSED in outcomes and len(outcomes) == 2 and Completion.Outcome.NOT_RUN not in outcomes
