"""Pages a maintainer opens beyond the project's own admin: the periodic-task editor (django-celery-beat) and the
browsable API (DRF). Loaded in headless Chromium with the site's CSP: no inline script or style is blocked."""

from __future__ import annotations

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tests import factories
from tests.feedback.test_api_docs import WATCH
from tests.feedback.test_browser import TIMEOUT_MS, admin_log_in, browser  # noqa: F401 (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def boss(db):
    # Its own schedule: a transactional test before this one may have flushed the ones migrations add.
    crontab = CrontabSchedule.objects.create(minute="30", hour="3")
    PeriodicTask.objects.create(name="nightly-test-task", task="feedback.tasks.train_cycle", crontab=crontab)
    return factories.MaintainerFactory(username="boss", is_staff=True, is_superuser=True)


def pages() -> list[str]:
    task = PeriodicTask.objects.get(name="nightly-test-task")
    crontab = task.crontab
    return [
        "/admin/django_celery_beat/periodictask/",
        "/admin/django_celery_beat/periodictask/add/",
        f"/admin/django_celery_beat/periodictask/{task.pk}/change/",
        f"/admin/django_celery_beat/crontabschedule/{crontab.pk}/change/",
        "/api/v1/datasets/",
        "/api/v1/pairs/next/",
    ]


def test_the_periodic_task_editor_and_the_browsable_api_break_no_csp_rule(browser, live_server, boss):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    admin_log_in(page, live_server, "boss")
    found = {}
    for path in pages():
        response = page.goto(live_server.url + path)
        assert response.status in (200, 403), path  # a 403 is rendered by the browsable API too
        page.wait_for_load_state("load")
        found[path] = page.evaluate("window.__cspViolations")
    assert found == {path: [] for path in found}

    # The crontab's translation, which django-celery-beat's inline script wrote, still shows (from the static file).
    task = PeriodicTask.objects.get(name="nightly-test-task")
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/{task.pk}/change/")
    help_text = page.inner_text(".field-crontab .help")
    assert f"Translation: {task.crontab.human_readable}" in help_text
    assert page.evaluate("window.__cspViolations") == []
    context.close()


def test_the_browsable_apis_code_colours_file_is_what_drf_would_inline():
    from pathlib import Path

    from rest_framework.compat import pygments_css
    from rest_framework.renderers import BrowsableAPIRenderer

    css = Path(__file__).resolve().parents[2] / "feedback" / "static" / "feedback" / "drf_code_style.css"
    assert css.read_text().split("*/\n", 1)[1].strip() == pygments_css(BrowsableAPIRenderer.code_style).strip()
