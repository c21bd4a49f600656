"""The terms promise that rationales go into the datasets: every vote's rationale is in ``votes/`` and each
pair's rationales are in ``preference/`` as a list, masked like every other text."""

from __future__ import annotations

import json
import uuid

import datasets
import pyarrow.parquet as pq
import pytest

from feedback.datasets.privacy import pseudonym
from feedback.datasets.services import snapshot_build
from feedback.models import Vote
from tests import factories

pytestmark = pytest.mark.django_db


def rows_of(snapshot, part) -> list[dict]:
    return [
        json.loads(line)
        for split in ("train", "test")
        for line in (snapshot.path / part / f"{split}.jsonl").read_text().splitlines()
    ]


def test_rationales_are_in_votes_and_as_a_list_per_pair_in_preference_masked():
    ann, bob, cid = (factories.UserFactory(username=name) for name in ("ann", "bob", "cid"))
    pair = factories.PairWithOutcomesFactory()
    quiet = factories.PairWithOutcomesFactory()
    said = {
        ann: "A handles the empty list; B crashes",
        bob: "",
        cid: "B mails ops@example.com the key AKIAIOSFODNN7EXAMPLE",
    }
    for voter, rationale in said.items():
        Vote.objects.create(pair=pair, volunteer=voter, choice="a", left_is_a=True, rationale=rationale,
                            idempotency_key=uuid.uuid4().hex)  # fmt: skip
    Vote.objects.create(pair=quiet, volunteer=ann, choice="b", left_is_a=False, idempotency_key="q")

    snapshot = snapshot_build().snapshot

    votes = {(row["pair_id"], row["annotator"]): row["rationale"] for row in rows_of(snapshot, "votes")}
    assert votes[pair.pk, pseudonym(ann.pk)] == "A handles the empty list; B crashes"
    assert votes[pair.pk, pseudonym(bob.pk)] == ""
    masked = votes[pair.pk, pseudonym(cid.pk)]
    assert masked.startswith("B mails ") and "ops@example.com" not in masked and "AKIAIOSFODNN7EXAMPLE" not in masked
    assert votes[quiet.pk, pseudonym(ann.pk)] == ""

    preference = {row["pair_id"]: row["rationales"] for row in rows_of(snapshot, "preference")}
    assert preference == {pair.pk: ["A handles the empty list; B crashes", masked], quiet.pk: []}
    # The same lists in the Parquet files and the datasets folders.
    parquet = {}
    for split in ("train", "test"):
        table = pq.read_table(snapshot.path / "preference" / f"{split}.parquet").to_pydict()
        parquet.update(zip(table["pair_id"], table["rationales"], strict=True))
    assert parquet == preference
    loaded = datasets.load_from_disk(str(snapshot.path / "hf" / "preference"))
    assert {row["pair_id"]: row["rationales"] for split in loaded.values() for row in split} == preference
    manifest = json.loads((snapshot.path / "manifest.json").read_text())
    assert manifest["secrets"]["masked"]["E-mail"] >= 1
