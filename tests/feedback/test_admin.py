"""The ranking admin: every page opens, search and filters narrow, untrusted text stays text, reports resolve."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from feedback.models import Assignment, Completion, Flag, Pair, Prompt, Vote
from tests import factories

pytestmark = pytest.mark.django_db

XSS = "</pre><script>alert(1)</script><img src=x onerror=alert(2)> {{ 7|add:1 }} {% csrf_token %}"
XSS_ESCAPED = "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"


@pytest.fixture
def data(volunteer, other_volunteer):
    """One of each row the ranking admin shows; the first pair's completion A carries the XSS corpus."""
    pair = factories.PairFactory(prompt=factories.PromptFactory(external_id="xss/1", text=f"def f():\n    {XSS}\n"))
    Completion.objects.filter(pk=pair.completion_a_id).update(text=f"    return 1  # {XSS}\n")
    other = factories.PairFactory(prompt=factories.PromptFactory(external_id="plain/2", language="rust"))
    now = timezone.now()
    assignment = Assignment.objects.create(
        pair=pair, volunteer=volunteer, left_is_a=True, expires_at=now + timedelta(hours=1), voted_at=now
    )
    other_assignment = Assignment.objects.create(
        pair=other, volunteer=other_volunteer, left_is_a=False, expires_at=now
    )
    vote = Vote.objects.create(
        pair=pair, volunteer=volunteer, choice=Vote.Choice.A, left_is_a=True, idempotency_key="k1", rationale=XSS
    )
    flag = Flag.objects.create(
        reporter=volunteer, pair=pair, prompt=pair.prompt, reason=Flag.Reason.HARMFUL, note="script tag inside"
    )
    other_flag = Flag.objects.create(reporter=other_volunteer, pair=other, prompt=other.prompt, reason="broken")
    volunteer.volunteer.languages = ["python", "go"]
    volunteer.volunteer.save()
    return {
        "volunteer": volunteer.volunteer,
        "prompt": pair.prompt,
        "completion": pair.completion_a,
        "pair": pair,
        "assignment": assignment,
        "vote": vote,
        "flag": flag,
        "other_flag": other_flag,
        "other_pair": other,
        "other_prompt": other.prompt,
        "other_assignment": other_assignment,
        "other_completion": other.completion_a,
    }


MODELS = ["volunteer", "prompt", "completion", "pair", "assignment", "vote", "flag"]


def results(response):
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize("model", MODELS)
def test_each_changelist_opens_for_a_superuser(admin_client, data, model):
    response = admin_client.get(reverse(f"admin:feedback_{model}_changelist"))
    assert response.status_code == 200
    assert data[model].pk in [row.pk for row in response.context["cl"].result_list]


@pytest.mark.parametrize("model", MODELS)
def test_each_change_page_opens_for_a_superuser(admin_client, data, model):
    response = admin_client.get(reverse(f"admin:feedback_{model}_change", args=[data[model].pk]))
    assert response.status_code == 200


SEARCHES = [
    ("prompt", "xss/1", "prompt", "other_prompt"),
    ("completion", "alert(1)", "completion", "other_completion"),
    ("pair", "plain/2", "other_pair", "pair"),
    ("vote", "vera", "vote", None),
    ("flag", "script tag", "flag", "other_flag"),
    ("volunteer", "vera", "volunteer", None),
    ("assignment", "otto", "other_assignment", "assignment"),
]


@pytest.mark.parametrize(("model", "query", "wanted", "unwanted"), SEARCHES)
def test_search_finds_the_matching_rows_only(admin_client, data, model, query, wanted, unwanted):
    rows = results(admin_client.get(reverse(f"admin:feedback_{model}_changelist"), {"q": query}))
    assert data[wanted].pk in {row.pk for row in rows}
    if unwanted:
        assert data[unwanted].pk not in {row.pk for row in rows}


def test_filters_narrow_the_lists(admin_client, data):
    url = reverse("admin:feedback_prompt_changelist")
    assert [p.external_id for p in results(admin_client.get(url, {"language": "rust"}))] == ["plain/2"]
    url = reverse("admin:feedback_flag_changelist")
    assert [f.pk for f in results(admin_client.get(url, {"reason__exact": "harmful"}))] == [data["flag"].pk]
    url = reverse("admin:feedback_volunteer_changelist")
    assert [v.user.username for v in results(admin_client.get(url, {"language": "go"}))] == ["vera"]
    url = reverse("admin:feedback_assignment_changelist")
    assert [a.pk for a in results(admin_client.get(url, {"state": "voted"}))] == [data["assignment"].pk]
    url = reverse("admin:feedback_completion_changelist")
    assert {c.pk for c in results(admin_client.get(url, {"prompt__id__exact": data["prompt"].pk}))} == {
        data["pair"].completion_a_id,
        data["pair"].completion_b_id,
    }


def test_lists_show_counts(admin_client, data):
    volunteers = results(admin_client.get(reverse("admin:feedback_volunteer_changelist")))
    assert {v.user.username: v.vote_count for v in volunteers} == {"vera": 1, "otto": 0, "admin": 0}
    prompts = results(admin_client.get(reverse("admin:feedback_prompt_changelist"), {"o": "7"}))
    assert {p.external_id: (p.completions_count, p.pairs_count) for p in prompts} == {
        "xss/1": (2, 1),
        "plain/2": (2, 1),
    }


@pytest.mark.parametrize("model", ["completion", "prompt", "pair", "vote", "flag"])
def test_untrusted_text_renders_literally_escaped_in_the_admin(admin_client, data, model):
    content = admin_client.get(reverse(f"admin:feedback_{model}_change", args=[data[model].pk])).content.decode()
    assert "<script>alert(1)" not in content
    assert "<img src=x" not in content
    assert XSS_ESCAPED in content
    assert "{{ 7|add:1 }}" in content  # template syntax is shown, not evaluated
    assert "{% csrf_token %}" in content


def test_the_completion_text_is_shown_in_a_pre_block_on_its_change_page(admin_client, data):
    content = admin_client.get(reverse("admin:feedback_completion_change", args=[data["completion"].pk])).content
    assert f"# {XSS_ESCAPED}".encode() in content
    assert b"<pre" in content


def test_the_completion_list_escapes_its_previews(admin_client, data):
    content = admin_client.get(reverse("admin:feedback_completion_changelist")).content.decode()
    assert "<script>alert(1)" not in content
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)" in content


@pytest.mark.parametrize(("action", "state"), [("uphold", Flag.State.UPHELD), ("dismiss", Flag.State.DISMISSED)])
def test_report_actions_resolve_the_selected_reports(admin_client, data, action, state):
    flag, other = data["flag"], data["other_flag"]
    response = admin_client.post(
        reverse("admin:feedback_flag_changelist"), {"action": action, "_selected_action": [flag.pk]}
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    other.refresh_from_db()
    assert flag.state == state
    assert flag.resolved_by.username == "admin"
    assert timezone.now() - flag.resolved_at < timedelta(minutes=1)
    assert (other.state, other.resolved_by, other.resolved_at) == (Flag.State.OPEN, None, None)


def test_open_reports_come_first_in_the_queue(admin_client, data):
    Flag.objects.filter(pk=data["other_flag"].pk).update(state=Flag.State.DISMISSED)
    Flag.objects.filter(pk=data["flag"].pk).update(created_at=timezone.now() - timedelta(days=3))
    rows = results(admin_client.get(reverse("admin:feedback_flag_changelist")))
    assert [f.pk for f in rows] == [data["flag"].pk, data["other_flag"].pk]


def test_retire_action_closes_pairs(admin_client, data):
    admin_client.post(
        reverse("admin:feedback_pair_changelist"), {"action": "retire", "_selected_action": [data["pair"].pk]}
    )
    assert Pair.objects.get(pk=data["pair"].pk).state == Pair.State.RETIRED
    assert Pair.objects.get(pk=data["other_pair"].pk).state == Pair.State.OPEN


def test_votes_cannot_be_added_or_deleted_in_the_admin(admin_client, data):
    assert admin_client.get(reverse("admin:feedback_vote_add")).status_code == 403
    response = admin_client.post(reverse("admin:feedback_vote_delete", args=[data["vote"].pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Vote.objects.filter(pk=data["vote"].pk).exists()


# --- upload -----------------------------------------------------------------------------------


def jsonl(*lines) -> SimpleUploadedFile:
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    return SimpleUploadedFile("prompts.jsonl", body.encode(), content_type="application/jsonl")


def own(id_, text):
    return {
        "id": id_,
        "prompt": text,
        "language": "python",
        "completions": [{"model": "m1", "text": "return 1"}, {"model": "m2", "text": "return 2"}],
    }


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_prompt_list_links_to_the_upload(admin_client, db):
    content = admin_client.get(reverse("admin:feedback_prompt_changelist")).content.decode()
    assert reverse("admin:feedback_prompt_import") in content
    assert admin_client.get(reverse("admin:feedback_prompt_import")).status_code == 200


def test_an_uploaded_file_is_imported_and_summarised(admin_client, db):
    response = admin_client.post(
        reverse("admin:feedback_prompt_import"), {"file": jsonl(own("u/1", "def a():\n"), own("u/2", "def b():\n"))}
    )
    assert response.status_code == 302
    assert sorted(Prompt.objects.values_list("external_id", flat=True)) == ["u/1", "u/2"]
    assert Pair.objects.count() == 2
    assert messages_of(response) == [
        "prompts.jsonl: 2 prompts added, 0 already present, 4 completions added, 2 pairs formed, 0 bad lines"
    ]


def test_an_upload_with_bad_lines_imports_the_rest_and_names_each_bad_line(admin_client, db):
    response = admin_client.post(
        reverse("admin:feedback_prompt_import"), {"file": jsonl("{oops", own("u/1", "def a():\n"), "[]")}
    )
    assert list(Prompt.objects.values_list("external_id", flat=True)) == ["u/1"]
    shown = messages_of(response)
    assert shown[0].endswith("1 prompts added, 0 already present, 2 completions added, 1 pairs formed, 2 bad lines")
    assert shown[1].startswith("prompts.jsonl: line 1: not valid JSON")
    assert shown[2] == "prompts.jsonl: line 3: expected a JSON object, got a list"


def test_a_strict_upload_with_a_bad_line_stores_nothing(admin_client, db):
    response = admin_client.post(
        reverse("admin:feedback_prompt_import"), {"file": jsonl(own("u/1", "def a():\n"), "{oops"), "strict": "on"}
    )
    assert Prompt.objects.count() == 0
    assert "line 2: not valid JSON" in messages_of(response)[0]
    assert "nothing was imported" in messages_of(response)[0]


def test_an_upload_that_is_not_utf8_is_refused_with_a_message(admin_client, db):
    upload = SimpleUploadedFile("latin.jsonl", b'{"id": "x", "prompt": "d\xe9f"}\n')
    response = admin_client.post(reverse("admin:feedback_prompt_import"), {"file": upload})
    assert response.status_code == 302
    assert "not UTF-8" in messages_of(response)[0]


def test_the_upload_form_asks_again_without_a_file(admin_client, db):
    response = admin_client.post(reverse("admin:feedback_prompt_import"), {})
    assert response.status_code == 200
    assert response.context["form"].errors["file"]


def test_staff_without_the_add_permission_cannot_upload(client, db):
    staff = factories.UserFactory(username="clerk")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_prompt"))
    client.force_login(staff)
    assert client.get(reverse("admin:feedback_prompt_changelist")).status_code == 200
    response = client.post(reverse("admin:feedback_prompt_import"), {"file": jsonl(own("u/1", "def a():\n"))})
    assert response.status_code == 403
    assert Prompt.objects.count() == 0
