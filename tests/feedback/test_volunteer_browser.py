"""A volunteer's first minutes in real headless Chromium (issue 13): the reveal after a vote and its undo, a
rationale that reaches the exported votes/ file, the profile page, the guidelines and the keys overlay, the
phone layout (390x844: nothing wider than the screen, the vote bar's height, every tap target measured),
axe-core on every volunteer page (no serious or critical violation) and no CSP violation anywhere.

Screenshots of each page at 1280x800 and 390x844 go to ``test-artifacts/volunteer-<page>-<width>.png``.
axe-core is vendored from the npm registry (``tests/assets/axe.min.js``, axe-core 4.10.2, MPL-2.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone

from feedback.datasets.privacy import pseudonym
from feedback.datasets.services import snapshot_build
from feedback.models import Pair, Volunteer, Vote
from tests import factories
from tests.feedback.test_browser import browser, log_in  # noqa: F401 (the browser fixture, one Chromium per module)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AXE = Path(__file__).resolve().parents[1] / "assets" / "axe.min.js"
TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Collects CSP violations from the first script on: the page's own scripts cannot hide one.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " at " + location.pathname);
});
"""


def accepted(user):
    Volunteer.objects.filter(user=user).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    return user


@pytest.fixture
def ranker(db):
    return accepted(factories.UserFactory(username="rita"))


def make_pairs(count: int) -> list[Pair]:
    """Pairs by two named model versions; A passes its tests and B fails, with long lines to scroll."""
    alpha = factories.ModelVersionFactory(name="alpha-coder-1b")
    beta = factories.ModelVersionFactory(name="beta-coder-7b")
    pairs = []
    for n in range(count):
        pairs.append(
            factories.PairWithOutcomesFactory(
                completion_a__model_version=alpha,
                completion_b__model_version=beta,
                completion_a__text=f"    # pair {n}, completion a\n    return x + {n}  # " + "long " * 30 + "\n",
                completion_b__text=f"    # pair {n}, completion b\n    result = x\n    return result + {n}\n",
            )
        )
    return pairs


class Watch:
    """Page errors, console errors and CSP violations seen by one page."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.add_init_script(WATCH_CSP)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    def csp(self) -> list[str]:
        return self.page.evaluate("window.__csp || []")


def new_page(browser, viewport=DESKTOP, **options):  # noqa: F811
    mobile = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile, **options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page, Watch(page)


def shown_pair(page) -> int:
    return int(page.get_attribute(".pair", "data-pair"))


def vote_with_key(page, key: str) -> int:
    """Vote with a key and wait for that vote's reveal (not the one of the vote before)."""
    pair_id = shown_pair(page)
    before = page.evaluate("document.querySelector('[data-reveal]')?.dataset.reveal || ''")
    page.keyboard.press(key)
    page.wait_for_function(
        "before => (document.querySelector('[data-reveal]')?.dataset.reveal || '') !== before", arg=before
    )
    return pair_id


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    width = page.viewport_size["width"]
    page.screenshot(path=str(ARTIFACTS / f"volunteer-{name}-{width}.png"), full_page=True)


# --- reveal, undo, rationale ------------------------------------------------------------------------


def test_the_pair_is_blind_until_the_vote_then_revealed_and_undone_with_u(browser, live_server, ranker, settings):  # noqa: F811
    pairs = make_pairs(3)
    page, watch = new_page(browser)
    log_in(page, live_server, "rita")
    before = page.content()
    assert "alpha-coder-1b" not in before and "beta-coder-7b" not in before and "tests:" not in before
    first = shown_pair(page)
    left_is_alpha = "completion a" in page.inner_text(".side-left .code")

    assert vote_with_key(page, "1") == first
    reveal = page.locator("[data-reveal]")
    assert int(reveal.get_attribute("data-reveal")) == Vote.objects.get(volunteer=ranker).pk
    left, right = ("alpha-coder-1b", "beta-coder-7b") if left_is_alpha else ("beta-coder-7b", "alpha-coder-1b")
    assert page.inner_text('[data-reveal-model="left"]') == left
    assert page.inner_text('[data-reveal-model="right"]') == right
    assert page.inner_text('[data-reveal-outcome="left"]') == ("tests: passed" if left_is_alpha else "tests: failed")
    assert "Your last vote: A (left) is better" in reveal.inner_text()
    shot(page, "reveal")
    assert shown_pair(page) != first

    page.keyboard.press("u")
    page.get_by_text("Vote undone").wait_for()
    assert shown_pair(page) == first
    assert not Vote.objects.filter(volunteer=ranker).exists()
    assert Pair.objects.get(pk=first).votes_count == 0

    # The button goes when the window closes; "u" then does nothing.
    settings.CODEPREF = {**settings.CODEPREF, "UNDO_SECONDS": 2}
    vote_with_key(page, "2")
    page.locator("form[data-undo-left]").wait_for(state="detached", timeout=4000)
    page.keyboard.press("u")
    page.wait_for_timeout(300)
    assert Vote.objects.filter(volunteer=ranker, pair_id=first).count() == 1
    assert {pair.pk for pair in pairs} >= {first}
    assert watch.errors == [] and watch.csp() == []
    page.context.close()


def test_a_rationale_written_on_the_page_is_in_the_exported_votes_file(browser, live_server, ranker):  # noqa: F811
    make_pairs(2)
    page, watch = new_page(browser)
    log_in(page, live_server, "rita")
    pair_id = shown_pair(page)
    page.fill("input[name=rationale]", "B forgets the empty list; mail me at rita@example.org")
    page.click("button[name=choice][value=right]")
    page.locator("[data-reveal]").wait_for()
    assert watch.errors == [] and watch.csp() == []
    page.context.close()

    snapshot = snapshot_build().snapshot
    rows = [
        json.loads(line)
        for split in ("train", "test")
        for line in (snapshot.path / "votes" / f"{split}.jsonl").read_text().splitlines()
    ]
    mine = [row for row in rows if row["annotator"] == pseudonym(ranker.pk)]
    assert [row["pair_id"] for row in mine] == [pair_id]
    assert mine[0]["rationale"].startswith("B forgets the empty list; mail me at ")
    assert "rita@example.org" not in mine[0]["rationale"]


# --- profile, guidelines, keys ------------------------------------------------------------------------


def test_the_profile_page_shows_the_votes_just_made(browser, live_server, ranker):  # noqa: F811
    make_pairs(3)
    page, watch = new_page(browser)
    log_in(page, live_server, "rita")
    vote_with_key(page, "1")
    vote_with_key(page, "3")
    assert page.inner_text("[data-progress-today]") == "2"
    assert page.inner_text("[data-progress-streak]") == "1-day streak"
    page.click("a:has-text('your impact')")
    page.wait_for_url(f"{live_server.url}/me/")
    assert page.inner_text('[data-figure="total"]') == "2"
    assert page.locator("tr[data-vote]").count() == 2
    assert "no dataset published yet" in page.inner_text('[data-figure="in-dataset"]')
    shot(page, "profile")
    assert watch.errors == [] and watch.csp() == []
    page.context.close()


def test_the_guidelines_sit_beside_the_pair_and_question_mark_lists_the_keys(browser, live_server, ranker):  # noqa: F811
    make_pairs(2)
    page, watch = new_page(browser)
    log_in(page, live_server, "rita")
    pair_box = page.locator("article.pair").bounding_box()
    panel = page.locator(".guidelines-panel")
    panel_box = panel.bounding_box()
    assert panel_box["x"] >= pair_box["x"] + pair_box["width"]  # beside, not below
    assert "Correctness first" in panel.inner_text()

    dialog = page.locator("[data-keys-dialog]")
    assert not dialog.is_visible()
    page.keyboard.press("?")
    dialog.wait_for(state="visible")
    keys = [kbd.lower() for kbd in dialog.locator("th kbd").all_inner_texts()]
    assert keys == ["1", "2", "3", "4", "s", "u", "d", "?", "esc"]
    shot(page, "keys")
    page.keyboard.press("1")  # keys do not vote behind the dialog
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert not Vote.objects.exists()
    page.click("[data-keys-open]")
    dialog.wait_for(state="visible")
    page.click("[data-keys-close]")
    dialog.wait_for(state="hidden")
    assert watch.errors == [] and watch.csp() == []
    page.context.close()


# --- phone ------------------------------------------------------------------------------------------

MEASURE = """
() => {
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && !el.closest("[hidden], .sr-only")
      && box.right > 0 && box.left < window.innerWidth;
  };
  const inScroller = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "auto" || overflow === "scroll" || overflow === "hidden") return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ").join(".") : "")
    + (el.getAttribute("name") ? "[" + el.getAttribute("name") + "]" : "") + " " + (el.innerText || "").slice(0, 20);
  const wide = [...document.querySelectorAll("body *")]
    .filter((el) => visible(el) && !inScroller(el) && el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map(name);
  const targets = [...document.querySelectorAll(
    "a[href], button, summary, select, textarea, input:not([type=hidden])")]
    .filter((el) => !el.closest("dialog:not([open])"))
    .map((el) => (el.matches("input[type=radio], input[type=checkbox]") && el.closest("label")) || el)
    .filter(visible);
  const small = targets.map((el) => [name(el), el.getBoundingClientRect()])
    .filter(([, box]) => box.width < 44 || box.height < 44)
    .map(([label, box]) => label + " " + Math.round(box.width) + "x" + Math.round(box.height));
  const panes = [...document.querySelectorAll(".code")].map((el) => {
    const style = getComputedStyle(el);
    const pre = el.querySelector("pre");
    const wraps = pre && getComputedStyle(pre).whiteSpace.startsWith("pre-wrap");
    return { scrolls: ["auto", "scroll"].includes(style.overflowX), wraps: !!wraps,
             cut: !wraps && !["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth };
  });
  return { scrollWidth: document.documentElement.scrollWidth, wide, small, targets: targets.length, panes };
}
"""


def test_the_phone_layout_fits_the_screen_with_big_enough_targets(browser, live_server, ranker):  # noqa: F811
    make_pairs(3)
    page, watch = new_page(browser, PHONE)
    log_in(page, live_server, "rita")
    for state in ("pair", "reveal", "report-open"):
        if state == "reveal":
            vote_with_key(page, "1")
        if state == "report-open":
            page.click("details.report > summary")
        found = page.evaluate(MEASURE)
        assert found["scrollWidth"] <= PHONE["width"], (state, found["wide"])
        assert found["wide"] == [], state
        assert found["targets"] > 8 and found["small"] == [], f"{state}: {'; '.join(found['small'])}"
        assert found["panes"] and all(pane["scrolls"] or pane["wraps"] for pane in found["panes"]), state
        assert not any(pane["cut"] for pane in found["panes"])
        shot(page, state)
    page.click("details.report > summary")
    # The vote bar stays in view (sticky) and takes at most 12% of the screen's height.
    page.evaluate("window.scrollTo(0, 300)")
    bar = page.locator(".choices").bounding_box()
    assert bar["height"] <= 0.12 * PHONE["height"], bar
    assert bar["y"] + bar["height"] <= PHONE["height"] + 0.5 and bar["y"] >= PHONE["height"] * 0.8, bar
    # A long line scrolls inside its pane: nothing of it is cut off.
    pane = page.locator(".side .code", has_text="long long")
    assert pane.evaluate("el => el.scrollWidth > el.clientWidth && getComputedStyle(el).overflowX === 'auto'")
    for url in ("/me/", "/rank/guidelines/"):
        page.goto(f"{live_server.url}{url}")
        found = page.evaluate(MEASURE)
        assert found["wide"] == [] and found["small"] == [], f"{url}: {found['wide']} {'; '.join(found['small'])}"
    assert watch.errors == [] and watch.csp() == []
    page.context.close()


# --- axe-core and the CSP on every volunteer page ------------------------------------------------------


def volunteer_pages(page, live_server, ranker_name: str):
    """(name, action that opens the page) for each page a volunteer sees, in an order that works."""
    url = live_server.url

    def go(path):
        return lambda: page.goto(f"{url}{path}")

    def sign_in():
        log_in(page, live_server, ranker_name)

    def after_vote():
        vote_with_key(page, "1")

    def keys():
        page.keyboard.press("?")
        page.locator("[data-keys-dialog]").wait_for(state="visible")

    def report_open():
        page.keyboard.press("Escape")
        page.click("details.report > summary")

    return [
        ("home", go("/")),
        ("login", go("/accounts/login/")),
        ("signup", go("/accounts/signup/")),
        ("password-reset", go("/accounts/password/reset/")),
        ("password-reset-done", go("/accounts/password/reset/done/")),
        ("not-found", go("/no/such/page/")),
        ("guidelines", go("/rank/guidelines/")),
        ("rank", sign_in),
        ("rank-reveal", after_vote),
        ("rank-keys", keys),
        ("rank-report", report_open),
        ("profile", go("/me/")),
    ]


def axe_serious(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize(
    ("viewport", "scheme"), [(DESKTOP, "light"), (PHONE, "light"), (DESKTOP, "dark")], ids=["1280", "390", "1280-dark"]
)
def test_axe_finds_no_serious_or_critical_violation_on_any_volunteer_page(
    browser,  # noqa: F811
    live_server,
    ranker,
    viewport,
    scheme,  # noqa: F811
):
    make_pairs(3)
    # axe is injected as an inline script, which the site's CSP rightly blocks: this context bypasses it (the
    # test below checks the CSP on the same pages).
    page, watch = new_page(browser, viewport, bypass_csp=True, color_scheme=scheme)
    found = {}
    for name, open_page in volunteer_pages(page, live_server, "rita"):
        open_page()
        found[name] = axe_serious(page)
    assert found == {name: [] for name in found}
    page.context.close()


def test_the_terms_page_passes_axe(browser, live_server):  # noqa: F811
    factories.UserFactory(username="newt")
    page, _watch = new_page(browser, bypass_csp=True)
    log_in(page, live_server, "newt", lands_on="/rank/terms/")
    assert axe_serious(page) == []
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_no_page_logs_a_csp_violation_or_an_error_and_each_is_photographed(browser, live_server, ranker, viewport):  # noqa: F811
    make_pairs(3)
    page, watch = new_page(browser, viewport)
    seen, misfits = {}, {}
    for name, open_page in volunteer_pages(page, live_server, "rita"):
        open_page()
        seen[name] = watch.csp()
        shot(page, name)
        if viewport is PHONE:
            found = page.evaluate(MEASURE)
            misfits[name] = found["wide"] + found["small"]
    assert seen == {name: [] for name in seen}
    # On the phone every page fits the screen and every tap target is at least 44x44 px.
    assert misfits == {name: [] for name in misfits}
    # The 404 page's own status is logged as a console error by Chromium; nothing else may be.
    assert [error for error in watch.errors if "404" not in error] == []
    page.context.close()
