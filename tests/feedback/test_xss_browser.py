"""The XSS drill in real headless Chromium: a corpus of payloads planted in every kind of stored text, every page
that shows them loaded, and nothing runs.

Each payload calls ``__xss(N)`` if it ever runs. An init script (installed before any page script) defines it
to report to the test, and reports every ``securitypolicyviolation`` event; dialogs and console errors are
recorded too. The pages: the ranking page (both sides and the diff), the admin's lists and change pages of
prompts, completions, pairs, votes, reports, volunteers, users, model versions and dataset snapshots (the admin
does not render a snapshot's card: it is only a download), and admin searches that echo a payload back.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from feedback.models import Completion, DatasetSnapshot, Flag, ModelVersion, Pair, Volunteer, Vote
from tests import factories
from tests.feedback.test_browser import TIMEOUT_MS, browser, log_in  # noqa: F401 (the browser fixture)
from tests.feedback.xss_corpus import PAYLOADS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOOK = """
window.__xss = (n) => window.__xssReport({kind: "executed", detail: String(n), url: location.href});
document.addEventListener("securitypolicyviolation", (e) => window.__xssReport({
    kind: "csp", detail: e.violatedDirective + " " + (e.blockedURI || "") + " " + (e.sample || ""),
    url: location.href,
}), true);
"""
CHANGE_PAGE_STRIDE = 7  # change pages of every 7th planted row of each kind (lists show them all)


def plant() -> dict:
    """Every payload in each kind of stored text; returns the objects whose pages to load."""
    everything = "\n".join(PAYLOADS)
    show = factories.PairFactory(
        prompt__text=f"def shown():\n    '''\n{everything}\n    '''\n",
        # Every line differs, so the diff shows every payload on both of its sides.
        completion_a__text="".join(f"    # A {p}\n" for p in PAYLOADS) + "    return 1\n",
        completion_b__text="".join(f"    # B {p}\n" for p in PAYLOADS) + "    return 2\n",
        completion_a__model_version__name=PAYLOADS[0] + " (all)",
    )
    users, versions, pairs, votes, flags = [], [], [], [], []
    for n, payload in enumerate(PAYLOADS):
        user = get_user_model().objects.create_user(username=payload, email=f"x{n}@example.org", password="-")
        version = ModelVersion.objects.create(name=payload, backend=ModelVersion.Backend.IMPORTED, target=payload)
        pair = factories.PairFactory(
            prompt__text=f"def f{n}():\n    '''{payload}'''\n",
            completion_a__model_version=version,
            completion_a__text=payload,
            state=Pair.State.RETIRED,  # the ranking page shows only the pair with every payload
        )
        vote = {"choice": "a", "left_is_a": True, "idempotency_key": f"k{n}", "rationale": payload}
        votes.append(Vote.objects.create(pair=pair, volunteer=user, **vote))
        flags.append(Flag.objects.create(reporter=user, pair=pair, reason=Flag.Reason.BROKEN, note=payload))
        users.append(user)
        versions.append(version)
        pairs.append(pair)
    DatasetSnapshot.objects.create(
        version=1,
        state=DatasetSnapshot.State.PUBLISHED,
        published_at=timezone.now(),
        requested_by=users[0],
        filters={"note": everything},
        error=everything,
    )
    return {
        "prompt": [show.prompt, *(p.prompt for p in pairs)],
        "completion": [show.completion_a, show.completion_b, *(p.completion_a for p in pairs)],
        "pair": [show, *pairs],
        "vote": votes,
        "flag": flags,
        "volunteer": [Volunteer.objects.get(user=u) for u in users],
        "modelversion": versions,
        "datasetsnapshot": list(DatasetSnapshot.objects.all()),
        "user": users,
    }


def admin_urls(planted: dict) -> list[str]:
    urls = []
    for model, rows in planted.items():
        app = "auth" if model == "user" else "feedback"
        urls.append(f"/admin/{app}/{model}/")
        urls += [f"/admin/{app}/{model}/{row.pk}/change/" for row in rows[::CHANGE_PAGE_STRIDE]]
    # Searches echo the query back into the page (the search box, "n results for ...").
    for n in (0, 13, 27, 45):
        urls += [f"/admin/feedback/vote/?q={quote(PAYLOADS[n])}", f"/admin/feedback/flag/?q={quote(PAYLOADS[n])}"]
    return urls


class Watch:
    """What the browser reported: payload runs and CSP violations (the hook), dialogs, console errors."""

    def __init__(self, context):
        self.reports, self.dialogs, self.console = [], [], []
        context.expose_function("__xssReport", lambda report: self.reports.append(report))
        context.add_init_script(HOOK)

    def page(self, context):
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("console", self.on_console)
        page.on("pageerror", lambda exc: self.console.append(str(exc)))
        return page

    def on_console(self, message) -> None:
        # The admin's pages name no favicon, so the browser's own guess at /favicon.ico is a 404: not a payload.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.console.append(f"{message.text} {message.location.get('url')}")

    def visit(self, page, url: str) -> None:
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, url
        page.wait_for_timeout(50)  # let late event handlers (media errors, animations) fire


def test_no_payload_runs_on_any_page_that_shows_it(browser, live_server):  # noqa: F811
    ranker = factories.UserFactory(username="rita")
    Volunteer.objects.filter(user=ranker).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    planted = plant()

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    watch = Watch(context)
    page = watch.page(context)
    log_in(page, live_server, "rita")
    watch.visit(page, f"{live_server.url}/rank/")
    assert int(page.get_attribute(".pair", "data-pair")) == planted["pair"][0].pk
    page.click(".diff > summary")
    shown = {part: page.inner_text(selector) for part, selector in RANKING_PARTS.items()}
    context.close()

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    watch_admin = Watch(context)
    page = watch_admin.page(context)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", factories.PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    visited = admin_urls(planted)
    for url in visited:
        watch_admin.visit(page, live_server.url + url)
    context.close()

    for watched in (watch, watch_admin):
        assert watched.reports == []
        assert watched.dialogs == []
        assert watched.console == []
    # The payloads are on the screen as text: in the prompt, on both sides, and in the diff.
    for part, text in shown.items():
        missing = [p for p in PAYLOADS if p not in text]
        assert missing == [], part
        if part == "diff":
            assert [p for p in PAYLOADS if text.count(p) < 2] == []  # removed and added
    assert len(PAYLOADS) >= 40 and len(visited) >= 40
    assert Completion.objects.filter(model_version__name__in=PAYLOADS).count() == len(PAYLOADS)


RANKING_PARTS = {"prompt": ".prompt .code", "left": ".side-left .code", "right": ".side-right .code", "diff": ".diff"}


@pytest.mark.parametrize("bypass_csp", [False, True])
def test_the_hook_sees_a_payload_the_csp_blocks_and_one_that_runs(browser, live_server, bypass_csp):  # noqa: F811
    """The drill can fail: markup that reaches the DOM is reported (a CSP violation, or a run and a dialog)."""
    context = browser.new_context(bypass_csp=bypass_csp)
    watch = Watch(context)
    page = watch.page(context)
    watch.visit(page, f"{live_server.url}/accounts/login/")
    page.evaluate(
        """document.body.insertAdjacentHTML("beforeend",
            '<img src="data:,x" onerror="__xss(-1)"><img src="data:,x" onerror="alert(-2)">')"""
    )
    for _ in range(40):
        if len(watch.reports) + len(watch.dialogs) >= 2:
            break
        page.wait_for_timeout(50)
    context.close()
    kinds = sorted(report["kind"] for report in watch.reports)
    if bypass_csp:
        assert (kinds, watch.dialogs) == (["executed"], ["-2"])
    else:
        assert (kinds, watch.dialogs) == (["csp", "csp"], [])
