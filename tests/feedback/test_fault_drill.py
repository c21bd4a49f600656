"""Faults under load, short form: 8 volunteers vote through gunicorn while a gunicorn worker is killed,
PostgreSQL's backends are terminated and the server restarted, Redis is stopped during a snapshot request and
the Celery worker is killed mid-build; all of it on a stack of its own (tests/drill_stack.py), never the
machine's PostgreSQL or Redis.

Every vote acknowledged with a 2xx is in the database exactly once (ids compared), clients only see
2xx/4xx/503 as JSON and never wait past their timeout, the service recovers by itself, and every snapshot
accepted (including the one refused while Redis was down, asked again) is built. The full form is
``bench/fault_drill.py``.
"""

from __future__ import annotations

import pytest

from tests import drill_stack as live_stack
from tests import fault_drill
from tests.drill_stack import Stack

pytestmark = [pytest.mark.redis, pytest.mark.timeout(420)]

if live_stack.missing():
    pytest.skip(f"needs {live_stack.missing()}", allow_module_level=True)


def test_faults_under_load_lose_no_acknowledged_vote_and_recover(tmp_path):
    with Stack(tmp_path, pairs=2000) as stack:
        report = fault_drill.run(stack, volunteers=8, phase_seconds=3.0, postgres_down=2.0)
        worker_log = stack.worker.log()
    figures = fault_drill.summary(report)
    assert fault_drill.verdict(report) == [], figures
    assert figures["acknowledged_votes"] > 50, figures
    phases = figures["by_phase"]
    assert set(phases) >= {"steady", "postgres-restarted", "redis-stopped", "recovered"}, figures
    assert phases["postgres-restarted"].get(503, 0) > 0, figures  # the outage was seen, as a 503
    assert report.refused_snapshots >= 1 and len(report.snapshots) >= 2, figures
    assert "WorkerLostError" in worker_log  # the build was killed mid-way and ran again
