"""Test-only: a Celery worker started with ``-I tests.paused_snapshots`` pauses each snapshot build once, after
its pair rows are written, so that a test can kill the worker mid-build or run two builds at once.

It wraps the build the task calls and pauses in the build's progress callback; production code has no pause.
"""

from __future__ import annotations

import time

from feedback.datasets import tasks

PAUSE_SECONDS = 3.0

_build = tasks.snapshot_build


def _paused_build(**kwargs):
    paused = False

    def on_progress(fraction: float, stage: str) -> None:
        nonlocal paused
        if stage != "starting" and not paused:  # the row's progress is already saved: a test can see it
            paused = True
            time.sleep(PAUSE_SECONDS)

    return _build(on_progress=on_progress, **kwargs)


tasks.snapshot_build = _paused_build
