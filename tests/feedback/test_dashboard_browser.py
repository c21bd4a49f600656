"""The admin's dashboard in headless Chromium at 1280x800 and 390x844: tiles and plots drawn, nothing wider than
the screen, no CSP violation. Screenshots: ``test-artifacts/admin-dashboard-{size}.png``."""

from __future__ import annotations

import pytest

from feedback.models import Vote
from tests import factories
from tests.feedback.test_api_docs import VIEWPORTS, WATCH
from tests.feedback.test_browser import ARTIFACTS, TIMEOUT_MS, admin_log_in, browser  # noqa: F401 (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def staff_with_votes():
    """A superuser "boss" with 3 votes today, on pairs whose A passes and B fails."""
    user = factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    for n in range(3):
        pair = factories.PairFactory(completion_a__outcome="passed", completion_b__outcome="failed")
        Vote.objects.create(pair=pair, volunteer=user, choice="a", left_is_a=True, idempotency_key=f"k{n}")
    return user


@pytest.fixture
def boss(db):
    return staff_with_votes()


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_dashboard_draws_its_plots_within_the_screen_without_a_csp_violation(browser, live_server, boss, size):  # noqa: F811
    context = browser.new_context(viewport=VIEWPORTS[size])
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # /favicon.ico is the volunteer pages' slice (issue 13); any other failed load is an error here.
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None
        ),
    )
    admin_log_in(page, live_server, "boss")

    charts = page.locator(".dash-chart svg")
    assert charts.count() == 3
    # The votes chart's last bar (today, 3 votes) is drawn: it has a height on screen.
    today = page.locator(".dash-chart").first.locator("rect").last
    assert today.get_attribute("data-value") == "3"
    assert today.bounding_box()["height"] > 10
    assert page.locator(".dash-tile").count() == 8
    width = VIEWPORTS[size]["width"]
    too_wide = page.evaluate(
        """(width) => [...document.querySelectorAll('.codepref-dashboard, .codepref-dashboard *')]
            .filter((el) => el.getBoundingClientRect().right > width + 1)
            .map((el) => el.className.baseVal ?? el.className)""",
        width,
    )
    assert too_wide == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-dashboard-{size}.png"), full_page=True)
    assert page.evaluate("window.__cspViolations") == []
    assert errors == []
    context.close()


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_pair_review_puts_the_sides_side_by_side_or_stacked_on_a_phone(browser, live_server, boss, size):  # noqa: F811
    from feedback.models import Pair

    pair = Pair.objects.order_by("pk").first()
    context = browser.new_context(viewport=VIEWPORTS[size])
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    admin_log_in(page, live_server, "boss", f"/admin/feedback/pair/{pair.pk}/change/")
    a, b = (page.locator(".pair-review-side").nth(i).bounding_box() for i in range(2))
    if size == "1280x800":
        assert a["y"] == b["y"] and a["x"] + a["width"] <= b["x"], (a, b)
    else:
        assert a["y"] + a["height"] <= b["y"] and b["x"] + b["width"] <= VIEWPORTS[size]["width"], (a, b)
    assert page.locator(".pair-review-side .hl .k").count() >= 2  # highlighted keywords on both sides
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-pair-review-{size}.png"), full_page=True)
    assert page.evaluate("window.__cspViolations") == []
    context.close()
