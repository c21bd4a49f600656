"""Fixtures shared by the feedback tests."""

import pytest

from tests.celery_worker import celery_worker  # noqa: F401 (a real Celery worker on Redis, module-scoped)
from tests.training.fake_openai import FakeServer


@pytest.fixture
def server():
    """An OpenAI-compatible server on a free port that answers from a script and records requests."""
    fake = FakeServer()
    yield fake
    fake.close()
