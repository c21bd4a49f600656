"""The leaderboard page in real headless Chromium: the table in rating order, the plot loaded as an image, no
CSP violation or console error, and a signed-in volunteer opting out with the page's button.

Saves a screenshot to ``test-artifacts/leaderboard-page.png``.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from feedback.leaderboards import services
from feedback.models import Volunteer
from tests import factories
from tests.feedback.test_browser import ARTIFACTS, TIMEOUT_MS, browser, log_in  # noqa: F401 (fixture)
from tests.feedback.test_leaderboards import model_pair, vote, votes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSP_HOOK = """
window.__csp = [];
document.addEventListener(
  "securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI)
);
"""


@pytest.fixture
def board(settings):
    settings.CODEPREF = {**settings.CODEPREF, "LEADERBOARD_BOOTSTRAP_ROUNDS": 200}
    passed, failed = "passed", "failed"
    votes(model_pair("coder-7b-dpo", "coder-7b-base", outcomes=(passed, failed)), "aaaaaabtx")
    votes(model_pair("coder-7b-base", "coder-1b", outcomes=(passed, failed)), "aaaaabb")
    votes(model_pair("coder-7b-dpo", "coder-1b", outcomes=(passed, failed)), "aaaaaaab")
    rita = factories.UserFactory(username="rita")
    Volunteer.objects.update_or_create(user=rita, defaults={"accepted_terms_at": timezone.now()})
    for _ in range(3):
        vote(model_pair("coder-7b-dpo", "coder-1b"), "a", by=rita)
    services.leaderboard_refresh()
    return rita


def test_the_leaderboard_page_in_chromium(browser, live_server, board):  # noqa: F811
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(CSP_HOOK)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/leaderboard/")

    models = page.locator("#model-board tbody th.model").all_inner_texts()
    assert models == ["coder-7b-dpo", "coder-7b-base", "coder-1b"]
    ratings = [int(text) for text in page.locator("#model-board tbody td.rating").all_inner_texts()]
    assert ratings == sorted(ratings, reverse=True) and ratings[0] > ratings[-1]
    assert page.locator("#model-board tbody td.pass").all_inner_texts() == ["100%", "50%", "0%"]
    assert "both-bad votes are left out" in page.inner_text(".explain")
    page.wait_for_function("document.getElementById('ratings-plot').complete")
    width = page.eval_on_selector("#ratings-plot", "img => img.naturalWidth")
    assert width > 300
    assert page.locator("#win-rates tbody tr").count() == 3
    assert "rita" in page.inner_text("#contributors-all-time")
    page.screenshot(path=str(ARTIFACTS / "leaderboard-page.png"), full_page=True)
    assert page.evaluate("window.__csp") == []
    assert errors == []

    # Signed in, rita hides herself with the page's button.
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/leaderboard/")
    page.click("#opt-out")
    page.wait_for_selector("#opt-in")
    assert "no longer listed" in page.inner_text(".messages")
    assert "rita" not in page.inner_text("#contributors-all-time")
    assert Volunteer.objects.get(user=board).listed_on_leaderboard is False
    context.close()
