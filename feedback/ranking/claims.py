"""Handing out pairs: which pair a volunteer ranks next (a claim, so a write), and giving back expired claims.

``claims_count`` = votes + live assignments, so a pair is handed to at most k volunteers at a time and still
collects its k votes. On PostgreSQL the usual case of ``assignment_claim_next`` is one statement
(``_NEXT_SQL``); the ORM code is the general path.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.utils import timezone

from feedback.models import Assignment, Completion, Pair, Prompt, Volunteer, Vote

from .selectors import SHOWN_RELATED, pending_assignment, shown_pair_fields
from .statements import execute_one_or_none, loaded_instance, one_statement_paths

# A claim run on its own commits without waiting for the disk (see _NEXT_SQL).
ASYNC_CLAIM = True
# Among the pairs with the fewest claims, start at a random one (see _NEXT_SQL).
SPREAD_PICK = True


def assignment_claim_next(*, user) -> Assignment | None:
    """An open pair this volunteer has not voted on or skipped, as an Assignment (which side is left).

    Pairs with the fewest claims (votes plus live assignments) come first, those in the volunteer's
    languages before others; a pair is handed out only while it still needs votes. A pending assignment is
    returned again (a reload shows the same pair). The assignment comes with its pair, prompt and
    completions loaded (their other fields load on access).
    """
    if one_statement_paths():
        row = _next_in_one_statement(user)
        if row is not None:
            return _assignment_from_row(user, row)
    return _next_pair_orm(user)


class ShownPair(NamedTuple):
    """What a volunteer is shown of their next pair, without model instances (the API's hot path)."""

    pair_id: int
    left_is_a: bool
    prompt_text: str
    prompt_language: str
    a_text: str
    b_text: str
    prompt_suffix: str = ""  # fill-in-the-middle: the code after the gap


def assignment_claim_next_shown(*, user) -> ShownPair | None:
    """``assignment_claim_next``, as the few values a client shows (the API's hot path)."""
    if one_statement_paths():
        row = _next_in_one_statement(user)
        if row is not None:
            return ShownPair(row[1], row[2], row[11], row[12], row[13], row[15], row[17])
    assignment = _next_pair_orm(user)
    if assignment is None:
        return None
    pair = assignment.pair
    return ShownPair(
        pair.pk,
        assignment.left_is_a,
        pair.prompt.text,
        pair.prompt.language,
        pair.completion_a.text,
        pair.completion_b.text,
        pair.prompt.suffix,
    )


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


# --- the ORM path ---------------------------------------------------------------------------------------


def _claimable(user, languages: list[str] | None, *, skip_locked: bool = True):
    pairs = Pair.objects.filter(
        state=Pair.State.OPEN,
        claims_count__lt=F("votes_wanted"),
        # Under READ COMMITTED a row claimed and committed after this statement began is re-checked when
        # it is locked, and would still pass the test above: two volunteers asking at once could get the
        # same pair. Comparing with the count as this statement first saw it skips such a row instead.
        claims_count=Subquery(Pair.objects.filter(pk=OuterRef("pk")).values("claims_count")),
    ).exclude(assignments__volunteer=user)
    if languages:
        pairs = pairs.filter(language__in=languages)
    pairs = pairs.order_by("claims_count", "shuffle_key").select_related(*SHOWN_RELATED)
    pairs = pairs.only(*shown_pair_fields(""))
    if connection.features.has_select_for_update_skip_locked:
        # Two volunteers asking at once get different pairs: the second skips the row the first holds.
        pairs = pairs.select_for_update(skip_locked=skip_locked, of=("self",))
    return pairs


def gold_turn_drawn() -> bool:
    """Whether this hand-out is a gold pair by the gold rate (onboarding volunteers always get gold first)."""
    return random.random() < settings.CODEPREF["QC_GOLD_RATE"]


def _held_q() -> Q:
    """Volunteers quality control hands gold pairs only: suspended, flagged, or trusted less than
    ``QC_TRUST_THRESHOLD`` at the last recompute. Their votes would not count; on gold pairs they go on
    measuring the volunteer (trust can recover) without using up pairs that need human judgement.
    (``_NEXT_SQL``'s ``me.held`` is the same rule.)"""
    threshold = settings.CODEPREF["QC_TRUST_THRESHOLD"]
    return Q(suspended_at__isnull=False) | Q(qc_flagged=True) | Q(trust_computed_at__isnull=False, trust__lt=threshold)


def held_to_gold(user) -> bool:
    """Whether quality control hands this volunteer gold pairs only (``_held_q``)."""
    return Volunteer.objects.filter(_held_q(), user=user).exists()


def _gold_turn(user) -> bool:
    onboarding = settings.CODEPREF["QC_ONBOARDING_PAIRS"]
    return gold_turn_drawn() or Vote.objects.filter(volunteer=user)[:onboarding].count() < onboarding


def _claimable_gold(user):
    pairs = Pair.objects.filter(state=Pair.State.GOLD).exclude(assignments__volunteer=user)
    pairs = pairs.order_by("claims_count", "shuffle_key").select_related(*SHOWN_RELATED)
    pairs = pairs.only(*shown_pair_fields(""))
    if connection.features.has_select_for_update_skip_locked:
        pairs = pairs.select_for_update(skip_locked=True, of=("self",))
    return pairs


def _claim(user, languages: list[str], *, gold: bool = False, held: bool = False) -> Assignment | None:
    with transaction.atomic():
        pair = _claimable_gold(user).first() if gold or held else None
        if pair is None and held:
            return None
        if pair is None and languages:
            pair = _claimable(user, languages).first()
        if pair is None:
            pair = _claimable(user, None).first()
        if pair is None and connection.features.has_select_for_update_skip_locked:
            # Every claimable row may be locked by volunteers claiming at this moment: wait for them
            # (PostgreSQL re-checks the claim count on the committed row) rather than say "none left".
            pair = _claimable(user, None, skip_locked=False).first()
        if pair is None:
            return None
        Pair.objects.filter(pk=pair.pk).update(claims_count=F("claims_count") + 1)
        now = timezone.now()
        ttl = timedelta(seconds=settings.CODEPREF["ASSIGNMENT_TTL_SECONDS"])
        return Assignment.objects.create(
            pair=pair, volunteer=user, left_is_a=random.random() < 0.5, created_at=now, expires_at=now + ttl
        )


def _next_pair_orm(user) -> Assignment | None:
    pending = pending_assignment(user)
    if pending is not None:
        return pending
    # the volunteer's languages and whether they are held to gold, in one query
    facts = (
        Volunteer.objects.filter(user=user)
        .annotate(held=ExpressionWrapper(_held_q(), output_field=BooleanField()))
        .values_list("languages", "held")
        .first()
    )
    languages, held = (facts[0] or [], facts[1]) if facts else ([], False)
    gold = _gold_turn(user)
    for _attempt in range(3):
        try:
            assignment = _claim(user, languages, gold=gold, held=held)
        except IntegrityError:
            # The same volunteer asked twice at once and both requests picked the same pair.
            pending = pending_assignment(user)
            if pending is not None:
                return pending
            continue
        if assignment is not None:
            return assignment
        # Nothing claimable: claims held by abandoned assignments may be blocking the last pairs.
        if not assignments_release_expired():
            return None
    return None


# --- the one-statement path (PostgreSQL) ---------------------------------------------------------------


# assignment_claim_next's usual case as one statement: the pending assignment if there is one, else claim the open
# pair with the fewest claims (in the volunteer's languages first) and create its assignment, returning
# what is shown. One round trip and one implicit transaction instead of about eight of each. It returns no
# row when nothing is claimable without waiting (then the ORM path waits for locked rows and releases
# expired claims); the same volunteer claiming twice at once fails on the unique assignment, likewise.
_CLAIMABLE = (
    "p.state = 'open' AND p.claims_count < p.votes_wanted"
    " AND NOT coalesce((SELECT held FROM me), false)"
    # see _claimable: skip a row another claim changed after this statement began
    " AND p.claims_count = (SELECT q.claims_count FROM feedback_pair q WHERE q.id = p.id)"
    " AND NOT EXISTS (SELECT 1 FROM feedback_assignment x"
    " WHERE x.pair_id = p.id AND x.volunteer_id = %(user)s::bigint)"
)
_IN_MY_LANGUAGES = (
    "cardinality((SELECT languages FROM me)) > 0 AND p.language = ANY((SELECT languages FROM me)::varchar[])"
)


def _picks(condition: str) -> str:
    """The claimable pair to lock, as three tries in turn (each runs only if the ones before found none).

    Among the pairs with the fewest claims, the first after a random point, then the first before it:
    volunteers asking at once start at different rows instead of all skipping the same locked ones (that
    queue cost more than the rest of the statement). If none of those is open to this volunteer, the first
    in order of claims.
    """
    least = "p.claims_count = (SELECT claims_count FROM least)"
    tries = (f"{least} AND p.shuffle_key >= %(start)s::integer", f"{least} AND p.shuffle_key < %(start)s::integer", "")
    return ",\n".join(
        f"        (SELECT p.id FROM feedback_pair p\n"
        f"         WHERE {' AND '.join(part for part in (condition, where, _CLAIMABLE) if part)}\n"
        f"         ORDER BY p.claims_count, p.shuffle_key LIMIT 1 FOR UPDATE SKIP LOCKED)"
        for where in tries
    )


# A gold pair (known answer) this volunteer has not had, the least shown first; gold pairs take any number of
# votes (they are never closed), so no claim cap here. Served by the partial index pair_gold_pick.
_GOLD_PICK = """(SELECT p.id FROM feedback_pair p
         WHERE p.state = 'gold' AND NOT EXISTS (SELECT 1 FROM feedback_assignment x
             WHERE x.pair_id = p.id AND x.volunteer_id = %(user)s::bigint)
         ORDER BY p.claims_count, p.shuffle_key LIMIT 1 FOR UPDATE SKIP LOCKED)"""

_NEXT_SQL = f"""
WITH me AS (
    SELECT array(
        SELECT jsonb_array_elements_text(CASE jsonb_typeof(v.languages) WHEN 'array' THEN v.languages END)
    )::varchar[] AS languages,
    -- held_to_gold: quality control hands this volunteer gold pairs only
    (v.suspended_at IS NOT NULL OR v.qc_flagged
        OR (v.trust_computed_at IS NOT NULL AND v.trust < %(threshold)s::float8)) AS held
    FROM feedback_volunteer v WHERE v.user_id = %(user)s::bigint
),
pending AS (
    SELECT a.id, a.pair_id, a.left_is_a, a.created_at, a.expires_at
    FROM feedback_assignment a JOIN feedback_pair p ON p.id = a.pair_id
    WHERE a.volunteer_id = %(user)s::bigint AND a.voted_at IS NULL AND a.skipped_at IS NULL AND a.released_at IS NULL
        AND p.state IN ('open', 'gold')
    ORDER BY a.created_at LIMIT 1
),
least AS (
    SELECT p.claims_count FROM feedback_pair p
    WHERE p.state = 'open' AND p.claims_count < p.votes_wanted
    ORDER BY p.claims_count, p.shuffle_key LIMIT 1
),
turn AS (
    -- A gold pair this time: drawn at the gold rate, always for a held volunteer, or always while the volunteer
    -- is onboarding (fewer votes than QC_ONBOARDING_PAIRS; counting stops there, so an old hand's count costs a
    -- few index rows).
    SELECT %(gold)s::boolean OR coalesce((SELECT held FROM me), false)
        OR (SELECT count(*) FROM (SELECT 1 FROM feedback_vote w
            WHERE w.volunteer_id = %(user)s::bigint LIMIT %(onboarding)s::integer) s) < %(onboarding)s::integer AS gold
),
pick AS (
    SELECT coalesce(
        CASE WHEN (SELECT gold FROM turn) THEN {_GOLD_PICK} END,
{_picks(_IN_MY_LANGUAGES)},
{_picks("")}
    ) AS id
    WHERE NOT EXISTS (SELECT 1 FROM pending)
),
claimed AS (
    UPDATE feedback_pair p SET claims_count = p.claims_count + 1 FROM pick WHERE p.id = pick.id RETURNING p.id
),
made AS (
    INSERT INTO feedback_assignment (pair_id, volunteer_id, left_is_a, created_at, expires_at)
    SELECT claimed.id, %(user)s::bigint, %(left_is_a)s::boolean, %(now)s::timestamptz, %(expires_at)s::timestamptz
    FROM claimed
    -- A claim is not worth waiting for a disk flush: one lost in a crash only hands the pair out again.
    -- Run on its own (claim_async), its commit is asynchronous; a later vote's synchronous commit flushes
    -- the WAL up to it, so a stored vote never refers to a lost assignment.
    WHERE NOT %(claim_async)s::boolean OR set_config('synchronous_commit', 'off', true) IS NOT NULL
    RETURNING id, pair_id, left_is_a, created_at, expires_at
),
chosen AS (SELECT * FROM pending UNION ALL SELECT * FROM made)
SELECT c.id, c.pair_id, c.left_is_a, c.created_at, c.expires_at,
    p.prompt_id, p.language, p.completion_a_id, p.completion_b_id, p.state, p.votes_wanted,
    pr.text, pr.language, ca.text, ca.outcome, cb.text, cb.outcome, pr.suffix
FROM chosen c
    JOIN feedback_pair p ON p.id = c.pair_id
    JOIN feedback_prompt pr ON pr.id = p.prompt_id
    JOIN feedback_completion ca ON ca.id = p.completion_a_id
    JOIN feedback_completion cb ON cb.id = p.completion_b_id
"""


def _next_in_one_statement(user) -> tuple | None:
    """_NEXT_SQL's row, or None when the ORM path has to settle the request."""
    now = timezone.now()
    params = {
        "user": user.pk,
        "left_is_a": random.random() < 0.5,
        "start": random.randrange(1 << 30) if SPREAD_PICK else 0,  # Pair.shuffle_key's range
        "now": now,
        "expires_at": now + timedelta(seconds=settings.CODEPREF["ASSIGNMENT_TTL_SECONDS"]),
        # Inside a caller's transaction the setting would last to its end and cover the caller's writes.
        "claim_async": ASYNC_CLAIM and not connection.in_atomic_block,
        "gold": gold_turn_drawn(),
        "onboarding": settings.CODEPREF["QC_ONBOARDING_PAIRS"],
        "threshold": float(settings.CODEPREF["QC_TRUST_THRESHOLD"]),
    }
    return execute_one_or_none(_NEXT_SQL, params)


def _assignment_from_row(user, row: tuple) -> Assignment:
    (assignment_id, pair_id, left_is_a, created_at, expires_at, prompt_id, pair_language, a_id, b_id, state,
     votes_wanted, prompt_text, prompt_language, a_text, a_outcome, b_text, b_outcome,
     prompt_suffix) = row  # fmt: skip
    pair = loaded_instance(
        Pair,
        {
            "id": pair_id,
            "prompt_id": prompt_id,
            "language": pair_language,
            "completion_a_id": a_id,
            "completion_b_id": b_id,
            "state": state,
            "votes_wanted": votes_wanted,
        },
    )
    pair.prompt = loaded_instance(
        Prompt, {"id": prompt_id, "text": prompt_text, "language": prompt_language, "suffix": prompt_suffix}
    )
    pair.completion_a = loaded_instance(Completion, {"id": a_id, "text": a_text, "outcome": a_outcome})
    pair.completion_b = loaded_instance(Completion, {"id": b_id, "text": b_text, "outcome": b_outcome})
    assignment = loaded_instance(
        Assignment,
        {
            "id": assignment_id,
            "pair_id": pair_id,
            "volunteer_id": user.pk,
            "left_is_a": left_is_a,
            "created_at": created_at,
            "expires_at": expires_at,
            "skipped_at": None,
            "voted_at": None,
            "released_at": None,
        },
    )
    assignment.pair = pair
    return assignment
