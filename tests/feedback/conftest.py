"""Fixtures shared by the feedback tests."""

from tests.celery_worker import celery_worker  # noqa: F401 (a real Celery worker on Redis, module-scoped)
