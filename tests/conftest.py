"""Shared fixtures. Under CI=true every real service is required: a missing one fails the run."""

from __future__ import annotations

import os
import socket

import pytest
from django.conf import settings

from tests import factories

IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pytest_configure(config):
    # A production password hash costs ~0.25 s here, and tests make and log in many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if IN_CI:
        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            raise pytest.UsageError(f"CI=true needs PostgreSQL (DATABASE_URL); settings use {engine}")
        if not _reachable("127.0.0.1", 6379):
            raise pytest.UsageError("CI=true needs Redis on 127.0.0.1:6379")
        if not os.path.exists("/usr/bin/chromium"):
            raise pytest.UsageError("CI=true needs Debian's chromium at /usr/bin/chromium")


def pytest_collection_modifyitems(config, items):
    """Outside CI, tests whose service is missing are skipped with the reason; in CI they run (and fail)."""
    if IN_CI:
        return
    on_postgres = "postgresql" in settings.DATABASES["default"]["ENGINE"]
    has_redis = _reachable("127.0.0.1", 6379)
    has_chromium = os.path.exists("/usr/bin/chromium")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL"))
        if "redis" in item.keywords and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis on 127.0.0.1:6379"))
        if "browser" in item.keywords and not has_chromium:
            item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium"))


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Files written by a test (snapshots, models, training runs) go to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CODEPREF = {
        **settings.CODEPREF,
        "DATASETS_DIR": tmp_path / "media" / "datasets",
        "TRAINING_DIR": tmp_path / "training",
    }


@pytest.fixture
def volunteer(db):
    return factories.UserFactory(username="vera")


@pytest.fixture
def other_volunteer(db):
    return factories.UserFactory(username="otto")


@pytest.fixture
def maintainer(db):
    return factories.MaintainerFactory(username="maya")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: the cores are shared with PostgreSQL, Redis and workers."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The bootstrap model's test preset (seconds to build), built once per session and shared."""
    from training import bootstrap

    path = tmp_path_factory.getbasetemp() / "bootstrap-test"
    return str(bootstrap.build(path, preset="test", threads=1).path)


@pytest.fixture(autouse=True)
def _no_cached_api_tokens():
    """API token lookups are cached per process: no test sees a lookup another test made."""
    from feedback.api import authentication

    authentication.forget_all()
    yield
    authentication.forget_all()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counts live in the cache (per process in tests): no test sees another's."""
    from django.core.cache import cache

    from feedback.api import throttling

    cache.clear()
    throttling._cache_down_until = 0.0
    yield
