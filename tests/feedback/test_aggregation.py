"""Aggregating votes into labels: the pure functions, then a handcrafted vote table through a real snapshot."""

from __future__ import annotations

import json
from collections import Counter

import krippendorff
import numpy as np
import pytest

from feedback.datasets import aggregation
from feedback.datasets.aggregation import aggregate_votes, krippendorff_alpha, label_pair
from feedback.datasets.services import snapshot_build
from feedback.models import Assignment, Volunteer, Vote
from feedback.ranking import votes
from tests import factories

# --- labels -------------------------------------------------------------------------------------


def test_a_clear_majority_wins_with_its_margin_and_agreement():
    result = aggregate_votes([("a", 1.0), ("a", 1.0), ("b", 1.0)])
    assert (result.label, result.votes) == ("a", 3)
    assert result.agreement == pytest.approx(2 / 3)
    assert result.margin == pytest.approx(1 / 3)


def test_an_even_split_between_a_and_b_is_a_tie_never_a_preference():
    result = aggregate_votes([("a", 1.0), ("b", 1.0)])
    assert (result.label, result.margin, result.agreement) == ("tie", 0.0, 0.5)


def test_a_shared_top_with_both_bad_is_both_bad():
    assert aggregate_votes([("a", 1.0), ("both_bad", 1.0)]).label == "both_bad"
    assert aggregate_votes([("a", 1.0), ("b", 1.0), ("both_bad", 1.0)]).label == "both_bad"


def test_a_shared_top_with_tie_is_a_tie():
    assert aggregate_votes([("b", 1.0), ("tie", 1.0)]).label == "tie"


def test_trust_weights_can_outvote_a_headcount():
    result = aggregate_votes([("a", 1.0), ("a", 1.0), ("b", 3.0)])
    assert result.label == "b"
    assert result.agreement == pytest.approx(3 / 5)
    assert result.margin == pytest.approx(1 / 5)


def test_a_missing_trust_counts_as_one_and_negative_trust_as_nothing():
    assert aggregate_votes([("a", None), ("b", 0.5)]).label == "a"
    assert label_pair(-5.0, 1.0, 0.0, 0.0, 2).label == "b"


def test_votes_without_weight_give_no_label():
    assert aggregate_votes([]) is None
    assert aggregate_votes([("a", 0.0), ("b", 0.0)]) is None


def test_an_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="left"):
        aggregate_votes([("left", 1.0)])


# --- Krippendorff's alpha -----------------------------------------------------------------------


def test_alpha_matches_the_krippendorff_package_on_its_documented_example():
    reliability = [
        [np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
        [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
        [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4],
    ]
    units = []
    for column in zip(*reliability, strict=True):
        counts = Counter(int(value) for value in column if not np.isnan(value))
        units.append([counts[value] for value in (1, 2, 3, 4)])
    assert krippendorff_alpha(units) == pytest.approx(0.691358, abs=1e-6)


def test_alpha_from_the_coincidence_matrix_equals_the_package(monkeypatch):
    rng = np.random.default_rng(7)
    units = Counter(
        tuple(int(x) for x in rng.multinomial(int(rng.integers(2, 6)), [0.5, 0.3, 0.1, 0.1])) for _ in range(500)
    )
    expected = krippendorff.alpha(
        value_counts=np.repeat(np.array(list(units)), list(units.values()), axis=0), level_of_measurement="nominal"
    )
    monkeypatch.setattr(aggregation, "ALPHA_PACKAGE_MAX_UNITS", 0)
    assert krippendorff_alpha(units) == pytest.approx(expected, abs=1e-12)


def test_alpha_is_undefined_when_every_vote_is_the_same_or_no_pair_has_two_votes():
    assert krippendorff_alpha({(3, 0, 0, 0): 10}) is None  # the package raises / divides by zero here
    assert krippendorff_alpha([[1, 0, 0, 0], [0, 1, 0, 0]]) is None
    counter = aggregation.AgreementCounter()
    counter.add(1, 0, 0, 0)
    assert (counter.pairable_units, counter.alpha()) == (0, None)


# --- a handcrafted vote table through a snapshot ------------------------------------------------


def _voter(trust: float = 1.0):
    user = factories.UserFactory()
    Volunteer.objects.filter(user=user).update(trust=trust)
    return user


def _vote(pair, screen_choice: str, *, left_is_a: bool, trust: float = 1.0) -> Vote:
    """A vote through the real path: the side each completion was shown on decides what "left" means."""
    user = _voter(trust)
    Assignment.objects.create(pair=pair, volunteer=user, left_is_a=left_is_a, expires_at="2999-01-01T00:00Z")
    return votes.vote_record(user=user, pair_id=pair.pk, screen_choice=screen_choice, key=f"k{pair.pk}").vote


def _pair(name: str):
    prompt = factories.PromptFactory(text=f"def {name}(x):\n    '''{name}'''\n")
    return factories.PairFactory(
        prompt=prompt,
        completion_a=factories.CompletionFactory(prompt=prompt, text=f"    return 'A of {name}'\n"),
        completion_b=factories.CompletionFactory(prompt=prompt, text=f"    return 'B of {name}'\n"),
    )


def _rows(folder, part):
    rows = []
    for split in ("train", "test"):
        rows += [json.loads(line) for line in (folder / part / f"{split}.jsonl").read_text().splitlines()]
    return rows


@pytest.mark.django_db
def test_a_handcrafted_vote_table_gives_the_exact_labels_and_chosen_texts():
    swapped = _pair("swapped")  # everyone preferred B, mostly seeing it on the left
    _vote(swapped, "left", left_is_a=False)
    _vote(swapped, "left", left_is_a=False)
    _vote(swapped, "right", left_is_a=True)
    majority_a = _pair("majority_a")  # A twice (once shown on the right), B once
    _vote(majority_a, "left", left_is_a=True)
    _vote(majority_a, "right", left_is_a=False)
    _vote(majority_a, "left", left_is_a=False)
    conflict = _pair("conflict")  # one each way: no preference
    _vote(conflict, "left", left_is_a=True)
    _vote(conflict, "left", left_is_a=False)
    ties = _pair("ties")
    _vote(ties, "tie", left_is_a=True)
    _vote(ties, "tie", left_is_a=False)
    _vote(ties, "left", left_is_a=True)
    both_bad = _pair("both_bad")
    _vote(both_bad, "both_bad", left_is_a=True)
    _vote(both_bad, "both_bad", left_is_a=False)
    _vote(both_bad, "right", left_is_a=True)
    trusted = _pair("trusted")  # two ordinary votes for A against one trusted vote for B
    _vote(trusted, "left", left_is_a=True)
    _vote(trusted, "right", left_is_a=False)
    _vote(trusted, "right", left_is_a=True, trust=3.0)

    snapshot = snapshot_build().snapshot

    assert snapshot.counts["labels"] == {"a": 1, "b": 2, "tie": 2, "both_bad": 1}
    preference = {row["pair_id"]: row for row in _rows(snapshot.path, "preference")}
    assert set(preference) == {swapped.pk, majority_a.pk, trusted.pk}  # ties and both-bad are dropped
    assert (preference[swapped.pk]["chosen"], preference[swapped.pk]["rejected"]) == (
        "    return 'B of swapped'\n",
        "    return 'A of swapped'\n",
    )
    assert (preference[swapped.pk]["votes"], preference[swapped.pk]["agreement"]) == (3, 1.0)
    assert preference[majority_a.pk]["chosen"] == "    return 'A of majority_a'\n"
    assert preference[majority_a.pk]["margin"] == pytest.approx(1 / 3)
    assert preference[trusted.pk]["chosen"] == "    return 'B of trusted'\n"
    assert preference[trusted.pk]["agreement"] == pytest.approx(3 / 5)
    assert preference[trusted.pk]["margin"] == pytest.approx(1 / 5)

    unpaired = Counter((row["pair_id"], row["completion"], row["label"]) for row in _rows(snapshot.path, "unpaired"))
    assert unpaired[(both_bad.pk, "    return 'A of both_bad'\n", False)] == 1
    assert unpaired[(both_bad.pk, "    return 'B of both_bad'\n", False)] == 1
    assert unpaired[(swapped.pk, "    return 'B of swapped'\n", True)] == 1
    assert unpaired[(swapped.pk, "    return 'A of swapped'\n", False)] == 1
    assert not [key for key in unpaired if key[0] in (ties.pk, conflict.pk)]  # a tie says nothing about quality

    votes = [row for row in _rows(snapshot.path, "votes") if row["pair_id"] == swapped.pk]
    assert sorted((row["choice"], row["shown_left"]) for row in votes) == [
        ("chosen", "chosen"),
        ("chosen", "chosen"),
        ("chosen", "rejected"),
    ]


@pytest.mark.django_db
def test_keeping_ties_puts_them_in_the_preference_file_with_their_label():
    ties = _pair("ties")
    _vote(ties, "tie", left_is_a=True)
    both_bad = _pair("both_bad")
    _vote(both_bad, "both_bad", left_is_a=True)

    snapshot = snapshot_build(filters={"drop_ties": False}).snapshot

    labels = {row["pair_id"]: row["label"] for row in _rows(snapshot.path, "preference")}
    assert labels == {ties.pk: "tie", both_bad.pk: "both_bad"}
