"""The vote path: assignment, recording, idempotency, k-vote closing (services and selectors)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from feedback.errors import Conflict, ServiceError
from feedback.models import Assignment, Pair, Vote
from feedback.ranking import claims, services, statements, votes
from tests import factories

pytestmark = pytest.mark.django_db


def vote_on(user, assignment, screen_choice="left", key=None):
    return votes.vote_record(
        user=user, pair_id=assignment.pair_id, screen_choice=screen_choice, key=key or f"k-{assignment.pk}"
    )


def test_assignment_never_repeats_a_pair_for_a_volunteer(volunteer):
    factories.PairFactory.create_batch(5)
    seen = []
    while (assignment := claims.assignment_claim_next(user=volunteer)) is not None:
        seen.append(assignment.pair_id)
        if len(seen) % 2:
            vote_on(volunteer, assignment)
        else:
            services.pair_skip(user=volunteer, pair_id=assignment.pair_id)
    assert sorted(seen) == sorted(Pair.objects.values_list("pk", flat=True))
    assert len(set(seen)) == 5


def test_a_reload_shows_the_same_pending_pair(volunteer):
    factories.PairFactory.create_batch(3)
    first = claims.assignment_claim_next(user=volunteer)
    again = claims.assignment_claim_next(user=volunteer)
    assert again.pk == first.pk
    assert Assignment.objects.filter(volunteer=volunteer).count() == 1


def test_pairs_with_the_fewest_claims_come_first(volunteer, other_volunteer):
    busy, quiet = factories.PairFactory.create_batch(2)
    Pair.objects.filter(pk=busy.pk).update(claims_count=2, votes_count=2)
    assert claims.assignment_claim_next(user=volunteer).pair_id == quiet.pk


def test_prompts_in_the_volunteers_languages_come_first(volunteer):
    factories.PairFactory.create_batch(3)
    rust = factories.PairFactory(prompt=factories.PromptFactory(language="rust"))
    volunteer.volunteer.languages = ["rust"]
    volunteer.volunteer.save()
    assert claims.assignment_claim_next(user=volunteer).pair_id == rust.pk


def test_a_pair_closes_at_k_votes_and_is_not_handed_out_again():
    pair = factories.PairFactory(votes_wanted=3)
    voters = factories.UserFactory.create_batch(4)
    for user in voters[:3]:
        assignment = claims.assignment_claim_next(user=user)
        assert assignment.pair_id == pair.pk
        vote_on(user, assignment)
    pair.refresh_from_db()
    assert (pair.votes_count, pair.state) == (3, Pair.State.COMPLETE)
    assert claims.assignment_claim_next(user=voters[3]) is None


def test_a_retried_vote_with_the_same_key_is_not_counted_twice(volunteer):
    factories.PairFactory()
    assignment = claims.assignment_claim_next(user=volunteer)
    first = vote_on(volunteer, assignment, "left", key="abc")
    again = vote_on(volunteer, assignment, "left", key="abc")
    assert first.created and not again.created
    assert again.vote.pk == first.vote.pk
    pair = Pair.objects.get(pk=assignment.pair_id)
    assert pair.votes_count == 1
    assert Vote.objects.count() == 1


def test_a_different_second_vote_on_the_same_pair_is_a_conflict(volunteer):
    factories.PairFactory()
    assignment = claims.assignment_claim_next(user=volunteer)
    vote_on(volunteer, assignment, "left", key="one")
    with pytest.raises(Conflict):
        vote_on(volunteer, assignment, "right", key="two")
    assert Vote.objects.get().choice == votes.choice_from_screen("left", left_is_a=assignment.left_is_a)


def test_the_vote_is_stored_in_terms_of_completions_whatever_the_screen_side(volunteer):
    pair = factories.PairFactory()
    assignment = claims.assignment_claim_next(user=volunteer)
    vote = vote_on(volunteer, assignment, "left").vote
    left_completion = pair.completion_a if assignment.left_is_a else pair.completion_b
    preferred = pair.completion_a if vote.choice == Vote.Choice.A else pair.completion_b
    assert preferred == left_completion
    assert vote.left_is_a == assignment.left_is_a
    assert vote.screen_choice == "left"


def test_a_vote_on_a_pair_not_assigned_is_refused(volunteer):
    pair = factories.PairFactory()
    with pytest.raises(ServiceError, match="not assigned"):
        votes.vote_record(user=volunteer, pair_id=pair.pk, screen_choice="left", key="x")
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(
    "field,value,message", [("screen_choice", "middle", "choice"), ("key", "", "idempotency_key")]
)
def test_bad_vote_fields_are_refused_with_a_message(volunteer, field, value, message):
    factories.PairFactory()
    assignment = claims.assignment_claim_next(user=volunteer)
    kwargs = {"user": volunteer, "pair_id": assignment.pair_id, "screen_choice": "left", "key": "k"}
    kwargs[field] = value
    with pytest.raises(ServiceError, match=message):
        votes.vote_record(**kwargs)


def test_an_expired_assignment_gives_its_claim_back(volunteer, other_volunteer, settings):
    pair = factories.PairFactory(votes_wanted=1)
    held = claims.assignment_claim_next(user=volunteer)
    assert claims.assignment_claim_next(user=other_volunteer) is None
    Assignment.objects.filter(pk=held.pk).update(expires_at=held.created_at)
    assert claims.assignment_claim_next(user=other_volunteer).pair_id == pair.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_volunteers_spread_over_pairs_and_each_pair_gets_k_votes():
    assert connection.vendor == "postgresql"
    pairs = factories.PairFactory.create_batch(4, votes_wanted=4)
    users = factories.UserFactory.create_batch(4)
    barrier = threading.Barrier(len(users))
    claimed = threading.Barrier(len(users))
    picked: dict[int, list[int]] = {}
    errors = []

    def work(user):
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            picked[user.pk] = []
            with transaction.atomic():
                assignment = claims.assignment_claim_next(user=user)
                # Hold every first claim open until all four are made, so they overlap whatever the scheduling.
                claimed.wait(timeout=30)
            while assignment is not None:
                picked[user.pk].append(assignment.pair_id)
                vote_on(user, assignment)
                assignment = claims.assignment_claim_next(user=user)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    first_picks = [p[0] for p in picked.values()]
    assert len(set(first_picks)) == 4, f"simultaneous first picks collided: {first_picks}"
    assert all(sorted(p) == sorted(pair.pk for pair in pairs) for p in picked.values())
    for pair in Pair.objects.filter(pk__in=[p.pk for p in pairs]):
        assert (pair.votes_count, pair.claims_count, pair.state) == (4, 4, Pair.State.COMPLETE)
    assert Vote.objects.count() == 16


def test_positional_numbers_each_name_once_in_order_of_first_use():
    query, names = statements.positional("SELECT %(a)s::int, %(b)s::text, %(a)s::int, 100 %% 7")
    assert query == "SELECT $1::int, $2::text, $1::int, 100 % 7"
    assert names == ("a", "b")
    with pytest.raises(ValueError, match="placeholder"):
        statements.positional("SELECT %s")


def test_the_vote_path_statements_run_without_named_placeholders_left():
    for statement in (claims._NEXT_SQL, votes._VOTE_SQL):
        query, names = statements.positional(statement)
        assert "%(" not in query and names
        assert [f"${i}" in query for i in range(1, len(names) + 1)] == [True] * len(names)
