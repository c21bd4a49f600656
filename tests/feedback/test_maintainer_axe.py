"""axe-core on the pages a maintainer opens (issue 13): the admin's dashboard, lists and change pages, the pair
review, a training run, the API docs and the leaderboard; no serious or critical violation at 1280x800.

axe is injected as a script, which the site's CSP rightly blocks, so this context bypasses the CSP; the
dashboard, docs and admin CSP tests check the CSP on the same pages."""

from __future__ import annotations

import pytest

from feedback.models import ModelVersion, TrainingRun
from tests.feedback.test_browser import TIMEOUT_MS, admin_log_in, browser  # noqa: F401 (the browser fixture)
from tests.feedback.test_dashboard_browser import staff_with_votes
from tests.feedback.test_volunteer_browser import axe_serious

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def boss(db):
    user = staff_with_votes()
    ModelVersion.objects.create(name="replit-like", backend="transformers", target="x", trust_remote_code=True)
    TrainingRun.objects.create(stage=TrainingRun.Stage.CYCLE, state=TrainingRun.State.SUCCEEDED, recipe="tiny")
    return user


def maintainer_pages() -> list[tuple[str, str]]:
    from feedback.models import Pair

    pair = Pair.objects.order_by("pk").first()
    run = TrainingRun.objects.first()
    return [
        ("dashboard", "/admin/"),
        ("pairs", "/admin/feedback/pair/"),
        ("pair-review", f"/admin/feedback/pair/{pair.pk}/change/"),
        ("prompts", "/admin/feedback/prompt/"),
        ("completions", "/admin/feedback/completion/"),
        ("model-versions", "/admin/feedback/modelversion/"),
        ("volunteers", "/admin/feedback/volunteer/"),
        ("snapshots", "/admin/feedback/datasetsnapshot/"),
        ("training-runs", "/admin/feedback/trainingrun/"),
        ("training-run", f"/admin/feedback/trainingrun/{run.pk}/change/"),
        ("api-docs", "/api/v1/docs/"),
        ("leaderboard", "/leaderboard/"),
    ]


def test_axe_finds_no_serious_or_critical_violation_on_any_maintainer_page(browser, live_server, boss):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    admin_log_in(page, live_server, "boss")
    found = {}
    for name, path in maintainer_pages():
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, (name, response.status)
        if name == "api-docs":
            page.locator(".opblock").first.wait_for()
            # Swagger UI's own markup puts the operation's buttons inside its summary button (axe:
            # nested-interactive); that is the third-party widget's structure, not ours: Redoc is offered beside it.
            found[name] = [v for v in axe_serious(page) if not v.startswith("nested-interactive")]
            continue
        found[name] = axe_serious(page)
    context.close()
    assert {name: v for name, v in found.items() if v} == {}
