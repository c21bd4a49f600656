"""The maintainers' dashboard on the admin's index: the figures from known rows, the charts' bars, the queues."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import redis
from django.urls import reverse
from django.utils import timezone

from feedback.coders import firstrun
from feedback.dashboard import queues, selectors
from feedback.models import DatasetSnapshot, Flag, ModelVersion, Pair, TrainingRun, Vote
from tests import factories

pytestmark = pytest.mark.django_db


def vote(pair, user, choice, *, days_ago=0):
    return Vote.objects.create(
        pair=pair,
        volunteer=user,
        choice=choice,
        left_is_a=True,
        idempotency_key=f"{pair.pk}-{user.pk}",
        created_at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.fixture
def rows():
    """Three volunteers; pair 1 has votes a, a, b; pair 2 tie, tie; pair 3 one vote; two model versions."""
    users = [factories.UserFactory(username=f"dash{n}") for n in range(3)]
    p1, p2, p3 = (factories.PairFactory() for _ in range(3))
    vote(p1, users[0], "a"), vote(p1, users[1], "a", days_ago=3), vote(p1, users[2], "b", days_ago=10)
    vote(p2, users[0], "tie"), vote(p2, users[1], "tie", days_ago=20)  # 20 days ago: before the chart
    vote(p3, users[2], "a")
    Pair.objects.filter(pk=p1.pk).update(votes_count=3, state=Pair.State.COMPLETE)
    Pair.objects.filter(pk=p2.pk).update(votes_count=2)
    Pair.objects.filter(pk=p3.pk).update(votes_count=1)
    strong = ModelVersion.objects.create(name="strong-v1", backend="transformers", target="/s")
    weak = ModelVersion.objects.create(name="weak-v2", backend="transformers", target="/w")
    for outcome in ["passed", "passed", "passed", "failed"]:
        factories.CompletionFactory(model_version=strong, outcome=outcome)
    for outcome in ["error", "error", "not_run"]:
        factories.CompletionFactory(model_version=weak, outcome=outcome)
    for user, state in zip(users, ["open", "open", "dismissed"], strict=True):
        Flag.objects.create(reporter=user, pair=p3, reason="broken", state=state)
    DatasetSnapshot.objects.create(version=1, state="published", published_at=timezone.now())
    DatasetSnapshot.objects.create(
        version=2, state="published", published_at=timezone.now(), counts={"preference_train": 9, "preference_test": 1}
    )
    TrainingRun.objects.create(stage="cycle", state="succeeded", message="0 new pairs: every prompt holds its pairs")
    return {"users": users, "pairs": (p1, p2, p3)}


def test_votes_per_day_counts_each_of_the_last_14_days_including_empty_ones(rows):
    days = selectors.votes_per_day()
    assert len(days) == 14 and days[-1][0] == timezone.now().date()
    assert [n for _, n in days] == [0, 0, 0, 1] + [0] * 6 + [1, 0, 0, 3]


def test_active_volunteers_are_those_who_voted_in_the_last_7_days(rows):
    # dash0 (today), dash1 (3 days ago), dash2 (today); older votes (10 and 20 days ago) don't count.
    assert selectors.active_volunteers() == 3
    Vote.objects.filter(volunteer=rows["users"][2], created_at__gte=timezone.now() - timedelta(days=1)).delete()
    assert selectors.active_volunteers() == 2


def test_open_pairs_hold_their_votes_and_are_counted_by_votes_so_far(rows):
    factories.PairFactory()  # a fourth, open, without votes
    pairs = selectors.open_pairs()
    assert (pairs["count"], pairs["votes"], pairs["wanted"]) == (3, 3, 9)
    assert pairs["by_votes"] == [(0, 1), (1, 1), (2, 1)]


def test_agreement_is_krippendorffs_alpha_and_the_share_of_votes_with_the_majority(rows):
    # Units (a, b, tie, bad) = (2, 1, 0, 0) and (0, 0, 2, 0): by hand, alpha = 1 - 4 * 2 / (25 - 9) = 0.5.
    found = selectors.agreement()
    assert found["pairs"] == 2
    assert found["alpha"] == pytest.approx(0.5)
    assert found["rate"] == pytest.approx(4 / 5) and found["rate_percent"] == 80


def test_pass_rate_counts_tested_completions_only_per_model_version(rows):
    assert selectors.pass_rates() == [
        {"name": "strong-v1", "tested": 4, "passed": 3, "rate": 0.75, "percent": 75},
        {"name": "weak-v2", "tested": 2, "passed": 0, "rate": 0.0, "percent": 0},
    ]


def test_queue_depths_inline_say_so_and_a_non_redis_broker_is_named(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert queues.queue_depths()["state"] == "inline"
    assert queues.queue_depths("amqp://guest@localhost//") == {
        "state": "unsupported",
        "detail": "queue depths are read from Redis; the broker is amqp",
    }


def test_a_broker_that_does_not_answer_is_reported_not_raised():
    found = queues.queue_depths("redis://127.0.0.1:1/0")
    assert found["state"] == "unreachable" and "ConnectionError" in found["detail"]


@pytest.mark.redis
def test_queue_depths_are_the_redis_list_lengths_of_each_queue_and_its_priorities():
    url = "redis://127.0.0.1:6379/7"
    client = redis.Redis.from_url(url)
    keys = ["default", "generation", "sandbox", "training", "default\x06\x163"]
    client.delete(*keys)
    try:
        client.rpush("sandbox", "m1", "m2")
        client.rpush("default\x06\x163", "m3")
        client.rpush("default", "m4")
        assert queues.queue_depths(url) == {
            "state": "ok",
            "depths": {"default": 2, "generation": 0, "sandbox": 2, "training": 0},
        }
    finally:
        client.delete(*keys)


def test_the_admin_index_shows_the_dashboard_with_its_figures_and_charts(admin_client, rows, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    (tmp_path / "demo-model.json").write_text(json.dumps({"stage": "generating", "message": "generating: 40 of 108"}))
    page = admin_client.get(reverse("admin:index")).content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Demo model (in the background): generating: 40 of 108" in text
    assert "3 today, 5 in 14 days" in text
    assert "3 voted in the last 7 days" in text
    assert "2 holding 3 of the 6 votes they want" in text
    assert "α 0.50 over 2 pairs with 2+ votes; 80% of their votes match" in text
    assert "2 waiting for a moderator" in text
    assert "tasks run inline (no broker)" in text
    assert re.search(r"v2 published \d{4}-\d\d-\d\d \d\d:\d\d · 10 preference rows", text), text
    assert "0 new pairs: every prompt holds its pairs" in text
    assert "strong-v1 3 4 75%" in text
    # Charts: 14 day bars, one per open-pair vote count (0, 1, 2), one per model version.
    charts = page.split('<figure class="dash-chart">')[1:]
    values = [re.findall(r'data-value="([^"]+)"', chart) for chart in charts]
    assert values[0][-4:] == ["1", "0", "0", "3"] and len(values[0]) == 14
    assert values[1] == ["0", "1", "1"]  # open pairs with 0, 1 and 2 votes
    assert values[2] == ["0.75", "0.0"]
    assert "style=" not in page.split('class="codepref-dashboard"')[1].split("</section>")[0]


def test_the_dashboard_without_any_data_says_so(admin_client, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    page = admin_client.get(reverse("admin:index"))
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert "no pair has two votes yet" in text and "none yet" in text and "Demo model" not in text


def test_the_demo_status_file_written_by_the_background_model_is_read_back(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert firstrun.demo_status_read() is None
    progress = firstrun._Progress(lambda line: None, "test")
    progress.update("building", "building the model: step 3 of 20", step=3)
    assert firstrun.demo_status_read()["step"] == 3
    (tmp_path / "demo-model.json").write_text("{not json")
    assert firstrun.demo_status_read() is None


def test_bar_heights_are_proportional_and_every_bar_stays_inside_the_chart():
    from feedback.dashboard.charts import HEIGHT, WIDTH, bar_chart

    chart = bar_chart("votes", [("mon", 2), ("tue", 4), ("wed", 0)], every=2)
    heights = [bar.height for bar in chart.bars]
    assert heights[1] == pytest.approx(2 * heights[0]) and heights[2] == 0
    assert [bar.label for bar in chart.bars] == ["mon", "", "wed"]
    assert [bar.full_label for bar in chart.bars] == ["mon", "tue", "wed"]
    for bar in chart.bars:
        assert 0 <= bar.x and bar.x + bar.width <= WIDTH and 0 <= bar.y and bar.y + bar.height <= HEIGHT
    rates = bar_chart("pass rate", [("a", 0.5), ("b", 1.0)], percent=True)
    assert [bar.shown for bar in rates.bars] == ["50%", "100%"]
    assert rates.bars[0].height == pytest.approx(rates.bars[1].height / 2)
