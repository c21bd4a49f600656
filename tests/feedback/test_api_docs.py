"""The API's documentation pages (Swagger UI and Redoc) in headless Chromium: every operation rendered from this
site's own static files, with no request leaving the site and no CSP violation.

Screenshots: ``test-artifacts/api-docs-{swagger,redoc}-{1280x800,390x844}.png``.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.feedback.test_browser import ARTIFACTS, TIMEOUT_MS, browser  # noqa: F401 (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
    e.violatedDirective + " " + (e.blockedURI || "") + " " + (e.sample || "")), true);
"""
VIEWPORTS = {"1280x800": {"width": 1280, "height": 800}, "390x844": {"width": 390, "height": 844}}
# Operations of the API as the schema lists them (a few from each package): each must be on both pages.
OPERATIONS = ["/api/v1/pairs/next/", "/api/v1/votes/", "/api/v1/reports/", "/api/v1/datasets/", "/api/v1/token/"]


def _open(browser, live_server, path: str, viewport: dict):  # noqa: F811
    context = browser.new_context(viewport=viewport)
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    seen = {"errors": [], "elsewhere": []}
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("console", lambda msg: seen["errors"].append(msg.text) if msg.type == "error" else None)
    page.on(
        "request",
        # blob: URLs of this origin are the page's own (Redoc's search worker).
        lambda request: (
            None
            if request.url.startswith((live_server.url, f"blob:{live_server.url}"))
            else seen["elsewhere"].append(request.url)
        ),
    )
    page.goto(live_server.url + path)
    return context, page, seen


@pytest.mark.parametrize("size", VIEWPORTS)
def test_swagger_ui_renders_every_operation_from_local_files_without_a_csp_violation(browser, live_server, size):  # noqa: F811
    context, page, seen = _open(browser, live_server, reverse("api-docs"), VIEWPORTS[size])
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    for operation in OPERATIONS:
        assert any(operation in shown.replace("\u200b", "") for shown in paths), (operation, paths)
    assert page.locator(".opblock").count() >= 10
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"api-docs-swagger-{size}.png"))
    assert page.evaluate("window.__cspViolations") == []
    assert seen == {"errors": [], "elsewhere": []}
    context.close()


@pytest.mark.parametrize("size", VIEWPORTS)
def test_redoc_renders_every_operation_from_local_files_without_a_csp_violation(browser, live_server, size):  # noqa: F811
    context, page, seen = _open(browser, live_server, reverse("api-redoc"), VIEWPORTS[size])
    page.locator("[data-section-id^='operation/']").first.wait_for()
    text = page.inner_text("#redoc-container")
    for operation in OPERATIONS:
        assert operation in text, operation
    # Redoc's styled components applied: the menu is laid out beside the content, not above it.
    assert page.locator("style[data-styled]").count() >= 1
    if size == "1280x800":
        menu, content = page.locator(".menu-content").bounding_box(), page.locator(".api-content").bounding_box()
        assert menu["x"] + menu["width"] <= content["x"] + 1, (menu, content)
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], violations
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"api-docs-redoc-{size}.png"))
    assert seen == {"errors": [], "elsewhere": []}
    context.close()


def test_the_docs_pages_are_served_with_the_sites_csp_and_reference_no_other_origin(client):
    for name in ("api-docs", "api-redoc"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        directives = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";"))
        # Scripts: this site's files only (a nonce is listed only on pages that use one).
        assert directives["script-src"].split(" ")[0] == "'self'" and "unsafe" not in directives["script-src"]
        assert directives["img-src"] == "'self' data:"
        # Only Redoc's page lets inline styles in (its bundle inserts them before a nonce can reach it).
        expected_style = "'self' 'unsafe-inline'" if name == "api-redoc" else "'self'"
        assert directives["style-src"].split(" 'nonce-")[0] == expected_style, directives
        body = response.content.decode()
        assert "cdn" not in body.lower() and "https://" not in body, name
        assert "<script>" not in body and "<style" not in body, name
    script = client.get(reverse("api-docs") + "?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()
