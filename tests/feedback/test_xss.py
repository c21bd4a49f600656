"""Untrusted text (prompts, completions, anything echoed back) renders as text, and every page sends a strict CSP."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from feedback.models import Volunteer
from feedback.ranking.highlight import code_lines, unified_diff
from tests import factories

pytestmark = pytest.mark.django_db

CORPUS = [
    "</pre><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "{{ request.user.password }} {% csrf_token %} {# comment #}",
    "</code></div><svg onload=alert(1)>",
    '"><a href="javascript:alert(1)">x</a>',
    "<!-- --><style>body{display:none}</style>",
]
DANGEROUS = ["<script>alert(1)</script>", "<img src=x", "<svg onload", '<a href="javascript:', "<style>body"]


@pytest.fixture
def ranker(volunteer, client):
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now())
    client.force_login(volunteer)
    return volunteer


def visible_text(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded."""
    return html_lib.unescape(re.sub(r"<[^>]+>", "", page))


def evil_pair(language: str):
    payload = "\n".join(CORPUS)
    prompt = factories.PromptFactory(language=language, text=f"def f():\n    '''{payload}'''\n")
    return factories.PairFactory(
        prompt=prompt, completion_a__text=payload + "\nreturn 1\n", completion_b__text="return 2\n" + payload
    )


@pytest.mark.parametrize("language", ["python", "text", "no-such-language"])
@pytest.mark.parametrize("fetch", [False, True])
def test_the_xss_corpus_renders_literally_on_the_ranking_page(client, ranker, language, fetch):
    evil_pair(language)
    response = client.get(reverse("rank"), **({"HTTP_X_REQUESTED_WITH": "fetch"} if fetch else {}))
    assert response.status_code == 200
    page = response.content.decode()
    for raw in DANGEROUS:
        assert raw not in page
    assert "{{ request.user.password }}" in page  # never rendered as a template
    assert "pbkdf2" not in page
    text = visible_text(page)
    for payload in CORPUS:
        # Once in the prompt, once per completion, and the diff shows the completions' lines again.
        assert text.count(payload) >= 3, payload


def test_the_escaped_form_of_a_script_tag_is_in_the_page_when_shown_as_plain_text(client, ranker):
    evil_pair("text")
    page = client.get(reverse("rank")).content.decode()
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert(1)</script>" not in page


def test_echoed_input_in_an_error_message_is_escaped(client, ranker):
    factories.PairFactory()
    response = client.post(reverse("rank-vote"), {"pair": 1, "choice": "<script>alert(1)</script>", "key": "k"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_hostile_username_is_escaped_in_the_header(client):
    user = factories.UserFactory(username="<b>bold</b>")
    client.force_login(user)
    page = client.get(reverse("rank-terms")).content.decode()
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize("name", ["home", "account_login", "account_signup", "rank", "rank-terms"])
def test_every_page_sends_a_strict_content_security_policy(client, ranker, name):
    factories.PairFactory()
    if name in ("home", "account_login", "account_signup"):
        client.logout()
    response = client.get(reverse(name), follow=True)
    assert response.status_code == 200
    csp = csp_directives(response)
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert "'self'" in csp["script-src"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert "'unsafe-inline'" not in csp.get("style-src", [])
    assert response["X-Frame-Options"] == "DENY"


def test_an_error_answer_also_sends_the_policy(client, ranker):
    response = client.post(reverse("rank-vote"), {"pair": "x"})
    assert response.status_code == 400
    assert csp_directives(response)["object-src"] == ["'none'"]


def test_the_diff_cuts_lines_only_at_newlines_as_the_code_panes_do():
    left = "x = 1\u2028<script>__xss(1)</script>\x0c\n    return 1\r\n"
    assert code_lines(left) == ["x = 1\u2028<script>__xss(1)</script>\x0c", "    return 1"]
    assert code_lines("") == [] and code_lines("a\n\n") == ["a", ""]
    diff = unified_diff(left, "    return 2\n")
    # str.splitlines() would have cut this line in three (at U+2028 and the form feed).
    assert "-x = 1\u2028<script>__xss(1)</script>\x0c\n" in diff


def test_json_answers_carry_the_strictest_policy_and_pages_the_nonce_one(client, ranker):
    """The API's JSON loads nothing and is framed by nobody: ``default-src 'none'`` (written as is, without
    building the pages' policy); the pages keep theirs."""
    from feedback.middleware import JSON_POLICY

    factories.PairFactory()
    answers = [
        client.get("/api/v1/pairs/next/"),  # 200
        client.post("/api/v1/votes/", {"pair": "x"}, content_type="application/json"),  # 400
        client.get("/api/v1/no-such-thing/"),  # 404
    ]
    assert [answer.status_code for answer in answers] == [200, 400, 404]
    for answer in answers:
        assert answer["Content-Type"].startswith("application/json")
        assert answer["Content-Security-Policy"] == JSON_POLICY
    assert csp_directives(answers[0]) == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}
    page = client.get(reverse("rank-terms"))
    assert page["Content-Type"].startswith("text/html")
    assert csp_directives(page)["default-src"] == ["'self'"]
    assert csp_directives(page)["object-src"] == ["'none'"]
