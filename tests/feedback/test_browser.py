"""The ranking loop in real headless Chromium: log in, rank with the keyboard, report, and without JavaScript.

Saves a screenshot of the ranking page to ``test-artifacts/ranking-page.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from feedback.models import Assignment, Flag, Pair, Volunteer, Vote
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still
    # plain synchronous ones, so Django's guard against DB access inside a running loop is lifted here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield browser
            browser.close()


@pytest.fixture
def ranker(db):
    user = factories.UserFactory(username="rita")
    Volunteer.objects.filter(user=user).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    return user


def make_pairs(count: int) -> dict[str, tuple[int, str]]:
    """Pairs whose completions say who they are: completion text -> (pair id, "a" or "b")."""
    whose = {}
    for n in range(count):
        prompt = factories.PromptFactory(
            text=f'def clamp_{n}(value, low, high):\n    """Return value limited to the range [low, high]."""\n',
            entry_point=f"clamp_{n}",
        )
        a_text = f"    # pair {n}, completion a\n    return max(low, min(value, high))\n"
        b_text = f"    # pair {n}, completion b\n    if value < low:\n        return low\n" + (
            "    if value > high:\n        return high\n    return value\n"
        )
        pair = factories.PairFactory(prompt=prompt, completion_a__text=a_text, completion_b__text=b_text)
        whose[f"pair {n}, completion a"] = (pair.pk, "a")
        whose[f"pair {n}, completion b"] = (pair.pk, "b")
    return whose


def log_in(page, live_server, username: str, lands_on: str = "/rank/") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{live_server.url}{lands_on}")


def admin_log_in(page, live_server, username: str, next_path: str = "/admin/") -> None:
    """Through the admin's own login form, landing on ``next_path``."""
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_path}")


def left_completion(page, whose) -> tuple[int, str]:
    """(pair id, "a" or "b") of the completion shown on the left, read from the screen."""
    left_text = page.inner_text(".side-left .code")
    found = [value for marker, value in whose.items() if marker in left_text]
    assert len(found) == 1, left_text
    return found[0]


def shown_pair(page) -> int:
    return int(page.get_attribute(".pair", "data-pair"))


def wait_until_replaced(page, pair_id: int) -> None:
    page.locator(f'[data-pair="{pair_id}"]').wait_for(state="detached", timeout=TIMEOUT_MS)


def test_a_volunteer_ranks_three_pairs_with_the_keyboard_and_reports_one(browser, live_server, ranker):
    whose = make_pairs(4)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    log_in(page, live_server, "rita")
    assert page.locator(".side-left .hl").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ranking-page.png"), full_page=True)
    # Survives only if the page is never reloaded.
    page.evaluate("window.__sameDocument = true")

    expected = {}
    for key, screen in (("1", "left"), ("2", "right"), ("3", "tie")):
        pair_id = shown_pair(page)
        left_pair, left_side = left_completion(page, whose)
        assert left_pair == pair_id
        if screen == "left":
            expected[pair_id] = left_side
        elif screen == "right":
            expected[pair_id] = {"a": "b", "b": "a"}[left_side]
        else:
            expected[pair_id] = "tie"
        if key == "2":
            # Keys typed into the rationale box are text, not votes.
            page.fill("input[name=rationale]", "")
            page.locator("input[name=rationale]").press_sequentially("1 2 3 4 s: shorter")
            assert shown_pair(page) == pair_id
            page.keyboard.press("Escape")
        page.keyboard.press(key)
        wait_until_replaced(page, pair_id)
        assert page.locator(".message.success").inner_text() == "Vote saved."

    reported = shown_pair(page)
    page.click("details.report > summary")
    page.check("input[name=reason][value=broken]")
    page.fill("input[name=note]", "does not compile")
    page.click("text=Report and skip")
    page.get_by_text("Nothing to rank right now").wait_for()

    assert page.evaluate("window.__sameDocument") is True
    assert errors == []
    context.close()

    votes = {vote.pair_id: vote for vote in Vote.objects.filter(volunteer=ranker)}
    assert {pair_id: vote.choice for pair_id, vote in votes.items()} == expected
    assert [vote.rationale for vote in votes.values() if vote.rationale] == ["1 2 3 4 s: shorter"]
    assert all(vote.time_taken_ms is not None for vote in votes.values())
    flag = Flag.objects.get()
    assert (flag.reporter, flag.pair_id, flag.reason, flag.note) == (ranker, reported, "broken", "does not compile")
    assert Assignment.objects.get(volunteer=ranker, pair_id=reported).skipped_at is not None
    assert reported not in votes
    assert sorted(Pair.objects.filter(votes_count=1).values_list("pk", flat=True)) == sorted(expected)


def test_voting_works_with_javascript_disabled(browser, live_server, ranker):
    whose = make_pairs(2)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, live_server, "rita")

    pair_id = shown_pair(page)
    left_pair, left_side = left_completion(page, whose)
    assert left_pair == pair_id
    page.fill("input[name=rationale]", "handles both bounds")
    with page.expect_navigation():
        page.click("button[name=choice][value=left]")
    assert page.url == f"{live_server.url}/rank/"
    assert "Vote saved." in page.inner_text(".messages")
    assert shown_pair(page) != pair_id

    # Skip is a plain form too.
    skipped = shown_pair(page)
    with page.expect_navigation():
        page.click("button[data-key=s]")
    assert "Nothing to rank right now" in page.inner_text("main")
    context.close()

    vote = Vote.objects.get(volunteer=ranker)
    assert (vote.pair_id, vote.choice, vote.rationale) == (pair_id, left_side, "handles both bounds")
    assert Assignment.objects.get(volunteer=ranker, pair_id=skipped).skipped_at is not None
