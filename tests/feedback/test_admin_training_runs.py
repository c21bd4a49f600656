"""Training runs in the admin: each stage's own time, whole metric items, logs without progress bars, and a line
saying what the cycle produced."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from feedback.cycles import display
from feedback.models import ModelVersion, Pair, TrainingRun
from tests import factories

pytestmark = pytest.mark.django_db

LOG = (
    "2026-12-04 10:00:00 dpo: step 10 loss 0.69\n"
    "Map: 100%|██████████| 54/54 [00:00<00:00, 812.31 examples/s]\n"
    "Writing model shards: 100%|██████████| 1/1 [00:00<00:00, 486.86it/s]\n"
    "  5%|▌         | 1/20 [00:01<00:19,  1.02s/it]\n"
    "▏▎▍▌▋▊▉█\n"
    "2026-12-04 10:00:05 dpo: done, 20 steps\n"
)


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def cycle():
    start = timezone.now() - timedelta(hours=1)
    run = TrainingRun.objects.create(
        stage="cycle", state="succeeded", started_at=start, finished_at=start + timedelta(minutes=30)
    )
    metrics = {
        "seconds": 754.4,
        "reward_accuracy_before": 0.512345,
        "reward_accuracy_after": 0.75,
        "a_very_long_metric_name_that_used_to_be_cut_in_the_middle": 1,
        "dropped_too_long": 0,
        "eval_loss": 0.4321,
        "margin": 0.1,
        "train_loss": 0.2,
        "curve": [0.9, 0.5],
    }
    # The watcher saw the stage late: its row's start and finish span 2 s, its own time is 754.4 s.
    TrainingRun.objects.create(
        cycle=run,
        stage="reward",
        state="succeeded",
        metrics=metrics,
        started_at=start,
        finished_at=start + timedelta(seconds=2),
        log_tail=LOG,
    )
    return run


def test_a_stage_shows_its_own_seconds_not_the_span_its_row_was_seen(admin_client, cycle):
    page = text_of(admin_client.get(reverse("admin:feedback_trainingrun_change", args=[cycle.pk])))
    assert "reward succeeded 0:12:34 " in page
    listing = text_of(admin_client.get(reverse("admin:feedback_trainingrun_changelist")))
    assert "0:12:34" in listing and "0:30:00" in listing  # the stage's own time; the cycle's start to finish


def test_the_stages_table_shows_whole_metric_items_and_how_many_more(admin_client, cycle):
    page = text_of(admin_client.get(reverse("admin:feedback_trainingrun_change", args=[cycle.pk])))
    assert (
        "a_very_long_metric_name_that_used_to_be_cut_in_the_middle=1, dropped_too_long=0, eval_loss=0.4321, "
        "margin=0.1, reward_accuracy_after=0.75, reward_accuracy_before=0.5123 and 2 more on the stage&#x27;s page"
    ) in page


def test_the_log_tail_leaves_progress_bars_out_and_says_how_many(admin_client, cycle):
    stage = cycle.stages.get()
    html = admin_client.get(reverse("admin:feedback_trainingrun_change", args=[stage.pk])).content.decode()
    log = html.split("<pre>2026-12-04 10:00:00")[1].split("</pre>")[0]
    assert log == " dpo: step 10 loss 0.69\n2026-12-04 10:00:05 dpo: done, 20 steps"
    assert "4 progress-bar lines left out (the full log has them)" in html
    assert "█" not in html and "▌" not in html


def test_progress_bar_lines_are_recognised_and_ordinary_lines_kept():
    text, dropped = display.log_without_progress_bars("loss 50%|of| the batch\n 40%|████  | 4/10 [00:01<00:02]\nok")
    assert (text, dropped) == ("loss 50%|of| the batch\nok", 1)


def _promoted_cycle(promote: bool) -> tuple[TrainingRun, ModelVersion]:
    version = ModelVersion.objects.create(name="cycle-7-policy", backend="transformers", target="/p")
    run = TrainingRun.objects.create(
        stage="cycle", state="succeeded", model_version=version, metrics={"promotion": {"promote": promote}}
    )
    return run, version


def test_the_cycle_says_what_it_produced(settings):
    failed = TrainingRun.objects.create(stage="cycle", state="failed", message="stage dpo failed: loss became nan")
    assert display.cycle_outcome(failed) == "nothing: the cycle failed (stage dpo failed: loss became nan)"
    kept, _ = _promoted_cycle(False)
    assert display.cycle_outcome(kept) == (
        "model version cycle-7-policy, not promoted (its parent stays active); 0 new pairs: it writes none"
    )


def test_a_promoted_cycle_counts_its_pairs_or_says_why_there_are_none(settings):
    run, version = _promoted_cycle(True)
    settings.CODEPREF = {**settings.CODEPREF, "MAX_PAIRS_PER_PROMPT": 1}
    factories.PairFactory()  # the only prompt holds its one pair
    assert display.cycle_outcome(run) == (
        "model version cycle-7-policy, promoted and active; 0 new pairs: every prompt already holds its pairs "
        "(MAX_PAIRS_PER_PROMPT = 1)"
    )
    settings.CODEPREF = {**settings.CODEPREF, "MAX_PAIRS_PER_PROMPT": 6}
    assert display.cycle_outcome(run).endswith(
        "0 new pairs yet: its completions are being generated (queue 'generation')"
    )
    factories.PairFactory(completion_a__model_version=version)
    Pair.objects.create(
        prompt=(p := factories.PromptFactory()),
        language="python",
        completion_a=factories.CompletionFactory(prompt=p),
        completion_b=factories.CompletionFactory(prompt=p, model_version=version),
        state=Pair.State.COMPLETE,
    )
    assert display.cycle_outcome(run) == (
        "model version cycle-7-policy, promoted and active; 2 new pairs of its completions (1 open for votes)"
    )


def test_the_cycle_page_shows_the_produced_line(admin_client):
    run, _ = _promoted_cycle(False)
    page = text_of(admin_client.get(reverse("admin:feedback_trainingrun_change", args=[run.pk])))
    assert "Produced: model version cycle-7-policy, not promoted" in page


def test_a_progress_line_goes_to_the_callback_or_the_log_never_both(caplog):
    from feedback.cycles.runs import say

    printed = []
    with caplog.at_level("INFO", logger="feedback.cycles.runs"):
        say(printed.append, "cycle 1: pipeline started")
        say(None, "cycle 2: pipeline started")
    assert printed == ["cycle 1: pipeline started"]
    assert [r.getMessage() for r in caplog.records if r.name == "feedback.cycles.runs"] == [
        "cycle 2: pipeline started"
    ]
