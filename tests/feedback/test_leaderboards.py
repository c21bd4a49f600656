"""The leaderboards from the database: which votes count, ties and both-bad, pass@1, the stored row, the API,
the page, the opt-out, and the refresh task (inline and on a real Celery worker)."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from feedback.leaderboards import counting, services
from feedback.models import Completion, Leaderboard, Volunteer, Vote
from tests import factories
from tests.celery_worker import wait_for

pytestmark = pytest.mark.django_db

PASSED, FAILED = Completion.Outcome.PASSED, Completion.Outcome.FAILED


def model_pair(model_a: str, model_b: str, *, outcomes=("not_run", "not_run")):
    """A pair whose completion A is by ``model_a`` and B by ``model_b`` (A has the lower id)."""
    prompt = factories.PromptFactory()
    a = factories.CompletionFactory(
        prompt=prompt, model_version=factories.ModelVersionFactory(name=model_a), outcome=outcomes[0]
    )
    b = factories.CompletionFactory(
        prompt=prompt, model_version=factories.ModelVersionFactory(name=model_b), outcome=outcomes[1]
    )
    return factories.PairFactory(prompt=prompt, completion_a=a, completion_b=b)


def vote(pair, choice: str, *, by=None, **fields) -> Vote:
    user = by or factories.UserFactory()
    Volunteer.objects.get_or_create(user=user, defaults={"accepted_terms_at": timezone.now()})
    return Vote.objects.create(
        pair=pair, volunteer=user, choice=choice, left_is_a=True, idempotency_key=uuid.uuid4().hex, **fields
    )


def votes(pair, choices: str) -> None:
    """One vote per letter, each by a new volunteer: a / b / t(ie) / x (both bad)."""
    names = {"a": "a", "b": "b", "t": "tie", "x": "both_bad"}
    for letter in choices:
        vote(pair, names[letter])


def refreshed(settings, rounds: int = 200) -> dict:
    settings.CODEPREF = {**settings.CODEPREF, "LEADERBOARD_BOOTSTRAP_ROUNDS": rounds, "LEADERBOARD_SEED": 5}
    services.leaderboard_refresh()
    return Leaderboard.objects.get(key="current").body


def by_model(body: dict) -> dict:
    return {row["model"]: row for row in body["models"]}


# --- which votes count ---------------------------------------------------------------------------------
def test_votes_of_inactive_volunteers_and_votes_without_weight_do_not_count():
    pair = model_pair("m1", "m2")
    kept = vote(pair, "a")
    inactive = vote(pair, "a")
    inactive.volunteer.is_active = False
    inactive.volunteer.save()
    weightless = vote(pair, "a")
    Volunteer.objects.filter(user=weightless.volunteer).update(trust=0.0)
    no_volunteer_row = vote(pair, "b")
    Volunteer.objects.filter(user=no_volunteer_row.volunteer).delete()
    suspended = vote(pair, "a")
    Volunteer.objects.filter(user=suspended.volunteer).update(suspended_at=timezone.now())
    distrusted = vote(pair, "a")  # below the quality-control threshold (0.2 by default)
    Volunteer.objects.filter(user=distrusted.volunteer).update(trust=0.1)
    onboarding = vote(pair, "a")  # quality control gave the vote itself no weight
    Vote.objects.filter(pk=onboarding.pk).update(qc_weight=0.0)
    flagged = vote(pair, "a")  # down-weighted, still counted
    Vote.objects.filter(pk=flagged.pk).update(qc_weight=0.1)
    counted = set(counting.counted_votes(Vote.objects.all()).values_list("pk", flat=True))
    assert counted == {kept.pk, no_volunteer_row.pk, flagged.pk}


def test_ties_count_as_half_a_win_and_both_bad_votes_are_left_out(settings):
    votes(model_pair("m1", "m2"), "attxx")
    votes(model_pair("m2", "m2-sibling"), "")
    same = model_pair("m1", "m1")
    votes(same, "ab")
    body = refreshed(settings)
    m1, m2 = by_model(body)["m1"], by_model(body)["m2"]
    assert (m1["wins"], m1["ties"], m1["losses"], m1["comparisons"]) == (1, 2, 0, 3)
    assert (m2["wins"], m2["ties"], m2["losses"]) == (0, 2, 1)
    assert m1["win_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert body["comparisons"] == 3
    assert body["left_out_both_bad"] == 2
    assert body["left_out_same_model"] == 2
    assert body["win_rates"] == [
        {"model": "m1", "opponent": "m2", "wins": 1, "ties": 2, "losses": 0, "win_rate": pytest.approx(0.6667)},
        {"model": "m2", "opponent": "m1", "wins": 0, "ties": 2, "losses": 1, "win_rate": pytest.approx(0.3333)},
    ]


def test_a_both_bad_vote_changes_no_rating(settings):
    pair = model_pair("m1", "m2")
    votes(pair, "aab")
    before = by_model(refreshed(settings))
    votes(pair, "xxxx")
    after = by_model(refreshed(settings))
    assert [after[m]["rating"] for m in ("m1", "m2")] == [before[m]["rating"] for m in ("m1", "m2")]


# --- the model board ------------------------------------------------------------------------------------
def test_ratings_intervals_and_pass_at_1_side_by_side(settings):
    votes(model_pair("strong", "weak", outcomes=(PASSED, FAILED)), "aaaaaaab")
    votes(model_pair("weak", "strong", outcomes=(PASSED, PASSED)), "bbbbbbat")
    votes(model_pair("middle", "weak"), "aaaab")
    votes(model_pair("middle", "strong"), "abbbb")
    # "middle" has one prompt with tests: two completions run, one passed -> 0.5; one more not run.
    prompt = factories.PromptFactory()
    for outcome in (PASSED, FAILED, "not_run"):
        factories.CompletionFactory(
            prompt=prompt, model_version=factories.ModelVersionFactory(name="middle"), outcome=outcome
        )
    tests_only = factories.CompletionFactory(
        model_version=factories.ModelVersionFactory(name="tests-only"), outcome=PASSED
    )
    factories.CompletionFactory(prompt=tests_only.prompt, model_version=tests_only.model_version, outcome=FAILED)
    body = refreshed(settings)
    rows = body["models"]
    assert [row["model"] for row in rows] == ["strong", "middle", "weak", "tests-only"]
    strong, middle, weak, unrated = rows
    assert strong["rating"] > middle["rating"] > weak["rating"]
    for row in (strong, middle, weak):
        assert row["ci_low"] <= row["rating"] <= row["ci_high"]
        assert row["ci_high"] - row["ci_low"] > 10
    assert (strong["pass_at_1"], strong["prompts_tested"]) == (1.0, 2)
    assert (weak["pass_at_1"], weak["prompts_tested"]) == (0.5, 2)
    assert (middle["pass_at_1"], middle["prompts_tested"]) == (0.5, 1)
    assert unrated["rating"] is None and unrated["pass_at_1"] == 0.5 and unrated["comparisons"] == 0
    assert strong["rank"] == 1
    assert body["bootstrap_rounds"] == 200 and body["seed"] == 5
    assert body["interval"] == "simultaneous 95% (bootstrap max-t)"
    # Seeded: the same votes give the same intervals.
    assert by_model(refreshed(settings))["strong"]["ci_low"] == strong["ci_low"]


def test_the_refresh_stores_one_row_and_a_png(settings):
    votes(model_pair("m1", "m2"), "aab")
    refreshed(settings)
    refreshed(settings)
    row = Leaderboard.objects.get()
    assert bytes(row.plot_png).startswith(b"\x89PNG\r\n\x1a\n")


def test_a_model_name_with_dollar_signs_is_plotted_as_typed(settings):
    votes(model_pair("cost $5 $", "m2"), "ab")
    body = refreshed(settings)
    assert by_model(body)["cost $5 $"]["rating"] is not None
    assert bytes(Leaderboard.objects.get().plot_png).startswith(b"\x89PNG")


def test_too_few_bootstrap_rounds_is_refused_with_a_message(settings):
    votes(model_pair("m1", "m2"), "a")
    with pytest.raises(ValueError, match="CODEPREF_LEADERBOARD_BOOTSTRAP_ROUNDS"):
        refreshed(settings, rounds=0)


# --- the API --------------------------------------------------------------------------------------------
def test_the_api_answers_anonymously_before_and_after_a_refresh(api_client, settings):
    empty = api_client.get("/api/v1/leaderboard/")
    assert empty.status_code == 200
    assert empty.json()["computed_at"] is None and empty.json()["models"] == []
    assert empty.json()["interval"] is None
    votes(model_pair("m1", "m2", outcomes=(PASSED, FAILED)), "aaab")
    refreshed(settings)
    response = api_client.get("/api/v1/leaderboard/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 200
    body = response.json()
    assert [(r["model"], r["wins"], r["losses"], r["pass_at_1"]) for r in body["models"]] == [
        ("m1", 3, 1, 1.0),
        ("m2", 1, 3, 0.0),
    ]
    assert body["comparisons"] == 4 and body["computed_at"]
    assert [c["votes"] for c in body["contributors"]["all_time"]] == [1, 1, 1, 1]
    assert set(body["contributors"]["all_time"][0]) == {"rank", "username", "votes"}  # no user ids


def test_the_schema_documents_the_leaderboard_and_says_both_bad_is_left_out(api_client):
    schema = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/leaderboard/"]["get"]
    assert "both-bad votes are left out" in operation["description"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Leaderboard")
    row = schema["components"]["schemas"]["ModelRow"]["properties"]
    assert {"rating", "ci_low", "ci_high", "pass_at_1", "win_rate"} <= set(row)
    assert "simultaneous 95%" in row["ci_low"]["description"] and "simultaneous 95%" in operation["description"]
    assert "interval" in schema["components"]["schemas"]["Leaderboard"]["properties"]
    assert "patch" in schema["paths"]["/api/v1/leaderboard/me/"]


# --- contributors and the opt-out -----------------------------------------------------------------------
def test_contributors_count_counted_votes_this_week_and_all_time(settings):
    pair = model_pair("m1", "m2")
    old_hand, new_hand, suspended = (factories.UserFactory(username=n) for n in ("olga", "nina", "sid"))
    for n in range(3):
        vote(model_pair("m1", "m2"), "a", by=old_hand, created_at=timezone.now() - timezone.timedelta(days=30 + n))
    vote(pair, "a", by=new_hand)
    vote(model_pair("m1", "m2"), "b", by=new_hand)
    vote(pair, "b", by=suspended)
    suspended.is_active = False
    suspended.save()
    contributors = refreshed(settings)["contributors"]
    assert [(c["username"], c["votes"]) for c in contributors["all_time"]] == [("olga", 3), ("nina", 2)]
    assert [(c["username"], c["votes"]) for c in contributors["week"]] == [("nina", 2)]


def test_an_opted_out_volunteer_is_hidden_at_once_and_after_the_next_refresh(
    api_client, settings, volunteer, django_capture_on_commit_callbacks
):
    pair = model_pair("m1", "m2")
    vote(pair, "a", by=volunteer)
    vote(pair, "b", by=factories.UserFactory(username="otto"))
    refreshed(settings)
    listed = [c["username"] for c in api_client.get("/api/v1/leaderboard/").json()["contributors"]["all_time"]]
    assert sorted(listed) == ["otto", "vera"]

    api_client.force_authenticate(volunteer)
    assert api_client.get("/api/v1/leaderboard/me/").json() == {"listed": True}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.patch("/api/v1/leaderboard/me/", {"listed": False}, format="json")
    assert response.status_code == 200 and response.json() == {"listed": False}
    assert len(callbacks) == 1  # the refresh was asked for
    assert Volunteer.objects.get(user=volunteer).listed_on_leaderboard is False
    api_client.force_authenticate(None)
    body = api_client.get("/api/v1/leaderboard/").json()
    assert [(c["rank"], c["username"]) for c in body["contributors"]["all_time"]] == [(1, "otto")]
    # Opted out, the votes still count.
    assert body["comparisons"] == 2
    page = api_client.get("/leaderboard/").content.decode()
    assert "otto" in page and "vera" not in page


def test_a_patch_without_listed_changes_nothing(api_client, volunteer):
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now(), listed_on_leaderboard=False)
    api_client.force_authenticate(volunteer)
    response = api_client.patch("/api/v1/leaderboard/me/", {"other": 1}, format="json")
    assert response.status_code == 200 and response.json() == {"listed": False}
    assert Volunteer.objects.get(user=volunteer).listed_on_leaderboard is False


@pytest.mark.parametrize("body", [{"listed": "false"}, {"listed": 0}, {"listed": None}])
def test_a_bad_opt_out_body_is_a_400_with_a_message(api_client, volunteer, body):
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now())
    api_client.force_authenticate(volunteer)
    response = api_client.patch("/api/v1/leaderboard/me/", body, format="json")
    assert response.status_code == 400
    assert "listed" in response.json()["error"]
    assert Volunteer.objects.get(user=volunteer).listed_on_leaderboard is True


def test_opting_out_needs_an_account(api_client):
    response = api_client.patch("/api/v1/leaderboard/me/", {"listed": False}, format="json")
    assert response.status_code in (401, 403) and response.json()["error"]


def test_the_page_form_opts_out_and_back_in(client, volunteer):
    client.force_login(volunteer)
    assert b'id="opt-out"' in client.get("/leaderboard/").content
    response = client.post("/leaderboard/listing/", {"listed": "no"}, follow=True)
    assert b"no longer listed" in response.content and b'id="opt-in"' in response.content
    assert Volunteer.objects.get(user=volunteer).listed_on_leaderboard is False
    assert b"Choose yes or no" in client.post("/leaderboard/listing/", {"listed": "maybe"}, follow=True).content
    client.post("/leaderboard/listing/", {"listed": "yes"})
    assert Volunteer.objects.get(user=volunteer).listed_on_leaderboard is True


def test_the_listing_form_needs_a_login(client):
    response = client.post("/leaderboard/listing/", {"listed": "no"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- the page and the plot ------------------------------------------------------------------------------
def test_the_page_and_plot_before_the_first_refresh(client):
    assert b'id="not-computed"' in client.get("/leaderboard/").content
    assert client.get("/leaderboard/plot.png").status_code == 404


def test_the_page_shows_the_table_the_exclusions_and_the_plot(client, settings):
    votes(model_pair("m1", "m2", outcomes=(PASSED, FAILED)), "aaabx")
    refreshed(settings)
    page = client.get("/leaderboard/").content.decode()
    assert page.index(">m1<") < page.index(">m2<")
    assert "both-bad votes are left out</strong> (1)" in page
    assert "75%" in page  # m1's win rate, 3 of 4
    assert "with simultaneous 95% intervals from" in page and "Simultaneous 95% interval</th>" in page
    assert 'id="ratings-plot"' in page and "<script" not in page and "style=" not in page
    plot = client.get("/leaderboard/plot.png")
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png" and plot.content.startswith(b"\x89PNG")


# --- the task -------------------------------------------------------------------------------------------
def test_the_refresh_is_on_beat_and_maintainers_can_ask_for_it(
    api_client, volunteer, maintainer, settings, django_capture_on_commit_callbacks
):
    schedule = PeriodicTask.objects.get(name="every-10m-refresh-leaderboard")
    assert schedule.task == "feedback.tasks.leaderboard_refresh" and schedule.enabled
    votes(model_pair("m1", "m2"), "ab")
    Volunteer.objects.filter(user=volunteer).update(accepted_terms_at=timezone.now())
    api_client.force_authenticate(volunteer)
    assert api_client.post("/api/v1/leaderboard/refresh/").status_code == 403
    api_client.force_authenticate(maintainer)
    settings.CODEPREF = {**settings.CODEPREF, "LEADERBOARD_BOOTSTRAP_ROUNDS": 50}
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/leaderboard/refresh/")
    assert response.status_code == 202 and response.json() == {"queued": True}
    assert Leaderboard.objects.get().body["comparisons"] == 2  # ran inline (eager) here


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_refreshes_the_leaderboard(celery_worker):
    from feedback.leaderboards.tasks import leaderboard_refresh

    votes(model_pair("m1", "m2"), "aab")
    result = celery_worker.send(leaderboard_refresh)
    assert result.get(timeout=60)["comparisons"] == 3
    row = wait_for(lambda: Leaderboard.objects.filter(key="current").first(), timeout=10, message="the row")
    assert [r["model"] for r in row.body["models"]] == ["m1", "m2"]


def test_hostile_model_names_and_usernames_are_shown_as_text(client, settings):
    import html

    from tests.feedback.xss_corpus import PAYLOADS

    corpus = PAYLOADS[:3] + PAYLOADS[12:15]
    for n, payload in enumerate(corpus[:3]):
        votes(model_pair(payload, f"plain-{n}"), "ab")
    for payload in corpus[3:]:
        vote(model_pair("m1", "m2"), "a", by=factories.UserFactory(username=payload))
    refreshed(settings, rounds=20)
    page = client.get("/leaderboard/").content.decode()
    for payload in corpus:
        assert payload not in page
        assert html.escape(payload) in page
    assert bytes(Leaderboard.objects.get().plot_png).startswith(b"\x89PNG")


def test_no_request_fits_anything(client, api_client, settings, monkeypatch):
    votes(model_pair("m1", "m2"), "aab")
    refreshed(settings, rounds=20)

    def refit(*args, **kwargs):
        raise AssertionError("a request refitted the model")

    from feedback.leaderboards import bradley_terry

    monkeypatch.setattr(bradley_terry, "strengths", refit)
    assert client.get("/leaderboard/").status_code == 200
    assert client.get("/leaderboard/plot.png").status_code == 200
    assert [r["model"] for r in api_client.get("/api/v1/leaderboard/").json()["models"]] == ["m1", "m2"]
    with pytest.raises(AssertionError, match="refitted"):
        services.leaderboard_refresh()  # the patch does bite where a fit happens
