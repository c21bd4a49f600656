"""Celery tasks: thin wrappers that take ids and call one service. Each is safe to run twice.

Routing (settings.CELERY_TASK_ROUTES): generation -> "generation", tests -> "sandbox",
training -> "training", everything else -> "default".
"""

from __future__ import annotations

from celery import shared_task  # noqa: F401
