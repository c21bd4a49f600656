"""A hung Redis (stopped with SIGSTOP: connections open, nothing answered) behind a real gunicorn: building a
snapshot answers a JSON 503 with Retry-After within seconds instead of hanging, and once Redis resumes the
same process queues builds again, without a restart. The Redis is the test's own, on a free port.
"""

from __future__ import annotations

import os
import signal

import pytest
import redis
from knox.models import AuthToken

from feedback.models import DatasetSnapshot
from tests import factories
from tests.live_stack import request, start_gunicorn, start_redis, stop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REDIS_TIMEOUT = 1.0
ANSWER_WITHIN = 8.0  # seconds: connect + read timeouts and one publish retry, with room for a busy machine


@pytest.fixture
def hung_stack(tmp_path):
    broker, port = start_redis(tmp_path)
    web = None
    try:
        env = {
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CACHE_URL": f"redis://127.0.0.1:{port}/1",
            "REDIS_TIMEOUT": str(REDIS_TIMEOUT),
        }
        web, web_port, _ = start_gunicorn(tmp_path, "gunicorn", env)
        yield {"redis": broker, "redis_port": port, "port": web_port}
    finally:
        if broker.poll() is None:
            broker.send_signal(signal.SIGCONT)
        stop(web)
        stop(broker)


def _build(port: int, token: str):
    return request(port, "POST", "/api/v1/datasets/", body={}, headers={"Authorization": f"Token {token}"})


def test_a_hung_redis_answers_503_in_seconds_and_recovers_without_a_restart(hung_stack):
    port = hung_stack["port"]
    token = AuthToken.objects.create(factories.MaintainerFactory(username="maya"))[1]
    queue = redis.Redis(port=hung_stack["redis_port"], db=0)

    first = _build(port, token)
    assert first.status == 202, first.body
    assert queue.llen("default") == 1

    os.kill(hung_stack["redis"].pid, signal.SIGSTOP)
    hung = [_build(port, token) for _ in range(2)]
    for answer in hung:
        assert answer.status == 503, answer.body
        assert "could not be queued" in answer.json()["error"]
        assert int(answer.headers["retry-after"]) > 0
        assert answer.seconds < ANSWER_WITHIN, f"answered after {answer.seconds:.1f} s"
    print(f"hung Redis: 503 after {hung[0].seconds:.2f} s, then {hung[1].seconds:.2f} s")

    os.kill(hung_stack["redis"].pid, signal.SIGCONT)
    again = _build(port, token)
    assert again.status == 202, again.body
    print(f"resumed: 202 after {again.seconds:.2f} s")
    states = list(DatasetSnapshot.objects.order_by("version").values_list("state", flat=True))
    assert states == ["building", "failed", "failed", "building"]
    assert queue.llen("default") >= 2  # the resumed build is queued (a publish sent while hung may land too)
