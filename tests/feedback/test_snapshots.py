"""Snapshot builds: layout, manifest and card, filters, split, privacy, idempotency, takeover and failure."""

from __future__ import annotations

import hashlib
import json
import uuid

import datasets
import psycopg
import pyarrow.parquet as pq
import pytest
from django.db import connection

from feedback.datasets import rows, services
from feedback.datasets.claims import ADVISORY_LOCK_CLASS
from feedback.datasets.files import snapshot_file_path
from feedback.datasets.options import SnapshotOptions
from feedback.datasets.privacy import pseudonym
from feedback.datasets.services import snapshot_build
from feedback.errors import ServiceError
from feedback.models import Completion, DatasetSnapshot, Flag, Pair, Volunteer, Vote
from tests import factories
from training.dataset_format import MANIFEST_KEYS, PREFERENCE_COLUMNS, UNPAIRED_COLUMNS

pytestmark = pytest.mark.django_db


def make_pairs(count: int, *, votes=("a", "a", "b"), prompts: int | None = None, voters=None) -> list[Pair]:
    """``count`` pairs over ``prompts`` prompts (one each by default), each with the given votes."""
    voters = voters or [factories.UserFactory() for _ in range(max(len(votes), 1))]
    prompt_list = [factories.PromptFactory() for _ in range(prompts or count)]
    pairs = []
    for index in range(count):
        prompt = prompt_list[index % len(prompt_list)]
        pair = factories.PairFactory(
            prompt=prompt,
            completion_a=factories.CompletionFactory(prompt=prompt, outcome="passed"),
            completion_b=factories.CompletionFactory(prompt=prompt, outcome="failed"),
        )
        for voter, choice in zip(voters, votes, strict=False):
            Vote.objects.create(pair=pair, volunteer=voter, choice=choice, left_is_a=index % 2 == 0,
                                idempotency_key=uuid.uuid4().hex)  # fmt: skip
        pairs.append(pair)
    return pairs


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def all_rows(snapshot, part) -> list[dict]:
    return jsonl(snapshot.path / part / "train.jsonl") + jsonl(snapshot.path / part / "test.jsonl")


# --- what is written ----------------------------------------------------------------------------


def test_a_snapshot_writes_the_layout_the_training_pipeline_reads():
    make_pairs(6)
    result = snapshot_build()
    snapshot = result.snapshot
    assert result.built and snapshot.state == DatasetSnapshot.State.PUBLISHED and snapshot.progress == 1.0
    folder = snapshot.path
    for part in ("preference", "unpaired", "prompts", "votes"):
        for split in ("train", "test"):
            assert (folder / part / f"{split}.jsonl").is_file()
    for part in ("preference", "unpaired"):
        for split in ("train", "test"):
            assert pq.read_schema(folder / part / f"{split}.parquet").names == list(
                PREFERENCE_COLUMNS if part == "preference" else UNPAIRED_COLUMNS
            )
        loaded = datasets.load_from_disk(str(folder / "hf" / part))
        assert set(loaded) == {"train", "test"}
    rows = all_rows(snapshot, "preference")
    assert len(rows) == 6
    assert list(rows[0]) == list(PREFERENCE_COLUMNS)
    assert {row["snapshot_version"] for row in rows} == {snapshot.version}
    assert {(row["chosen_outcome"], row["rejected_outcome"]) for row in rows} == {("passed", "failed")}
    prompts = all_rows(snapshot, "prompts")
    assert len(prompts) == 6 and {"tests", "entry_point", "reference_solution", "test_style"} <= set(prompts[0])
    assert not list(folder.parent.glob(".building-*"))


def test_the_manifest_lists_every_file_with_its_size_and_sha256():
    make_pairs(3)
    snapshot = snapshot_build().snapshot
    manifest = json.loads((snapshot.path / "manifest.json").read_text())
    files = sorted(p.relative_to(snapshot.path).as_posix() for p in snapshot.path.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == [name for name in files if name != "manifest.json"]
    for name, info in manifest["files"].items():
        data = (snapshot.path / name).read_bytes()
        assert info == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert snapshot.files == manifest["files"]
    assert sorted(manifest) == sorted(MANIFEST_KEYS)
    assert manifest["snapshot_version"] == snapshot.version
    assert manifest["counts"]["preference_train"] + manifest["counts"]["preference_test"] == 3
    assert manifest["filters"] == SnapshotOptions.defaults().as_dict()
    assert manifest["code_version"].startswith(("git:", "codepref"))
    assert "masked" in manifest["secrets"]


def test_the_card_is_a_hugging_face_dataset_card_with_configs_and_licence(settings, tmp_path):
    make_pairs(4)
    snapshot = snapshot_build().snapshot
    card = (snapshot.path / "README.md").read_text()
    header = card.split("---")[1]
    assert f"license: {settings.CODEPREF['CONTRIBUTION_LICENCE'].lower()}" in header
    assert "config_name: preference" in header and "path: preference/train.jsonl" in header
    assert "config_name: unpaired" in header
    assert "Krippendorff" in card and "min_votes" in card
    loaded = datasets.load_dataset(str(snapshot.path), "preference", cache_dir=str(tmp_path / "hf-cache"))
    assert sum(split.num_rows for split in loaded.values()) == 4


def test_two_builds_of_the_same_votes_write_identical_rows():
    make_pairs(5)
    first = snapshot_build().snapshot
    second = snapshot_build().snapshot
    assert second.version == first.version + 1
    for name in ("preference/train.jsonl", "unpaired/train.jsonl", "prompts/train.jsonl", "votes/train.jsonl"):
        a = (first.path / name).read_text().replace(f'"snapshot_version":{first.version}', "")
        b = (second.path / name).read_text().replace(f'"snapshot_version":{second.version}', "")
        assert a == b


# --- split --------------------------------------------------------------------------------------


def test_the_split_is_by_prompt_and_stable_across_snapshots():
    make_pairs(40, prompts=20)
    first = snapshot_build(filters={"test_fraction": 0.5}).snapshot
    train = {row["prompt_id"] for row in jsonl(first.path / "preference" / "train.jsonl")}
    test = {row["prompt_id"] for row in jsonl(first.path / "preference" / "test.jsonl")}
    assert train and test and not train & test
    assert {row["prompt_id"] for row in jsonl(first.path / "prompts" / "test.jsonl")} == test
    second = snapshot_build(filters={"test_fraction": 0.5}).snapshot
    assert {row["prompt_id"] for row in jsonl(second.path / "preference" / "test.jsonl")} == test


# --- filters ------------------------------------------------------------------------------------


def test_pairs_with_too_few_votes_or_too_little_agreement_are_left_out():
    make_pairs(2, votes=("a",))
    make_pairs(2, votes=("a", "b", "b"))
    make_pairs(2, votes=("b", "b", "b"))
    snapshot = snapshot_build(filters={"min_votes": 2, "min_agreement": 0.9}).snapshot
    assert len(all_rows(snapshot, "preference")) == 2
    assert snapshot.counts["dropped"] == {"min_votes": 2, "min_agreement": 2}
    assert snapshot.filters["min_votes"] == 2


def test_upheld_reports_exclude_their_pair_completion_or_prompt_and_open_ones_only_on_request():
    flagged_pair, flagged_completion, flagged_prompt, open_flag, clean = make_pairs(5)
    reporter = factories.UserFactory()
    Flag.objects.create(reporter=reporter, pair=flagged_pair, prompt=flagged_pair.prompt, reason="broken",
                        state=Flag.State.UPHELD)  # fmt: skip
    Flag.objects.create(reporter=reporter, completion=flagged_completion.completion_b, reason="harmful",
                        state=Flag.State.UPHELD)  # fmt: skip
    Flag.objects.create(reporter=reporter, prompt=flagged_prompt.prompt, reason="personal_data",
                        state=Flag.State.UPHELD)  # fmt: skip
    Flag.objects.create(reporter=reporter, pair=open_flag, reason="broken")
    Flag.objects.create(reporter=reporter, pair=clean, reason="harmful", state=Flag.State.DISMISSED)

    default = snapshot_build().snapshot
    assert {row["pair_id"] for row in all_rows(default, "preference")} == {open_flag.pk, clean.pk}
    strict = snapshot_build(filters={"exclude_open_flags": True}).snapshot
    assert {row["pair_id"] for row in all_rows(strict, "preference")} == {clean.pk}


def test_decided_by_tests_and_human_decided_pairs_can_be_chosen_alone():
    by_tests, by_people = make_pairs(2)
    Pair.objects.filter(pk=by_tests.pk).update(decided_by_tests=True)
    Pair.objects.filter(pk=by_people.pk).update(decided_by_tests=False)
    only_tests = snapshot_build(filters={"only_decided_by_tests": True}).snapshot
    assert [row["pair_id"] for row in all_rows(only_tests, "preference")] == [by_tests.pk]
    only_people = snapshot_build(filters={"only_human_decided": True}).snapshot
    assert [row["pair_id"] for row in all_rows(only_people, "preference")] == [by_people.pk]


def test_retired_pairs_are_left_out():
    kept, retired = make_pairs(2)
    Pair.objects.filter(pk=retired.pk).update(state=Pair.State.RETIRED)
    snapshot = snapshot_build().snapshot
    assert [row["pair_id"] for row in all_rows(snapshot, "preference")] == [kept.pk]


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"min_votes": -1}, "min_votes"),
        ({"min_agreement": 1.5}, "min_agreement"),
        ({"drop_ties": "yes"}, "drop_ties"),
        ({"colour": "blue"}, "unknown filter 'colour'"),
        ({"only_decided_by_tests": True, "only_human_decided": True}, "exclude each other"),
    ],
)
def test_bad_filters_are_refused_by_name(filters, message):
    with pytest.raises(ServiceError, match=message):
        snapshot_build(filters=filters)
    assert not DatasetSnapshot.objects.exists()


# --- privacy ------------------------------------------------------------------------------------


def test_secrets_and_email_addresses_are_masked_and_volunteers_are_pseudonyms(settings):
    volunteer = factories.UserFactory(username="grace", email="grace@volunteers.example")
    pair = make_pairs(1, voters=[volunteer], votes=("a",))[0]
    Completion.objects.filter(pk=pair.completion_a_id).update(
        text='    key = "AKIAIOSFODNN7EXAMPLE"\n    notify("ops@example.com")\n    return x\n'
    )
    pair.prompt.text = "def f(x):\n    '''Mail alice@example.org; password = \"hunter2hunter2\"'''\n"
    pair.prompt.save()

    snapshot = snapshot_build().snapshot

    everything = "".join(
        path.read_bytes().decode("utf-8", "replace") for path in snapshot.path.rglob("*") if path.is_file()
    )
    for secret in ("AKIAIOSFODNN7EXAMPLE", "ops@example.com", "alice@example.org", "hunter2hunter2"):
        assert secret not in everything
    assert "grace" not in everything and f'"annotator":"{pseudonym(volunteer.pk)}"' in everything
    row = all_rows(snapshot, "preference")[0]
    assert row["chosen"] == '    key = "<SECRET>"\n    notify("<EMAIL>")\n    return x\n'
    manifest = json.loads((snapshot.path / "manifest.json").read_text())
    assert manifest["secrets"]["masked"]["E-mail"] == 2
    assert manifest["secrets"]["masked_total"] >= 4
    assert pseudonym(volunteer.pk) != pseudonym(volunteer.pk, salt="another salt")


# --- idempotency, takeover, failure -------------------------------------------------------------


def test_a_scheduled_slot_builds_once_and_skips_when_no_vote_changed():
    make_pairs(2)
    first = snapshot_build(slot="hourly:2026-11-27T14")
    again = snapshot_build(slot="hourly:2026-11-27T14")
    assert first.built and not again.built and again.snapshot.pk == first.snapshot.pk
    later = snapshot_build(slot="hourly:2026-11-27T15")
    assert later.skipped and later.snapshot.pk == first.snapshot.pk
    make_pairs(1)
    newer = snapshot_build(slot="hourly:2026-11-27T16")
    assert newer.built and newer.snapshot.version == first.snapshot.version + 1
    assert DatasetSnapshot.objects.count() == 2


def test_a_deleted_vote_counts_as_a_change():
    make_pairs(2)
    snapshot_build(slot="hourly:2026-11-27T14")
    Vote.objects.order_by("id").first().delete()
    assert snapshot_build(slot="hourly:2026-11-27T15").built


def test_a_published_snapshot_is_never_written_again():
    make_pairs(2)
    snapshot = snapshot_build().snapshot
    before = {name: (snapshot.path / name).stat().st_mtime_ns for name in snapshot.files}
    make_pairs(2)
    result = snapshot_build(snapshot_id=snapshot.pk)
    assert not result.built and result.reason == "already published"
    assert {name: (snapshot.path / name).stat().st_mtime_ns for name in snapshot.files} == before


def _building(version: int, task_id: str = "") -> DatasetSnapshot:
    last_vote_id = Vote.objects.order_by("-id").values_list("id", flat=True)[0]
    filters = SnapshotOptions.defaults().as_dict()
    return DatasetSnapshot.objects.create(version=version, task_id=task_id, filters=filters, last_vote_id=last_vote_id)


def test_a_snapshot_whose_worker_died_is_taken_over_by_the_redelivered_task(settings):
    make_pairs(3)
    orphan = _building(7, task_id="task-1")
    stale = settings.CODEPREF["DATASETS_DIR"] / ".building-7-deadbeef"
    (stale / "preference").mkdir(parents=True)
    (stale / "preference" / "train.jsonl").write_text('{"half": "written"}\n')

    result = snapshot_build(task_id="task-1")

    assert result.built and result.snapshot.pk == orphan.pk and result.snapshot.state == "published"
    assert not stale.exists()
    assert len(all_rows(result.snapshot, "preference")) == 3


def test_a_worker_that_died_after_the_rename_leaves_a_snapshot_the_retry_publishes():
    make_pairs(2)
    done = snapshot_build().snapshot
    DatasetSnapshot.objects.filter(pk=done.pk).update(state="building", files={}, counts={}, progress=0.5)
    result = snapshot_build(snapshot_id=done.pk)
    done.refresh_from_db()
    assert result.built and done.state == "published" and done.files and done.counts["preference_train"] >= 0


def test_a_folder_left_by_another_database_is_moved_aside_not_published(settings):
    make_pairs(2)
    old = settings.CODEPREF["DATASETS_DIR"] / "1"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text('{"build": "99:2020-01-01T00:00:00+00:00", "files": {}, "counts": {}}')
    snapshot = snapshot_build().snapshot
    assert snapshot.version == 1 and snapshot.state == "published"
    assert len(all_rows(snapshot, "preference")) == 2
    (aside,) = settings.CODEPREF["DATASETS_DIR"].glob(".orphan-1-*")
    assert (aside / "manifest.json").is_file()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_snapshot_held_by_a_live_worker_is_left_alone():
    make_pairs(2)
    held = _building(3)
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")},
                         autocommit=True) as other:  # fmt: skip
        other.execute("SELECT pg_advisory_lock(%s, %s)", [ADVISORY_LOCK_CLASS, 3])
        result = snapshot_build(snapshot_id=held.pk)
    assert not result.built and result.reason == "being built by another worker"
    held.refresh_from_db()
    assert held.state == "building"
    assert snapshot_build(snapshot_id=held.pk).built  # the lock went with the other connection


def test_a_failed_build_is_marked_failed_and_leaves_no_files(monkeypatch, settings):
    make_pairs(2)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rows, "hf_folders_write", broken)
    with pytest.raises(RuntimeError):
        snapshot_build()
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.state == "failed" and "disk on fire" in snapshot.error
    assert list(settings.CODEPREF["DATASETS_DIR"].iterdir()) == []


def test_file_names_outside_the_manifest_are_refused():
    make_pairs(1)
    snapshot = snapshot_build().snapshot
    assert snapshot_file_path(snapshot, "preference/train.jsonl") == snapshot.path / "preference/train.jsonl"
    assert snapshot_file_path(snapshot, "manifest.json") == snapshot.path / "manifest.json"
    for name in ("../../../etc/passwd", "/etc/passwd", "preference/../manifest.json", "hf", "nope", ""):
        assert snapshot_file_path(snapshot, name) is None


def test_volunteer_trust_defaults_to_one():
    user = factories.UserFactory()
    assert Volunteer.objects.get(user=user).trust == 1.0


def test_a_request_the_broker_cannot_take_is_marked_failed_not_left_waiting(
    monkeypatch, django_capture_on_commit_callbacks
):
    from feedback.datasets.tasks import build_snapshot

    def refused(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(build_snapshot, "apply_async", refused)
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.snapshot_request()
    snapshot.refresh_from_db()
    assert snapshot.state == "failed" and "could not be queued" in snapshot.error


def test_a_lost_building_snapshot_can_be_queued_again(django_capture_on_commit_callbacks):
    make_pairs(2)
    lost = _building(4)
    with django_capture_on_commit_callbacks(execute=True):  # eager in tests: the build runs inline
        assert services.snapshot_requeue(snapshot=lost)
    lost.refresh_from_db()
    assert lost.state == "published" and lost.task_id
    assert not services.snapshot_requeue(snapshot=lost)


def test_the_no_new_votes_check_compares_with_a_snapshot_of_the_same_filters():
    make_pairs(2)
    scheduled = snapshot_build(slot="hourly:2026-11-27T10").snapshot
    snapshot_build(filters={"min_votes": 3})  # an on-demand build with other filters in between
    again = snapshot_build(slot="hourly:2026-11-27T11")
    assert again.skipped and again.snapshot.pk == scheduled.pk
