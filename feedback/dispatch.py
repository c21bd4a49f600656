"""Follow-up work by task name, so that domain code never imports the task modules that call it.

``enqueue("feedback.tasks.run_tests", completion_ids=[...])`` sends the registered task after the current
transaction commits (at once outside one). Chains of tasks live with the tasks (``<package>/tasks.py``).
Under ``CELERY_TASK_ALWAYS_EAGER`` (the demo) the task runs inline, as ``apply_async`` does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)


@functools.cache
def _registry():
    # The worker imports the task modules when it starts; a web process or a command does it here, once.
    current_app.loader.import_default_modules()
    return current_app.tasks


def task(name: str):
    """The registered task called ``name``; KeyError names it if no module defines it."""
    tasks = _registry()
    if name not in tasks:
        raise KeyError(f"no Celery task named {name!r}")
    return tasks[name]


def enqueue(
    name: str,
    *,
    task_id: str | None = None,
    on_commit: bool = True,
    on_error: Callable[[Exception], None] | None = None,
    **kwargs,
) -> None:
    """Send task ``name`` with ``kwargs`` after commit (or now). ``on_error`` gets a broker failure instead
    of the caller, who has already committed and cannot be told any more."""

    def send() -> None:
        try:
            task(name).apply_async(kwargs=kwargs, task_id=task_id)
        except Exception as exc:
            if on_error is None:
                raise
            log.exception("task %s could not be queued", name)
            on_error(exc)

    if on_commit:
        transaction.on_commit(send)
    else:
        send()
