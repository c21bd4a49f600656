"""The volunteer pages: sign-up, the ranking page and its actions, with and without JavaScript."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from feedback.models import Assignment, Flag, Pair, Volunteer, Vote
from feedback.ranking import claims
from tests import factories

pytestmark = pytest.mark.django_db

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


@pytest.fixture
def ranker(volunteer, client):
    """A signed-in volunteer who accepted the contribution terms."""
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now(), accepted_licence="CC-BY-4.0")
    client.force_login(volunteer)
    return volunteer


def shown_pair(response) -> int:
    match = re.search(r'data-pair="(\d+)"', response.content.decode())
    assert match, "no pair on the page"
    return int(match.group(1))


def form_key(response) -> str:
    match = re.search(r'name="key" value="([0-9a-f]{32})"', response.content.decode())
    assert match, "no idempotency key in the vote form"
    return match.group(1)


def assignment_of(user, pair_id) -> Assignment:
    return Assignment.objects.get(volunteer=user, pair_id=pair_id)


# --- sign-up, log-in ----------------------------------------------------------------------------


def signup_data(**extra):
    return {
        "username": "newbie",
        "email": "newbie@example.org",
        "password1": factories.PASSWORD,
        "password2": factories.PASSWORD,
        **extra,
    }


def test_sign_up_is_refused_without_accepting_the_terms(client):
    response = client.post(reverse("account_signup"), signup_data(languages=["python"]))
    assert response.status_code == 200
    assert "You must accept the contribution terms to rank." in response.content.decode()
    assert not Volunteer.objects.filter(user__username="newbie").exists()


def test_sign_up_stores_the_languages_and_the_accepted_licence(client):
    response = client.post(reverse("account_signup"), signup_data(accept_terms="on", languages=["python", "rust"]))
    assert response.status_code == 302
    volunteer = Volunteer.objects.get(user__username="newbie")
    assert volunteer.languages == ["python", "rust"]
    assert volunteer.accepted_terms_at is not None
    assert volunteer.accepted_licence == "CC-BY-4.0"


def test_the_sign_up_page_names_the_contribution_licence(client, settings):
    settings.CODEPREF = {**settings.CODEPREF, "CONTRIBUTION_LICENCE": "CDLA-Permissive-2.0"}
    html = client.get(reverse("account_signup")).content.decode()
    assert "CDLA-Permissive-2.0" in html
    assert 'name="accept_terms"' in html
    assert 'name="languages" value="rust"' in html


def test_the_github_button_appears_only_when_github_is_configured(client, settings):
    assert "Sign in with GitHub" not in client.get(reverse("account_login")).content.decode()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "id", "secret": "secret", "key": ""}], "SCOPE": ["read:user"]}
    }
    html = client.get(reverse("account_login")).content.decode()
    assert "Sign in with GitHub" in html
    assert 'action="/accounts/github/login/' in html


def test_logging_in_through_the_form_leads_to_the_ranking_page(client, volunteer):
    response = client.post(reverse("account_login"), {"login": "vera", "password": factories.PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("rank")
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("rank")).status_code == 302


def test_the_ranking_page_asks_for_a_login(client):
    response = client.get(reverse("rank"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_an_account_without_accepted_terms_accepts_them_before_ranking(client, volunteer):
    factories.PairFactory()
    client.force_login(volunteer)
    assert client.get(reverse("rank"))["Location"] == reverse("rank-terms")
    assert client.post(reverse("rank-terms"), {}).status_code == 400
    assert Volunteer.objects.get(user=volunteer).accepted_terms_at is None
    assert client.post(reverse("rank-terms"), {"accept_terms": "on"})["Location"] == reverse("rank")
    assert Volunteer.objects.get(user=volunteer).accepted_terms_at is not None
    assert client.get(reverse("rank")).status_code == 200


# --- the ranking page ---------------------------------------------------------------------------


@pytest.mark.parametrize("left_is_a", [True, False])
def test_the_ranking_page_shows_the_prompt_and_each_completion_on_its_side(client, ranker, left_is_a):
    pair = factories.PairFactory(
        completion_a__text="    return 'alpha side'\n", completion_b__text="    return 'beta side'\n"
    )
    Assignment.objects.filter(pk=claims.assignment_claim_next(user=ranker).pk).update(left_is_a=left_is_a)
    response = client.get(reverse("rank"))
    assert response.status_code == 200
    html = response.content.decode()
    assert shown_pair(response) == pair.pk
    assert pair.prompt.entry_point in html
    left_at, right_at = html.index("side-left"), html.index("side-right")
    alpha_at, beta_at = html.index("alpha side"), html.index("beta side")
    assert left_at < right_at
    if left_is_a:
        assert left_at < alpha_at < right_at < beta_at
    else:
        assert left_at < beta_at < right_at < alpha_at
    # Highlighted server-side by the prompt's language.
    assert 'class="hl"' in html
    assert '<span class="k">return</span>' in html


def test_an_unknown_language_is_shown_as_plain_text(client, ranker):
    factories.PairFactory(prompt=factories.PromptFactory(language="no-such-language"), completion_a__text="return 1")
    html = client.get(reverse("rank")).content.decode()
    assert "Text only" in html
    assert "return 1" in html


def test_the_diff_is_there_but_folded_away(client, ranker):
    factories.PairFactory(completion_a__text="x = 1\ny = 2\n", completion_b__text="x = 1\ny = 3\n")
    html = client.get(reverse("rank")).content.decode()
    diff = html[html.index('<details class="diff">') :]
    diff = diff[: diff.index("</details>")]
    assert "Show diff" in diff
    assert re.search(r'<span class="gd">-y = [23]</span>', diff)
    assert re.search(r'<span class="gi">\+y = [23]</span>', diff)


def test_each_rendering_carries_a_fresh_idempotency_key(client, ranker):
    factories.PairFactory()
    assert form_key(client.get(reverse("rank"))) != form_key(client.get(reverse("rank")))


def test_test_outcomes_are_shown_only_when_enabled(client, ranker, settings):
    factories.PairFactory(completion_a__outcome="passed", completion_b__outcome="failed")
    assert "tests: passed" not in client.get(reverse("rank")).content.decode()
    settings.CODEPREF = {**settings.CODEPREF, "SHOW_TEST_OUTCOMES": True}
    html = client.get(reverse("rank")).content.decode()
    assert "tests: passed" in html
    assert "tests: failed" in html


def test_the_page_says_so_when_nothing_is_left_to_rank(client, ranker):
    response = client.get(reverse("rank"))
    assert response.status_code == 200
    assert "Nothing to rank right now" in response.content.decode()
    assert 'data-pair="' not in response.content.decode()


def test_the_ranking_page_loads_its_script_from_a_file_and_has_no_inline_script(client, ranker):
    factories.PairFactory()
    html = client.get(reverse("rank")).content.decode()
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == ['<script src="/static/feedback/rank.js" defer>']
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), "an inline event handler"


# --- voting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left_is_a", "screen_choice", "stored"),
    [(True, "left", "a"), (False, "left", "b"), (True, "right", "b"), (False, "right", "a"), (False, "tie", "tie")],
)
def test_a_plain_form_vote_is_stored_in_completion_terms_and_redirects(
    client, ranker, left_is_a, screen_choice, stored
):
    factories.PairFactory()
    page = client.get(reverse("rank"))
    pair_id = shown_pair(page)
    Assignment.objects.filter(volunteer=ranker, pair_id=pair_id).update(left_is_a=left_is_a)
    response = client.post(
        reverse("rank-vote"),
        {"pair": pair_id, "choice": screen_choice, "key": form_key(page), "rationale": "  shorter   and correct "},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("rank")
    vote = Vote.objects.get(volunteer=ranker, pair_id=pair_id)
    assert vote.choice == stored
    assert vote.left_is_a is left_is_a
    assert vote.rationale == "shorter and correct"
    assert vote.idempotency_key == form_key(page)
    assert vote.time_taken_ms is not None and vote.time_taken_ms >= 0
    assert Pair.objects.get(pk=pair_id).votes_count == 1
    assert "Vote saved." in client.get(reverse("rank")).content.decode()


def test_a_vote_sent_by_the_script_returns_the_next_pair_as_a_fragment(client, ranker):
    first, second = factories.PairFactory.create_batch(2)
    page = client.get(reverse("rank"))
    pair_id = shown_pair(page)
    response = client.post(
        reverse("rank-vote"), {"pair": pair_id, "choice": "both_bad", "key": form_key(page)}, **FETCH
    )
    assert response.status_code == 200
    assert response["X-Rank-Fragment"] == "1"
    html = response.content.decode()
    assert "<html" not in html and '<header class="site"' not in html
    assert "Vote saved." in html
    assert shown_pair(response) == ({first.pk, second.pk} - {pair_id}).pop()
    assert Vote.objects.get(volunteer=ranker, pair_id=pair_id).choice == "both_bad"


def test_an_htmx_style_request_also_gets_the_fragment(client, ranker):
    factories.PairFactory()
    response = client.get(reverse("rank"), HTTP_HX_REQUEST="true")
    assert response["X-Rank-Fragment"] == "1"
    assert "<html" not in response.content.decode()


def test_a_double_submit_of_the_same_form_is_counted_once(client, ranker):
    factories.PairFactory.create_batch(2)
    page = client.get(reverse("rank"))
    data = {"pair": shown_pair(page), "choice": "left", "key": form_key(page)}
    assert client.post(reverse("rank-vote"), data).status_code == 302
    again = client.post(reverse("rank-vote"), data, **FETCH)
    assert again.status_code == 200
    assert "That vote was already saved." in again.content.decode()
    assert Vote.objects.filter(volunteer=ranker).count() == 1
    assert Pair.objects.get(pk=data["pair"]).votes_count == 1


def test_a_different_second_vote_on_the_same_pair_is_refused_with_409(client, ranker):
    factories.PairFactory()
    page = client.get(reverse("rank"))
    pair_id = shown_pair(page)
    client.post(reverse("rank-vote"), {"pair": pair_id, "choice": "left", "key": form_key(page)})
    response = client.post(reverse("rank-vote"), {"pair": pair_id, "choice": "right", "key": "another-key"})
    assert response.status_code == 409
    assert "you already voted on pair" in response.content.decode()
    assert Vote.objects.get(volunteer=ranker, pair_id=pair_id).screen_choice == "left"
    assert Vote.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"choice": "up"}, "Select a valid choice"),
        ({"pair": "x"}, "pair: Enter a whole number."),
        ({"key": ""}, "key: This field is required."),
        ({"rationale": "y" * 281}, "rationale: Ensure this value has at most 280 characters"),
    ],
)
def test_bad_vote_input_gives_400_with_a_message(client, ranker, data, message):
    factories.PairFactory()
    page = client.get(reverse("rank"))
    body = {"pair": shown_pair(page), "choice": "left", "key": form_key(page), **data}
    for extra in ({}, FETCH):
        response = client.post(reverse("rank-vote"), body, **extra)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert "data-error" in response.content.decode()
    assert Vote.objects.count() == 0


def test_a_vote_on_a_pair_not_assigned_to_the_volunteer_gives_400(client, ranker, other_volunteer):
    pair = factories.PairFactory()
    response = client.post(reverse("rank-vote"), {"pair": pair.pk, "choice": "left", "key": "k1"}, **FETCH)
    assert response.status_code == 400
    assert f"pair {pair.pk} is not assigned to you" in response.content.decode()
    assert response["X-Rank-Fragment"] == "1"
    assert Vote.objects.count() == 0


def test_actions_accept_only_post(client, ranker):
    for name in ("rank-vote", "rank-skip", "rank-report"):
        assert client.get(reverse(name)).status_code == 405


# --- skip and report ----------------------------------------------------------------------------


def test_skip_moves_on_to_another_pair_and_never_shows_the_skipped_one_again(client, ranker):
    factories.PairFactory.create_batch(2)
    skipped = shown_pair(client.get(reverse("rank")))
    response = client.post(reverse("rank-skip"), {"pair": skipped}, **FETCH)
    assert response.status_code == 200
    assert "Skipped." in response.content.decode()
    nxt = shown_pair(response)
    assert nxt != skipped
    assert assignment_of(ranker, skipped).skipped_at is not None
    response = client.post(reverse("rank-skip"), {"pair": nxt})
    assert response.status_code == 302
    assert "Nothing to rank right now" in client.get(reverse("rank")).content.decode()


def test_skipping_a_pair_already_voted_on_gives_409(client, ranker):
    factories.PairFactory()
    page = client.get(reverse("rank"))
    client.post(reverse("rank-vote"), {"pair": shown_pair(page), "choice": "tie", "key": form_key(page)})
    response = client.post(reverse("rank-skip"), {"pair": shown_pair(page)})
    assert response.status_code == 409
    assert "you already voted on pair" in response.content.decode()


@pytest.mark.parametrize("fetch", [False, True])
def test_report_stores_a_flag_and_moves_the_volunteer_on(client, ranker, fetch):
    factories.PairFactory.create_batch(2)
    reported = shown_pair(client.get(reverse("rank")))
    response = client.post(
        reverse("rank-report"),
        {"pair": reported, "reason": "harmful", "note": "deletes files"},
        **(FETCH if fetch else {}),
    )
    assert response.status_code == (200 if fetch else 302)
    flag = Flag.objects.get()
    assert (flag.reporter, flag.pair_id, flag.reason, flag.note) == (ranker, reported, "harmful", "deletes files")
    assert assignment_of(ranker, reported).skipped_at is not None
    page = response if fetch else client.get(reverse("rank"))
    assert "reported to the moderators" in page.content.decode()
    assert shown_pair(page) != reported


def test_reporting_a_pair_after_voting_on_it_keeps_the_vote(client, ranker):
    factories.PairFactory()
    page = client.get(reverse("rank"))
    pair_id = shown_pair(page)
    client.post(reverse("rank-vote"), {"pair": pair_id, "choice": "right", "key": form_key(page)})
    response = client.post(reverse("rank-report"), {"pair": pair_id, "reason": "personal_data"})
    assert response.status_code == 302
    assert Flag.objects.get().reason == "personal_data"
    assert assignment_of(ranker, pair_id).skipped_at is None
    assert Vote.objects.filter(volunteer=ranker, pair_id=pair_id).count() == 1


def test_a_report_with_an_unknown_reason_gives_400(client, ranker):
    factories.PairFactory()
    pair_id = shown_pair(client.get(reverse("rank")))
    response = client.post(reverse("rank-report"), {"pair": pair_id, "reason": "boring"})
    assert response.status_code == 400
    assert "reason: Select a valid choice" in response.content.decode()
    assert Flag.objects.count() == 0
    assert assignment_of(ranker, pair_id).skipped_at is None


@pytest.mark.parametrize(
    ("url", "signed_in"),
    [
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
        ("/accounts/password/reset/", False),
        ("/accounts/logout/", True),
        ("/accounts/email/", True),
        ("/accounts/password/change/", True),
    ],
)
def test_allauth_pages_render_inside_the_site_layout(client, volunteer, url, signed_in):
    if signed_in:
        client.force_login(volunteer)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<header class="site">' in html
    assert "/static/feedback/site.css" in html
    assert "<title>" in html and "· codepref</title>" in html


@pytest.mark.parametrize(
    "username,message",
    [
        ("\u0430dmin", "plain letters"),  # Cyrillic a
        ("adm1n", "looks too much like"),
        ("Admin", "already exists"),  # allauth's own case-insensitive check comes first
        ("ad.min", "looks too much like"),
        ("rnvv0", "looks too much like"),  # beside "mwo", registered below
        ("a", "plain letters"),
        ("bad name", "Enter a valid username"),  # Django's validator comes first
    ],
)
def test_sign_up_refuses_a_username_that_passes_for_another(client, username, message):
    factories.UserFactory(username="admin")
    factories.UserFactory(username="mwo")
    response = client.post(reverse("account_signup"), signup_data(username=username, accept_terms="on"))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Volunteer.objects.filter(user__username=username).exists()


def test_a_username_unlike_any_other_is_accepted_as_typed(client):
    factories.UserFactory(username="admin")
    response = client.post(reverse("account_signup"), signup_data(username="Vera_K", accept_terms="on"))
    assert response.status_code == 302
    assert Volunteer.objects.filter(user__username="Vera_K").exists()
