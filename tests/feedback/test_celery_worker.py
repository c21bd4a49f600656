"""Snapshots built by a real Celery worker on Redis: through the broker, after a killed worker, twice per slot.

The worker (tests/celery_worker.py) runs two pool processes and pauses each build for a moment after its
pair rows (tests/paused_snapshots.py), so that a test can kill it mid-build or run two builds at once.
"""

from __future__ import annotations

import json
import shutil

import pytest
from django_celery_beat.models import PeriodicTask

from feedback.datasets.tasks import build_snapshot
from feedback.models import Assignment, DatasetSnapshot, Pair
from feedback.ranking.tasks import release_expired_assignments
from tests import factories
from tests.celery_worker import wait_for
from tests.feedback.test_snapshots import all_rows, make_pairs

CELERY_WORKER_CONCURRENCY = 2
CELERY_WORKER_IMPORTS = ["tests.paused_snapshots"]

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def worker(settings, celery_worker):
    """The worker, with this process reading snapshots from where it writes them (emptied: the database is)."""
    shutil.rmtree(celery_worker.datasets_dir, ignore_errors=True)
    settings.CODEPREF = {**settings.CODEPREF, "DATASETS_DIR": celery_worker.datasets_dir}
    return celery_worker


def _published(**filters):
    return DatasetSnapshot.objects.filter(state=DatasetSnapshot.State.PUBLISHED, **filters).first()


@pytest.mark.django_db(transaction=True)
def test_a_snapshot_is_built_by_the_worker_through_the_broker(worker):
    make_pairs(4)
    sent = worker.send(build_snapshot)
    outcome = sent.get(timeout=120)
    snapshot = _published(task_id=sent.id)
    assert outcome == {
        "version": snapshot.version,
        "state": "published",
        "built": True,
        "skipped": False,
        "reason": "",
    }
    assert len(all_rows(snapshot, "preference")) == 4
    assert json.loads((snapshot.path / "manifest.json").read_text())["snapshot_version"] == snapshot.version


@pytest.mark.django_db(transaction=True)
def test_a_task_redelivered_after_its_worker_is_killed_mid_build_yields_one_snapshot(worker):
    make_pairs(5)
    sent = worker.send(build_snapshot)
    started = wait_for(
        lambda: DatasetSnapshot.objects.filter(task_id=sent.id, state="building", progress__gt=0).first(),
        timeout=120,
        message="the build to start",
    )
    killed = worker.kill_children()
    assert killed

    snapshot = wait_for(lambda: _published(task_id=sent.id), timeout=180, message="the redelivered build")

    assert DatasetSnapshot.objects.count() == 1
    assert snapshot.pk == started.pk and snapshot.version == started.version
    assert "WorkerLostError" in worker.log()  # the first delivery died; acks_late + reject_on_worker_lost requeued it
    folder = worker.datasets_dir
    assert sorted(path.name for path in folder.iterdir()) == [str(snapshot.version)]  # no half folder left
    assert len(all_rows(snapshot, "preference")) == 5


@pytest.mark.django_db(transaction=True)
def test_beat_firing_twice_for_one_slot_builds_once(worker):
    make_pairs(3)
    first = worker.send(build_snapshot, slot="hourly:2026-11-27T09")
    second = worker.send(build_snapshot, slot="hourly:2026-11-27T09")
    outcomes = [first.get(timeout=120), second.get(timeout=120)]
    assert sorted(outcome["built"] for outcome in outcomes) == [False, True]
    assert {outcome["version"] for outcome in outcomes} == {DatasetSnapshot.objects.get().version}
    assert DatasetSnapshot.objects.get().state == "published"


@pytest.mark.django_db
def test_the_default_schedules_exist_and_name_their_tasks():
    tasks = dict(PeriodicTask.objects.values_list("name", "task"))
    assert tasks["every-1h-build-snapshot"] == "feedback.tasks.build_snapshot"
    assert tasks["nightly-train-cycle"] == "feedback.tasks.train_cycle"
    assert tasks["every-5m-release-assignments"] == "feedback.tasks.release_expired_assignments"
    hourly = PeriodicTask.objects.get(name="every-1h-build-snapshot")
    assert json.loads(hourly.kwargs) == {"slot": "hourly"}
    assert (hourly.interval.every, hourly.interval.period) == (1, "hours")


@pytest.mark.django_db
def test_expired_assignments_are_released_by_their_task():
    pair = factories.PairFactory()
    Pair.objects.filter(pk=pair.pk).update(claims_count=1)
    Assignment.objects.create(
        pair=pair, volunteer=factories.UserFactory(), left_is_a=True, expires_at="2000-01-01T00:00Z"
    )
    assert release_expired_assignments.apply().get() == 1
    assert Pair.objects.get(pk=pair.pk).claims_count == 0
    assert release_expired_assignments.apply().get() == 0
