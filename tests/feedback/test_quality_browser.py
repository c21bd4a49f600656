"""Onboarding in real headless Chromium (issue 12): a new volunteer's first pairs are gold, and after each vote
the page says whether they agreed with the known answer and why; then pairs come without feedback.

Saves a screenshot of the feedback after a missed answer to ``test-artifacts/onboarding-feedback.png``.
"""

from __future__ import annotations

import pytest

from feedback.coders.verdicts import pairs_refresh_decided_by_tests
from feedback.models import Pair, Vote
from tests import factories
from tests.feedback.test_browser import ARTIFACTS, TIMEOUT_MS, browser, log_in, ranker, shown_pair  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def gold_pairs(count: int) -> dict[str, str]:
    """Gold pairs (A passes its tests, B fails them) whose completions say which they are: marker -> "a"/"b"."""
    whose = {}
    for n in range(count):
        prompt = factories.PromptFactory(text=f'def double_{n}(x):\n    """Return twice x."""\n')
        pair = factories.PairWithOutcomesFactory(
            prompt=prompt,
            completion_a__text=f"    # gold {n} a\n    return 2 * x\n",
            completion_b__text=f"    # gold {n} b\n    return x + 2\n",
            completion_b__test_stderr="AssertionError: double(3) == 5, expected 6",
        )
        pairs_refresh_decided_by_tests(completion_ids=[pair.completion_a_id, pair.completion_b_id])
        whose[f"gold {n} a"], whose[f"gold {n} b"] = "a", "b"
    return whose


def left_is_a(page, whose) -> bool:
    text = page.inner_text(".side-left .code")
    (side,) = [value for marker, value in whose.items() if marker in text]
    return side == "a"


def test_onboarding_shows_after_each_gold_vote_whether_you_agreed_and_why(browser, live_server, ranker, settings):  # noqa: F811
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 0.0, "QC_ONBOARDING_PAIRS": 3}
    whose = gold_pairs(3)
    human = factories.PairFactory(completion_a__text="    # human a\n    return x\n")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "rita")

    agreed = []
    for n, right_answer in enumerate((True, False, True)):
        pair_id = shown_pair(page)
        a_on_left = left_is_a(page, whose)
        key = "1" if a_on_left == right_answer else "2"  # 1: left, 2: right
        page.keyboard.press(key)
        page.locator(f'[data-pair="{pair_id}"]').wait_for(state="detached", timeout=TIMEOUT_MS)
        feedback = page.locator("[data-gold-feedback]")
        agreed.append(feedback.get_attribute("data-agreed"))
        text = feedback.inner_text()
        assert "passes the prompt's unit tests; the other one fails them (AssertionError: double(3) == 5" in text
        if not right_answer:
            answer = "left" if a_on_left else "right"
            assert f"On the pair you just ranked, the known answer was the {answer} side." in text
        else:
            assert "You agreed with the known answer on the pair you just ranked." in text
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "onboarding-feedback.png"), full_page=True)
        if n < 2:
            assert f"{2 - n} more to go before your votes count" in text
        else:
            assert "Your votes count from now on." in text
    assert agreed == ["true", "false", "true"]

    # After onboarding: the human pair, and its vote says nothing about gold.
    assert shown_pair(page) == human.pk
    page.keyboard.press("1")
    page.get_by_text("Nothing to rank right now").wait_for()
    assert page.locator("[data-gold-feedback]").count() == 0
    assert errors == []
    context.close()
    assert Vote.objects.filter(volunteer=ranker).count() == 4
    assert Pair.objects.filter(state="gold", votes_count=1).count() == 3


def test_onboarding_feedback_without_javascript(browser, live_server, ranker, settings):  # noqa: F811
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 0.0, "QC_ONBOARDING_PAIRS": 3}
    whose = gold_pairs(1)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, live_server, "rita")
    wrong = "right" if left_is_a(page, whose) else "left"
    with page.expect_navigation():
        page.click(f"button[name=choice][value={wrong}]")
    feedback = page.locator("[data-gold-feedback]")
    assert feedback.get_attribute("data-agreed") == "false"
    assert f"the known answer was the {'left' if wrong == 'right' else 'right'} side" in feedback.inner_text()
    assert page.get_attribute("[data-gold-feedback] a", "href") == "/rank/quality/"
    page.reload()  # shown once
    assert page.locator("[data-gold-feedback]").count() == 0
    context.close()
