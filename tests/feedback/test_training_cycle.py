"""Training cycles on the platform: one at a time, skipped without new data, cancellable, re-delivery safe,
recorded per stage, and a better policy becomes the active model version.

Most tests run ``tests/feedback/fake_pipeline.py`` in place of ``training.pipeline`` (same arguments, same
output layout) so that they take a second; the slow test at the end runs the real tiny pipeline.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback.cycles import inputs, services, supervision, tasks
from feedback.cycles.runs import run_dir_for
from feedback.cycles.services import (
    training_cycle_execute,
    training_cycle_run,
    training_cycle_start,
    training_run_cancel,
)
from feedback.errors import Conflict, ServiceError
from feedback.models import DatasetSnapshot, ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

FAKE = "tests.feedback.fake_pipeline"


def _dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def cycle_settings(settings, tmp_path):
    recipes = tmp_path / "recipes"
    (recipes / "tiny").mkdir(parents=True)
    (recipes / "tiny" / "pipeline.yaml").write_text("stages: [reward, dpo, evaluate]\n")
    settings.CODEPREF = {
        **settings.CODEPREF,
        "TRAINING_PIPELINE_MODULE": FAKE,
        "TRAINING_RECIPES_DIR": recipes,
        "TRAINING_RECIPE": "tiny",
        "TRAINING_LAUNCHER": "",
        "TRAINING_POLL_SECONDS": 0.05,
        "TRAINING_TIMEOUT_SECONDS": 60,
        "TRAINING_MIN_NEW_PREFERENCES": 5,
        "MODEL": str(tmp_path / "bootstrap"),
    }
    return settings


@pytest.fixture
def no_snapshot_build(monkeypatch):
    """Cycles pick the latest published snapshot (the data side's build service is tested on its own)."""
    monkeypatch.setattr(inputs, "snapshot_build", lambda **kwargs: SimpleNamespace(snapshot=None, reason="not built"))


def make_snapshot(version: int, rows: int, last_vote_id: int) -> DatasetSnapshot:
    snapshot = DatasetSnapshot.objects.create(
        version=version,
        state=DatasetSnapshot.State.PUBLISHED,
        counts={"preference_train": rows - rows // 4, "preference_test": rows // 4},
        last_vote_id=last_vote_id,
        published_at=timezone.now(),
    )
    snapshot.path.mkdir(parents=True, exist_ok=True)
    (snapshot.path / "manifest.json").write_text("{}")
    return snapshot


@pytest.fixture
def snapshot(cycle_settings, no_snapshot_build):
    return make_snapshot(1, rows=20, last_vote_id=40)


@pytest.fixture
def parent_version(tmp_path):
    folder = tmp_path / "parent-model"
    folder.mkdir()
    return ModelVersion.objects.create(
        name="bootstrap", backend=ModelVersion.Backend.TRANSFORMERS, target=str(folder), is_active=True
    )


@pytest.fixture
def enqueued(monkeypatch):
    """Records arena generation requests instead of sending them to the broker."""
    calls = []
    monkeypatch.setattr(services, "arena_generation_enqueue", lambda *, version_id: calls.append(version_id))
    return calls


def running_cycle(*, heartbeat_age: float, pid: int | None = None, snapshot=None) -> TrainingRun:
    now = timezone.now()
    run = TrainingRun.objects.create(
        stage=TrainingRun.Stage.CYCLE,
        state=TrainingRun.State.RUNNING,
        recipe="tiny",
        snapshot=snapshot,
        started_at=now - timedelta(seconds=heartbeat_age + 1),
        heartbeat_at=now - timedelta(seconds=heartbeat_age),
        pid=pid,
        host=socket.gethostname(),
    )
    run.artefact_dir = str(run_dir_for(run))
    run.save(update_fields=["artefact_dir"])
    return run


# --- a cycle that trains --------------------------------------------------------------------------------


def test_a_cycle_records_each_stage_and_activates_a_policy_that_beats_its_parent(
    snapshot, parent_version, enqueued, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setenv("FAKE_PIPELINE_DELAY", "0.1")  # long enough for the watcher to see stages appear
    lines: list[str] = []
    with django_capture_on_commit_callbacks(execute=True):
        run = training_cycle_execute(force=False, progress=lines.append)

    run.refresh_from_db()
    assert run.state == TrainingRun.State.SUCCEEDED, run.message
    assert run.snapshot == snapshot and run.base_model == parent_version
    assert run.pid and run.finished_at >= run.started_at
    assert "fake pipeline (succeed)" in run.log_tail
    assert run.metrics["evaluation"]["pass@1"] == {"policy": 0.5, "parent": 0.25}
    assert run.config["model_name_or_path"] == parent_version.target
    stages = {s.stage: s for s in run.stages.all()}
    assert set(stages) == {"reward", "dpo", "evaluate"}
    assert all(s.state == TrainingRun.State.SUCCEEDED for s in stages.values())
    assert stages["reward"].metrics == {"loss": 0.69, "accuracy": 0.75, "seconds": 1.5, "sample": "return\ufffd"}
    assert "sampled: return\ufffd x" in run.log_tail
    assert Path(stages["dpo"].artefact_dir, "loss.png").is_file()
    assert stages["dpo"].config["seed"] == 0  # from the stage's run_info.json

    new = ModelVersion.objects.get(training_run=run)
    assert run.model_version == new
    assert new.backend == ModelVersion.Backend.TRANSFORMERS
    assert new.target == str((run_dir_for(run) / "dpo").resolve())
    assert new.parent == parent_version
    assert list(ModelVersion.objects.filter(is_active=True)) == [new]
    assert (
        "promoted: beats its parent (pass@1 0.500 vs parent 0.250, +0.250, p = 9.31e-10, 30 prompts x 4 samples"
        in run.message
    )
    promotion = run.metrics["promotion"]
    assert promotion["promote"] and promotion["summary"] in run.message
    assert (promotion["n_prompts"], promotion["n_samples"], promotion["prompts_better"]) == (30, 4, 30)
    assert promotion["p_value"] == 0.5**30  # every one of 30 prompts better: one sign assignment in 2^30
    assert enqueued == [new.pk]  # new completions (and new-vs-old pairs) asked for once committed
    assert any(line.startswith("stage dpo: succeeded") for line in lines)
    assert lines[-1].startswith(f"cycle {run.pk}: succeeded")


def test_a_policy_with_a_worse_pass_at_1_is_registered_but_not_activated(
    snapshot, parent_version, enqueued, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "worse")
    with django_capture_on_commit_callbacks(execute=True):
        run = training_cycle_execute()

    assert run.state == TrainingRun.State.SUCCEEDED
    new = ModelVersion.objects.get(training_run=run)
    assert not new.is_active
    assert list(ModelVersion.objects.filter(is_active=True)) == [parent_version]
    assert "kept parent: not better than its parent (pass@1 0.000 vs parent 0.250" in run.message
    assert enqueued == []


def test_a_tied_evaluation_keeps_the_parent_active_and_records_why(
    snapshot, parent_version, enqueued, monkeypatch, django_capture_on_commit_callbacks, admin_client
):
    """The demo's "activated: pass@1 0.000 (parent 0.000)": a tie is no evidence, and never promotes."""
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "tie")
    with django_capture_on_commit_callbacks(execute=True):
        run = training_cycle_execute()

    assert run.state == TrainingRun.State.SUCCEEDED
    new = ModelVersion.objects.get(training_run=run)
    assert not new.is_active
    assert list(ModelVersion.objects.filter(is_active=True)) == [parent_version]
    promotion = run.metrics["promotion"]
    assert promotion["promote"] is False
    assert promotion["summary"] == (
        "kept parent: not better than its parent (pass@1 0.000 vs parent 0.000, 30 prompts x 4 samples)"
    )
    assert (promotion["difference"], promotion["p_value"], promotion["prompts_better"]) == (0.0, 1.0, 0)
    assert run.message == f"new policy {new.name}: {promotion['summary']}"
    assert enqueued == []
    page = admin_client.get(f"/admin/feedback/trainingrun/{run.pk}/change/").content.decode()
    assert "<p>kept parent: not better than its parent (pass@1 0.000 vs parent 0.000, 30 prompts" in page
    assert "<tr><th>pass@1</th><td>0.000 (parent 0.000)</td></tr>" in page
    listing = admin_client.get("/admin/feedback/trainingrun/").content.decode()
    assert '<td class="field-promotion_outcome">kept parent</td>' in listing


def test_a_clear_win_on_too_few_completions_keeps_the_parent(
    snapshot, parent_version, enqueued, monkeypatch, cycle_settings
):
    monkeypatch.setenv("FAKE_PIPELINE_PROMPTS", "6")  # the demo's 6 prompts x 4 samples
    run = training_cycle_execute()

    assert not ModelVersion.objects.get(training_run=run).is_active
    assert list(ModelVersion.objects.filter(is_active=True)) == [parent_version]
    assert "kept parent: too few completions to tell (6 prompts x 4 samples = 24 < 100)" in run.message
    assert enqueued == []

    cycle_settings.CODEPREF = {**cycle_settings.CODEPREF, "PROMOTION_MIN_COMPLETIONS": 24}
    run = training_cycle_execute(force=True)
    assert ModelVersion.objects.get(training_run=run).is_active  # 6 prompts all better: p = 1/64
    assert run.metrics["promotion"]["p_value"] == 1 / 64


def test_without_an_active_model_a_cycle_trains_from_the_bootstrap_folder(snapshot, enqueued, cycle_settings):
    run = training_cycle_execute()

    assert run.state == TrainingRun.State.SUCCEEDED
    assert run.base_model is None
    assert run.config["model_name_or_path"] == cycle_settings.CODEPREF["MODEL"]
    assert ModelVersion.objects.get(training_run=run).is_active


def test_the_launcher_setting_reaches_the_pipeline_which_starts_the_stages_under_it(cycle_settings):
    launcher = "accelerate launch --config_file training/recipes/accelerate/zero2.yaml"
    cycle_settings.CODEPREF = {**cycle_settings.CODEPREF, "TRAINING_LAUNCHER": launcher}
    command = supervision.pipeline_command(
        config_path="c.yaml", snapshot_dir=Path("/s"), output_dir=Path("/o"), model_path="/m"
    )
    assert command == [sys.executable, "-m", FAKE, "--config", "c.yaml", "--snapshot", "/s", "--output_dir", "/o",
                       "--model_name_or_path", "/m", "--launcher", launcher]  # fmt: skip


def test_a_malformed_launcher_fails_the_cycle_with_the_setting_named(snapshot, cycle_settings):
    cycle_settings.CODEPREF = {**cycle_settings.CODEPREF, "TRAINING_LAUNCHER": "accelerate launch 'unclosed"}
    run = training_cycle_execute(force=True)
    assert run.state == TrainingRun.State.FAILED
    assert run.message.startswith('TRAINING_LAUNCHER="accelerate launch \'unclosed" is not a command line')


# --- failures -----------------------------------------------------------------------------------------------


def test_a_failed_stage_fails_the_cycle_and_names_the_stage(snapshot, parent_version, monkeypatch, enqueued):
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "fail")
    run = training_cycle_execute()

    assert run.state == TrainingRun.State.FAILED
    assert run.message == "stage dpo failed: dpo: loss became nan"
    assert {s.stage: s.state for s in run.stages.all()} == {"reward": "succeeded", "dpo": "failed"}
    assert not ModelVersion.objects.filter(training_run=run).exists()
    assert list(ModelVersion.objects.filter(is_active=True)) == [parent_version]


def test_a_crashed_pipeline_fails_the_cycle_with_its_exit_code_and_last_log_line(snapshot, monkeypatch):
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "crash")
    run = training_cycle_execute()

    assert run.state == TrainingRun.State.FAILED
    assert "exited with code 3 without a summary.json" in run.message
    assert run.message.endswith("RuntimeError: out of memory")


def test_a_pipeline_killed_mid_stage_fails_the_cycle_and_the_stage(snapshot, monkeypatch):
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "die")
    run = training_cycle_execute()

    assert run.state == TrainingRun.State.FAILED
    assert run.message.startswith(
        "the pipeline stopped during stage reward without finishing its summary (exit code -9)"
    )
    assert run.stages.get().state == TrainingRun.State.FAILED


def test_a_cycle_past_its_timeout_is_killed_and_failed(snapshot, monkeypatch, cycle_settings):
    cycle_settings.CODEPREF = {**cycle_settings.CODEPREF, "TRAINING_TIMEOUT_SECONDS": 1}
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "sleep")
    started = time.monotonic()
    run = training_cycle_execute()

    assert time.monotonic() - started < 15
    assert run.state == TrainingRun.State.FAILED
    assert run.message.startswith("timed out after 1 s")
    assert _dead(run.pid)
    assert _wait_for(lambda: _dead(int((run_dir_for(run) / "child.pid").read_text())))


def test_an_unknown_recipe_is_refused_before_anything_is_created(snapshot):
    with pytest.raises(ServiceError, match="recipe 'huge' has no pipeline config"):
        training_cycle_execute(recipe="huge")
    with pytest.raises(ServiceError, match="recipe must be a folder name"):
        training_cycle_execute(recipe="../tiny")
    assert not TrainingRun.objects.exists()


# --- one at a time, skipping, re-delivery ----------------------------------------------------------------


def test_a_second_cycle_while_one_runs_is_refused_and_creates_nothing(snapshot):
    running = running_cycle(heartbeat_age=1, pid=os.getpid(), snapshot=snapshot)

    assert tasks.train_cycle() == f"refused: cycle {running.pk} is running"
    assert tasks.train_cycle(force=True) == f"refused: cycle {running.pk} is running"
    assert TrainingRun.objects.count() == 1
    running.refresh_from_db()
    assert running.state == TrainingRun.State.RUNNING


def test_a_second_start_after_a_queued_cycle_is_refused(snapshot):
    first = training_cycle_start(force=True)
    assert first.state == TrainingRun.State.QUEUED

    with pytest.raises(Conflict, match=f"refused: cycle {first.pk} is queued"):
        training_cycle_start(force=True)
    assert TrainingRun.objects.count() == 1


def test_the_database_allows_only_one_active_cycle(db):
    TrainingRun.objects.create(stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.QUEUED)
    TrainingRun.objects.create(stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.SKIPPED)  # inactive: fine
    TrainingRun.objects.create(stage=TrainingRun.Stage.DPO, state=TrainingRun.State.RUNNING)  # stages: fine
    assert TrainingRun.objects.count() == 3


def test_a_cycle_without_enough_new_preferences_is_skipped(snapshot, cycle_settings):
    trained = TrainingRun.objects.create(
        stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.SUCCEEDED, snapshot=snapshot,
        finished_at=timezone.now(),
    )  # fmt: skip
    make_snapshot(2, rows=23, last_vote_id=45)  # 3 new rows; 5 needed

    result = tasks.train_cycle()

    skipped = TrainingRun.objects.exclude(pk=trained.pk).get()
    assert result == f"cycle {skipped.pk} skipped: {skipped.message}"
    assert skipped.state == TrainingRun.State.SKIPPED
    assert skipped.snapshot.version == 2
    assert skipped.message.startswith(f"3 new preference rows in snapshot v2 since cycle {trained.pk} (snapshot v1)")
    assert skipped.pid is None and not run_dir_for(skipped).exists()


def test_the_same_snapshot_as_last_time_counts_no_new_preferences(snapshot):
    TrainingRun.objects.create(
        stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.SUCCEEDED, snapshot=snapshot, finished_at=timezone.now()
    )
    run = training_cycle_start()
    assert run.state == TrainingRun.State.SKIPPED and run.message.startswith("0 new preference rows")


def test_a_cycle_builds_a_snapshot_of_the_votes_and_the_next_one_without_new_votes_is_skipped(
    cycle_settings, enqueued
):
    cycle_settings.CODEPREF = {**cycle_settings.CODEPREF, "SNAPSHOT_TEST_FRACTION": 0.3}  # both splits non-empty
    prompt_ids = _votes_for_good_over_broken(forms=1)

    first = training_cycle_execute()

    assert first.state == TrainingRun.State.SUCCEEDED, first.message
    snapshot = first.snapshot
    assert snapshot.state == DatasetSnapshot.State.PUBLISHED and snapshot.slot.startswith("training:")
    assert inputs.preference_rows(snapshot) == len(prompt_ids)  # one good-vs-broken pair per prompt
    assert first.config["new_preferences"] == len(prompt_ids)
    assert (snapshot.path / "preference" / "train.jsonl").is_file()

    second = training_cycle_execute()

    assert second.state == TrainingRun.State.SKIPPED
    assert second.snapshot == snapshot  # nothing was voted since: no new snapshot was built either
    assert second.message.startswith(f"0 new preference rows in snapshot v{snapshot.version} since cycle {first.pk}")
    assert DatasetSnapshot.objects.count() == 1


def test_force_trains_without_new_preferences(snapshot, enqueued):
    TrainingRun.objects.create(
        stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.SUCCEEDED, snapshot=snapshot, finished_at=timezone.now()
    )
    assert training_cycle_execute(force=True).state == TrainingRun.State.SUCCEEDED


def test_without_a_snapshot_a_cycle_is_skipped(cycle_settings, no_snapshot_build):
    run = training_cycle_execute(force=True)
    assert run.state == TrainingRun.State.SKIPPED
    assert run.message == "no published dataset snapshot to train on"


def test_a_redelivered_task_marks_a_cycle_whose_pipeline_died_failed(snapshot):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lost = running_cycle(heartbeat_age=3600, pid=gone.pid, snapshot=snapshot)

    result = tasks.train_cycle()

    lost.refresh_from_db()
    assert lost.state == TrainingRun.State.FAILED
    assert "watcher of this cycle was lost" in lost.message and f"pid {gone.pid}" in lost.message
    assert result == f"cycle {lost.pk} failed: {lost.message}"
    assert TrainingRun.objects.count() == 1  # it finished the lost cycle; the next run starts a fresh one
    assert tasks.train_cycle().startswith("cycle ")
    assert TrainingRun.objects.filter(stage="cycle").count() == 2


def test_a_redelivered_task_reattaches_to_a_pipeline_that_still_runs(
    snapshot, parent_version, enqueued, cycle_settings
):
    cycle_settings.CODEPREF = {**cycle_settings.CODEPREF, "TRAINING_TIMEOUT_SECONDS": 7200}  # started an hour ago
    lost = running_cycle(heartbeat_age=3600, snapshot=snapshot)
    out = run_dir_for(lost)
    env = {**os.environ, "FAKE_PIPELINE_DELAY": "0.3"}
    command = [sys.executable, "-m", FAKE, "--config", "c", "--snapshot", str(snapshot.path),
               "--output_dir", str(out), "--model_name_or_path", parent_version.target]  # fmt: skip
    orphan = subprocess.Popen(command, start_new_session=True, env=env, stdout=subprocess.DEVNULL)
    lost.pid = orphan.pid
    lost.base_model = parent_version
    lost.save(update_fields=["pid", "base_model"])

    lines: list[str] = []
    run = training_cycle_execute(progress=lines.append)
    orphan.wait(timeout=10)

    assert run.pk == lost.pk
    assert lines[0] == f"cycle {lost.pk}: re-attached to pipeline pid {orphan.pid} (its watcher was lost)"
    assert run.state == TrainingRun.State.SUCCEEDED, run.message
    assert ModelVersion.objects.get(training_run=run).is_active
    assert TrainingRun.objects.filter(stage="cycle").count() == 1


def test_a_redelivered_task_collects_a_summary_written_while_nobody_watched(snapshot, parent_version, enqueued):
    lost = running_cycle(heartbeat_age=3600, snapshot=snapshot)
    from tests.feedback import fake_pipeline

    fake_pipeline.main(["--config", "c", "--snapshot", str(snapshot.path), "--output_dir", str(run_dir_for(lost)),
                        "--model_name_or_path", parent_version.target])  # fmt: skip
    lost.pid = 2**22 + 12345  # no such process
    lost.save(update_fields=["pid"])

    run = training_cycle_run(run_id=lost.pk)

    assert run.state == TrainingRun.State.SUCCEEDED
    assert run.stages.count() == 3


def test_running_a_finished_cycle_again_changes_nothing(snapshot, enqueued):
    run = training_cycle_execute()
    versions = ModelVersion.objects.count()

    again = training_cycle_run(run_id=run.pk)

    assert again.state == TrainingRun.State.SUCCEEDED and again.finished_at == run.finished_at
    assert ModelVersion.objects.count() == versions


def test_train_cycle_is_routed_to_the_training_queue():
    from feedback.celery import app

    assert app.amqp.router.route({}, "feedback.tasks.train_cycle")["queue"].name == "training"


def test_the_nightly_schedule_runs_train_cycle_on_the_training_queue(db):
    from django_celery_beat.models import PeriodicTask

    from feedback.celery import app

    entry = PeriodicTask.objects.get(name="nightly-train-cycle")
    assert entry.task == "feedback.tasks.train_cycle" and entry.task in app.tasks
    assert entry.enabled and entry.queue == "training"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_on_a_real_worker_a_second_train_cycle_while_one_runs_is_refused(settings, tmp_path):
    """Two deliveries of train_cycle on a Celery worker with two processes: one cycle, one refusal."""
    import redis
    from celery import Celery

    broker = "redis://127.0.0.1:6379/8"
    redis.Redis.from_url(broker).flushdb()
    recipes = tmp_path / "recipes"
    (recipes / "tiny").mkdir(parents=True)
    (recipes / "tiny" / "pipeline.yaml").write_text("stages: [reward, dpo, evaluate]\n")
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CODEPREF_TRAINING_PIPELINE_MODULE": FAKE,
        "CODEPREF_TRAINING_RECIPES_DIR": str(recipes),
        "CODEPREF_TRAINING_DIR": str(settings.CODEPREF["TRAINING_DIR"]),
        "CODEPREF_DATASETS_DIR": str(settings.CODEPREF["DATASETS_DIR"]),
        "CODEPREF_TRAINING_POLL_SECONDS": "0.1",
        "CODEPREF_MODEL": str(tmp_path / "bootstrap"),
        "FAKE_PIPELINE_DELAY": "1.5",
    }
    make_snapshot(1, rows=20, last_vote_id=0)  # no votes: the worker's snapshot build returns nothing newer
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "feedback", "worker", "-Q", "training", "-c", "2", "-n", "hcycle@%h",
         "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        client = Celery(broker=broker, backend=broker)
        first = client.send_task("feedback.tasks.train_cycle", kwargs={"force": True}, queue="training")
        assert _wait_for(lambda: TrainingRun.objects.filter(stage="cycle", state="running").exists(), timeout=60)
        second = client.send_task("feedback.tasks.train_cycle", kwargs={"force": True}, queue="training")
        outcomes = sorted([first.get(timeout=60), second.get(timeout=60)])
    finally:
        worker.terminate()
        _, errors = worker.communicate(timeout=30)
        redis.Redis.from_url(broker).flushdb()

    cycle = TrainingRun.objects.get(stage="cycle")
    assert outcomes[0].startswith(f"cycle {cycle.pk} succeeded"), (outcomes, errors.decode()[-2000:])
    assert outcomes[1] == f"refused: cycle {cycle.pk} is running"
    assert cycle.stages.count() == 3 and ModelVersion.objects.get(training_run=cycle).is_active


# --- cancelling --------------------------------------------------------------------------------------------


def test_cancel_kills_the_pipeline_and_its_children_and_marks_the_cycle_cancelled(snapshot, monkeypatch):
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "sleep")
    seen: dict[str, int] = {}

    def progress(message: str) -> None:
        # Cancel as the admin would, from "outside", once the pipeline and its child are up.
        if "pipeline started" in message:
            run = TrainingRun.objects.get(stage="cycle")
            child = run_dir_for(run) / "child.pid"
            assert _wait_for(lambda: child.is_file() and child.read_text())
            seen["pid"], seen["child"] = run.pid, int(child.read_text())
            assert training_run_cancel(run_id=run.pk, by="maya").state == TrainingRun.State.RUNNING

    started = time.monotonic()
    run = training_cycle_execute(progress=progress)

    assert time.monotonic() - started < 20
    assert run.state == TrainingRun.State.CANCELLED
    assert run.message == "cancel requested: the pipeline's process group was killed"
    assert run.cancel_requested
    assert _dead(seen["pid"])
    assert _wait_for(lambda: _dead(seen["child"]))
    assert run.stages.get().state == TrainingRun.State.CANCELLED  # the stage it was in


def test_cancelling_a_finished_cycle_is_a_conflict(snapshot):
    done = TrainingRun.objects.create(stage="cycle", state=TrainingRun.State.SUCCEEDED)
    with pytest.raises(Conflict, match=f"cycle {done.pk} is already succeeded"):
        training_run_cancel(run_id=done.pk)


def _orphan_pipeline(run: TrainingRun) -> subprocess.Popen:
    """A process that looks like this run's pipeline (its folder on the command line) and sleeps."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(run_dir_for(run))], start_new_session=True
    )


def test_cancelling_an_unwatched_cycle_kills_its_pipeline_and_marks_it_at_once(snapshot):
    lost = running_cycle(heartbeat_age=3600, snapshot=snapshot)
    proc = _orphan_pipeline(lost)
    lost.pid = proc.pid
    lost.save(update_fields=["pid"])

    run = training_run_cancel(run_id=lost.pk, by="maya")

    assert proc.wait(timeout=15) < 0  # killed by a signal
    assert run.state == TrainingRun.State.CANCELLED and run.message == "cancelled by maya; pipeline killed"


# --- the command -------------------------------------------------------------------------------------------


def test_the_train_command_prints_progress_and_the_outcome(snapshot, enqueued):
    out = io.StringIO()
    call_command("train", "--recipe", "tiny", "--force", stdout=out)
    text = out.getvalue()
    run = TrainingRun.objects.get(stage="cycle")
    assert f"cycle {run.pk}: pipeline started (pid {run.pid})" in text
    assert "stage evaluate: succeeded" in text or "  evaluate   succeeded" in text
    assert f"cycle {run.pk} succeeded: new policy cycle-{run.pk}: promoted: beats its parent" in text


def test_the_train_command_at_verbosity_2_echoes_the_pipeline_log(snapshot, enqueued, monkeypatch):
    monkeypatch.setenv("FAKE_PIPELINE_DELAY", "0.5")
    out = io.StringIO()
    call_command("train", "--force", verbosity=2, stdout=out)
    assert "  | fake pipeline (succeed)" in out.getvalue()


def test_the_train_command_reports_a_refusal_as_an_error(snapshot):
    running = running_cycle(heartbeat_age=1, pid=os.getpid())
    with pytest.raises(CommandError, match=f"refused: cycle {running.pk} is running"):
        call_command("train", "--force", stdout=io.StringIO())


def test_the_train_command_fails_with_the_cycle_message(snapshot, monkeypatch):
    monkeypatch.setenv("FAKE_PIPELINE_MODE", "fail")
    with pytest.raises(CommandError, match="failed: stage dpo failed: dpo: loss became nan"):
        call_command("train", "--force", stdout=io.StringIO())


# --- the admin ---------------------------------------------------------------------------------------------


def test_the_admin_shows_a_cycles_stages_metrics_and_loss_curves(admin_client, snapshot, enqueued):
    run = training_cycle_execute()
    dpo = run.stages.get(stage="dpo")

    page = admin_client.get(f"/admin/feedback/trainingrun/{run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    image_url = f"/admin/feedback/trainingrun/{dpo.pk}/artefact/loss.png"
    assert f'<img src="{image_url}"' in html
    assert "&quot;pass@1&quot;: {" in html  # the metrics, pretty-printed and escaped
    assert "<p>promoted: beats its parent (pass@1 0.500 vs parent 0.250" in html  # the gate's decision
    assert "<tr><th>p-value</th><td>9.313e-10 (one-sided paired permutation test" in html
    assert f'href="/admin/feedback/trainingrun/{run.pk}/artefact/pipeline.log"' in html
    assert "Cancel this cycle" not in html  # finished

    image = admin_client.get(image_url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content).startswith(b"\x89PNG")

    listing = admin_client.get("/admin/feedback/trainingrun/")
    assert listing.status_code == 200 and f"cycle {run.pk}" in listing.content.decode()


def test_the_admin_shows_which_candidate_the_gate_judged_and_at_what_alpha(
    admin_client, snapshot, enqueued, monkeypatch
):
    monkeypatch.setenv("FAKE_PIPELINE_CANDIDATES", "2")
    run = training_cycle_execute()
    promotion = run.metrics["promotion"]
    assert (promotion["candidates"], promotion["alpha"]) == (2, 0.025)
    html = admin_client.get(f"/admin/feedback/trainingrun/{run.pk}/change/").content.decode()
    row = "<tr><th>chosen from</th><td>online_rl 0.125, dpo 0.500 (chosen) (alpha divided by 2)</td></tr>"
    assert row in html
    assert "promotes below 0.025" in html


def test_the_artefact_view_serves_only_images_and_logs_inside_the_run_to_staff(
    admin_client, client, volunteer, snapshot, enqueued, tmp_path
):
    run = training_cycle_execute()
    (tmp_path / "secret.png").write_bytes(b"\x89PNG secret")
    base = f"/admin/feedback/trainingrun/{run.pk}/artefact/"

    assert admin_client.get(base + "dpo/loss.png").status_code == 200
    assert admin_client.get(base + "dpo/config.json").status_code == 404  # not an image or a log
    assert admin_client.get(base + "../secret.png").status_code == 404
    assert admin_client.get(base + "dpo/../../secret.png").status_code == 404
    assert admin_client.get(base + "nothing.png").status_code == 404
    run.artefact_dir = str(tmp_path)  # a row pointing outside TRAINING_DIR is never served
    run.save(update_fields=["artefact_dir"])
    assert admin_client.get(base + "secret.png").status_code == 404

    client.force_login(volunteer)  # not staff: sent to the admin login
    response = client.get(base + "dpo/loss.png")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_cancelling_from_the_admin_page_stops_the_pipeline(admin_client, snapshot):
    lost = running_cycle(heartbeat_age=3600, snapshot=snapshot)
    proc = _orphan_pipeline(lost)
    lost.pid = proc.pid
    lost.save(update_fields=["pid"])

    page = admin_client.get(f"/admin/feedback/trainingrun/{lost.pk}/change/")
    assert "Cancel this cycle" in page.content.decode()
    assert admin_client.get(f"/admin/feedback/trainingrun/{lost.pk}/cancel/").status_code == 405
    response = admin_client.post(f"/admin/feedback/trainingrun/{lost.pk}/cancel/")

    assert response.status_code == 302
    assert proc.wait(timeout=15) < 0
    lost.refresh_from_db()
    assert lost.state == TrainingRun.State.CANCELLED and lost.message == "cancelled by admin; pipeline killed"


def test_the_admin_cancel_action_requests_cancel_of_a_watched_cycle(admin_client, snapshot):
    watched = running_cycle(heartbeat_age=1, snapshot=snapshot)
    response = admin_client.post(
        "/admin/feedback/trainingrun/",
        {"action": "cancel_runs", "_selected_action": [watched.pk]},
    )
    assert response.status_code == 302
    watched.refresh_from_db()
    # Its watcher (elsewhere) stops the pipeline and marks it; here only the request is recorded.
    assert watched.cancel_requested and watched.state == TrainingRun.State.RUNNING


# --- end to end: the real tiny pipeline -------------------------------------------------------------------


def _votes_for_good_over_broken(*, forms: int) -> list[int]:
    """Prompts with tests (training.data's tasks), a correct and a broken completion each, and three votes
    preferring the correct one: what volunteers would give on obviously-good-vs-broken pairs."""
    from feedback.models import Pair, Prompt, Vote
    from tests import factories
    from training import data

    imported = ModelVersion.objects.create(name="seed-completions", backend=ModelVersion.Backend.IMPORTED)
    voters = [factories.UserFactory(username=f"e2e-voter-{i}") for i in range(3)]
    prompt_ids = []
    for task, doc, expression in data.TASKS:
        for form in data.NAME_FORMS[:forms]:
            name = form.format(task)
            prompt = Prompt.objects.create(
                text=data._prompt(name, doc),
                tests=data._tests(expression),
                test_style=Prompt.TestStyle.HUMANEVAL,
                entry_point=name,
                reference_solution=f"    return {expression}\n",
                source="e2e",
                external_id=f"e2e/{name}",
            )
            prompt_ids.append(prompt.pk)
            good = factories.CompletionFactory(
                prompt=prompt, model_version=imported, text=f"    return {expression}\n"
            )
            broken = factories.CompletionFactory(
                prompt=prompt, model_version=imported, text=data.BROKEN_BODIES[len(prompt_ids) % 5]
            )
            pair = Pair.objects.create(
                prompt=prompt, language="python", completion_a=good, completion_b=broken, votes_wanted=3,
                votes_count=3, state=Pair.State.COMPLETE, last_vote_at=timezone.now(),
            )  # fmt: skip
            for i, voter in enumerate(voters):
                key = f"e2e-{pair.pk}-{i}"
                Vote.objects.create(pair=pair, volunteer=voter, choice="a", left_is_a=bool(i % 2), idempotency_key=key)
    return prompt_ids


@pytest.mark.slow
def test_end_to_end_votes_train_a_new_policy_the_gate_judges_whose_completions_are_generated_and_tested(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    """Votes -> snapshot -> the real tiny pipeline (dpo, evaluate) -> a new ModelVersion that the promotion gate
    judges on the evaluation's paired counts (too few here: the parent stays) -> generation from it -> its
    completions' tests in the sandbox. tests/training covers every stage of the full recipe."""
    from feedback.coders.generation import completions_generate
    from feedback.coders.registry import model_version_register
    from feedback.coders.verdicts import completions_run_tests
    from feedback.models import Completion
    from training import tiny

    recipes = tmp_path / "recipes"
    (recipes / "e2e").mkdir(parents=True)
    # The tiny stage recipes, fewer steps and two stages: the platform loop is under test here, not TRL.
    (recipes / "e2e" / "pipeline.yaml").write_text(
        "recipe: training/recipes/tiny\n"
        "stages: [dpo, evaluate]\n"
        "stage_args:\n"
        "  dpo: ['--max_steps', '4']\n"
        "  evaluate: ['--max_prompts', '3', '--n_samples', '2', '--max_new_tokens', '16']\n"
    )
    settings.CODEPREF = {
        **settings.CODEPREF,
        "TRAINING_RECIPES_DIR": recipes,
        "TRAINING_POLL_SECONDS": 0.5,
        "TRAINING_MIN_NEW_PREFERENCES": 10,
        "SNAPSHOT_TEST_FRACTION": 0.25,
        "PAIRING_POLICY": "arena",
    }
    tokenizer = tiny.make_tokenizer(vocab_size=400, max_bytes=300_000)
    base_dir = tiny.make_model(tmp_path / "base", tokenizer=tokenizer, hidden=32, layers=1, heads=2)
    base = model_version_register(
        name="tiny-base", backend=ModelVersion.Backend.TRANSFORMERS, target=str(base_dir), activate=True
    )
    prompt_ids = _votes_for_good_over_broken(forms=2)

    started = time.monotonic()
    lines: list[str] = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = training_cycle_execute(recipe="e2e", progress=lines.append)
    seconds = time.monotonic() - started

    assert run.state == TrainingRun.State.SUCCEEDED, f"{run.message}\n{run.log_tail}"
    assert run.snapshot is not None and inputs.preference_rows(run.snapshot) >= 10
    assert {s.stage: s.state for s in run.stages.all()} == {"dpo": "succeeded", "evaluate": "succeeded"}
    dpo = run.stages.get(stage="dpo")
    assert (
        Path(dpo.artefact_dir, "loss.png").is_file() and "loss" in Path(dpo.artefact_dir, "metrics.jsonl").read_text()
    )
    evaluation = run.metrics["evaluation"]
    assert set(evaluation["pass@1"]) == {"policy", "parent"}
    promotion = run.metrics["promotion"]
    prompts = len(evaluation["paired"]["prompt_ids"])
    assert (promotion["n_prompts"], promotion["n_samples"]) == (prompts, 2) and 1 <= prompts <= 3
    assert promotion["promote"] is False and run.message.endswith(promotion["summary"])
    assert promotion["reason"].startswith(f"too few completions to tell ({prompts} prompts x 2 samples")
    new = run.model_version
    assert new.parent == base and new.training_run == run and not new.is_active
    base.refresh_from_db()
    assert base.is_active
    assert len(callbacks) == 0  # no arena generation for a policy that was not promoted

    completions = completions_generate(
        prompt_ids=prompt_ids[:4], model_version_id=new.pk, n=2, params={"max_new_tokens": 16}
    )
    assert completions and all(c.model_version_id == new.pk for c in completions)
    counts = completions_run_tests(completion_ids=[c.pk for c in completions])
    tested = Completion.objects.filter(pk__in=[c.pk for c in completions]).exclude(outcome=Completion.Outcome.NOT_RUN)
    assert tested.count() == len(completions), counts
    stage_seconds = [(s.stage, s.metrics.get("seconds")) for s in run.stages.all()]
    print(f"e2e training cycle: {seconds:.1f} s; stages {stage_seconds}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_loss_curves_load_in_a_browser_under_the_content_security_policy(
    live_server, snapshot, enqueued, django_user_model, monkeypatch
):
    from playwright.sync_api import sync_playwright

    run = training_cycle_execute()
    django_user_model.objects.create_superuser("ada", "ada@example.org", "correct horse battery staple")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop on this thread; ORM stays sync
    blocked: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/feedback/trainingrun/{run.pk}/change/")
            page.fill("#id_username", "ada")
            page.fill("#id_password", "correct horse battery staple")
            page.click("input[type=submit]")
            page.wait_for_selector("figure img")
            # On a busy machine the last image may still be loading when the first appears.
            page.wait_for_function("() => [...document.querySelectorAll('figure img')].every(i => i.complete)")
            widths = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : -1)")
        finally:
            browser.close()

    assert widths == [1, 1, 1]  # reward, dpo, evaluate: each 1x1 PNG loaded
    assert blocked == []
