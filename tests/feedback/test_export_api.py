"""Getting snapshots out: the maintainer API, tokens, the admin pages and the export command."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from feedback.datasets.services import snapshot_build
from feedback.models import ApiTokenName, DatasetSnapshot
from tests import factories
from tests.feedback.test_snapshots import make_pairs

pytestmark = pytest.mark.django_db

DATASETS = "/api/v1/datasets/"


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    cache.clear()  # throttle counts: no test sees another's (token lookups: tests/conftest.py)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    cache.clear()


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def maintainer_token(maintainer) -> str:
    return AuthToken.objects.create(maintainer)[1]


@pytest.fixture
def maintainer_api(maintainer_token) -> APIClient:
    return client_with(maintainer_token)


@pytest.fixture
def published():
    make_pairs(4)
    return snapshot_build().snapshot


# --- who may ------------------------------------------------------------------------------------


def test_a_volunteer_gets_403_on_every_dataset_endpoint(volunteer, published):
    client = client_with(AuthToken.objects.create(volunteer)[1])
    for url in (DATASETS, f"{DATASETS}{published.version}/", f"{DATASETS}{published.version}/files/README.md"):
        response = client.get(url)
        assert response.status_code == 403 and response.json() == {"error": "Maintainers only."}
    assert client.post(DATASETS, {}, format="json").status_code == 403
    assert DatasetSnapshot.objects.count() == 1


def test_no_token_a_revoked_token_or_an_expired_token_get_401(maintainer, published):
    assert APIClient().get(DATASETS).status_code == 401
    revoked_instance, revoked = AuthToken.objects.create(maintainer)
    client = client_with(revoked)
    assert client.get(DATASETS).status_code == 200
    revoked_instance.delete()
    assert client.get(DATASETS).status_code == 401
    _, expired = AuthToken.objects.create(maintainer, expiry=timedelta(seconds=-1))
    assert client_with(expired).get(DATASETS).status_code == 401
    assert client_with("not-a-token").get(DATASETS).status_code == 401


def test_a_superuser_and_a_logged_in_maintainer_may(maintainer, published):
    admin = factories.UserFactory(username="root", is_superuser=True, is_staff=True)
    client = APIClient()
    client.force_login(admin)
    assert client.get(DATASETS).status_code == 200
    client.force_login(maintainer)
    assert client.get(DATASETS).status_code == 200


# --- reading ------------------------------------------------------------------------------------


def test_the_list_shows_each_snapshot_with_its_counts(maintainer_api, published):
    body = maintainer_api.get(DATASETS).json()
    (item,) = body["datasets"]
    assert item["version"] == published.version and item["state"] == "published"
    assert item["counts"]["preference_train"] + item["counts"]["preference_test"] == 4
    assert item["url"].endswith(f"/api/v1/datasets/{published.version}/")


def test_the_detail_lists_files_and_a_missing_version_is_404(maintainer_api, published):
    body = maintainer_api.get(f"{DATASETS}{published.version}/").json()
    names = {item["name"] for item in body["files"]}
    assert {"preference/train.jsonl", "preference/test.parquet", "README.md"} <= names
    assert body["filters"]["min_votes"] == 1
    missing = maintainer_api.get(f"{DATASETS}999/")
    assert missing.status_code == 404 and missing.json() == {"error": "no dataset version 999"}


def test_a_file_is_streamed_with_its_bytes(maintainer_api, published):
    response = maintainer_api.get(f"{DATASETS}{published.version}/files/preference/train.jsonl")
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == (published.path / "preference" / "train.jsonl").read_bytes()
    assert "attachment" in response["Content-Disposition"]
    manifest = maintainer_api.get(f"{DATASETS}{published.version}/files/manifest.json")
    assert json.loads(b"".join(manifest.streaming_content))["snapshot_version"] == published.version


@pytest.mark.parametrize(
    "name", ["../../../../etc/passwd", "preference/../../1/README.md", "%2e%2e/%2e%2e/etc/passwd", "settings.py", "hf"]
)
def test_names_outside_the_manifest_are_404(maintainer_api, published, name):
    response = maintainer_api.get(f"{DATASETS}{published.version}/files/{name}")
    assert response.status_code == 404


# --- building -----------------------------------------------------------------------------------


def test_a_build_request_returns_202_and_its_task_reports_progress(
    maintainer, maintainer_api, django_capture_on_commit_callbacks
):
    make_pairs(3)
    with django_capture_on_commit_callbacks(execute=True):  # the task runs inline (eager) after commit
        response = maintainer_api.post(DATASETS, {"min_votes": 2, "test_fraction": 0.5}, format="json")
    assert response.status_code == 202
    body = response.json()
    snapshot = DatasetSnapshot.objects.get(version=body["version"])
    assert snapshot.task_id == body["task_id"] and snapshot.requested_by == maintainer
    assert snapshot.filters["min_votes"] == 2 and snapshot.filters["test_fraction"] == 0.5
    status = maintainer_api.get(body["status_url"]).json()
    assert (status["state"], status["progress"]) == ("published", 1.0)
    assert status["snapshot"]["version"] == body["version"]
    assert maintainer_api.get(f"{DATASETS}tasks/no-such-task/").status_code == 404


@pytest.mark.parametrize(
    "body, message",
    [({"min_votes": "three"}, "min_votes"), ({"nope": 1}, "unknown filter 'nope'"), ([1, 2], "JSON object")],
)
def test_a_build_with_bad_filters_is_400_and_builds_nothing(maintainer_api, body, message):
    response = maintainer_api.post(DATASETS, body, format="json")
    assert response.status_code == 400 and message in response.json()["error"]
    assert not DatasetSnapshot.objects.exists()


# --- tokens -------------------------------------------------------------------------------------


def test_create_maintainer_token_prints_a_named_expiring_token_that_works(maintainer, published):
    out = io.StringIO()
    call_command(
        "create_maintainer_token", "maya", "--name", "CI export", "--days", "7", stdout=out, stderr=io.StringIO()
    )
    token = out.getvalue().strip()
    record = ApiTokenName.objects.get(name="CI export")
    assert record.token.user == maintainer
    assert timedelta(days=6, hours=23) < record.token.expiry - timezone.now() <= timedelta(days=7)
    assert token not in {t.digest for t in AuthToken.objects.all()}  # stored hashed
    assert client_with(token).get(DATASETS).status_code == 200


def test_create_maintainer_token_refuses_a_volunteer_unless_granted(volunteer):
    with pytest.raises(CommandError, match="not a maintainer"):
        call_command("create_maintainer_token", "vera", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="no user"):
        call_command("create_maintainer_token", "nobody", stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    call_command("create_maintainer_token", "vera", "--grant", "--days", "0", stdout=out, stderr=io.StringIO())
    assert volunteer.groups.filter(name="maintainer").exists()
    assert AuthToken.objects.get(user=volunteer).expiry is None


# --- admin --------------------------------------------------------------------------------------


def test_the_admin_lists_snapshots_with_counts_and_serves_files_to_maintainers(admin_client, published):
    page = admin_client.get("/admin/feedback/datasetsnapshot/").content.decode()
    counts = published.counts
    assert f"{counts['preference_train']:,} / {counts['preference_test']:,}" in page and "Build now" in page
    detail = admin_client.get(f"/admin/feedback/datasetsnapshot/{published.pk}/change/").content.decode()
    link = f"/admin/feedback/datasetsnapshot/{published.pk}/files/preference/train.jsonl"
    assert link in detail
    response = admin_client.get(link)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (published.path / "preference" / "train.jsonl").read_bytes()
    assert admin_client.get(f"/admin/feedback/datasetsnapshot/{published.pk}/files/../../x").status_code == 404


def test_staff_who_are_not_maintainers_cannot_download_or_build(client, published):
    staff = factories.UserFactory(username="clerk", is_staff=True)
    client.force_login(staff)
    assert client.get(f"/admin/feedback/datasetsnapshot/{published.pk}/files/README.md").status_code == 403
    assert client.post("/admin/feedback/datasetsnapshot/build/").status_code == 403


@pytest.mark.django_db(transaction=True)  # the request commits, so the inline build runs within it (as in the demo)
def test_build_now_in_the_admin_builds_a_snapshot_when_votes_changed(admin_client, published):
    make_pairs(1)  # new votes since the published snapshot
    response = admin_client.post("/admin/feedback/datasetsnapshot/build/", follow=True)
    newest = DatasetSnapshot.objects.order_by("-version").first()
    assert newest.version == published.version + 1 and newest.state == "published"
    said = [str(m) for m in response.context["messages"]]
    # Tasks run inline here: the snapshot is already published when the page says what happened.
    rows = newest.counts["preference_train"]
    assert said == [f"Snapshot v{newest.version} built and published ({rows:,} preference rows in train)."]
    assert admin_client.get("/admin/feedback/datasetsnapshot/build/").status_code == 405


def test_build_now_makes_no_identical_version_when_no_vote_changed_and_says_so(admin_client, published):
    response = admin_client.post("/admin/feedback/datasetsnapshot/build/", follow=True)
    assert list(DatasetSnapshot.objects.values_list("version", flat=True)) == [published.version]
    said = [str(m) for m in response.context["messages"]]
    assert said == [
        f"No vote was added or removed since v{published.version}: it is current, so no new version was made."
    ]


def test_build_now_says_queued_only_while_the_snapshot_is_still_building(admin_client, published, monkeypatch):
    from feedback import dispatch

    make_pairs(1)
    monkeypatch.setattr(dispatch, "enqueue", lambda *args, **kwargs: None)  # a worker would build it later
    response = admin_client.post("/admin/feedback/datasetsnapshot/build/", follow=True)
    newest = DatasetSnapshot.objects.order_by("-version").first()
    assert newest.state == "building"
    said = [str(m) for m in response.context["messages"]]
    assert said == [f"Snapshot v{newest.version} queued (task {newest.task_id}); this list shows its progress."]


def test_the_token_admin_names_tokens_and_shows_the_token_once(admin_client, maintainer):
    response = admin_client.post(
        "/admin/knox/authtoken/add/",
        {"user": maintainer.pk, "expiry_0": "", "expiry_1": "", "name": "laptop"},
        follow=True,
    )
    assert response.status_code == 200
    record = ApiTokenName.objects.get(name="laptop")
    assert record.token.user == maintainer
    messages = [str(m) for m in response.context["messages"]]
    assert any(m.startswith("TOKEN ") for m in messages)
    listing = admin_client.get("/admin/knox/authtoken/").content.decode()
    assert "laptop" in listing


# --- the export command -------------------------------------------------------------------------


def test_export_dataset_builds_a_fresh_snapshot_and_copies_the_formats_asked_for(tmp_path):
    make_pairs(4)
    out = io.StringIO()
    call_command("export_dataset", "--out", str(tmp_path / "out"), "--format", "jsonl", "--min-votes", "2",
                 stdout=out, stderr=io.StringIO())  # fmt: skip
    snapshot = DatasetSnapshot.objects.get()
    target = tmp_path / "out" / f"v{snapshot.version}"
    assert (target / "preference" / "train.jsonl").is_file() and (target / "manifest.json").is_file()
    assert not list(target.rglob("*.parquet")) and not (target / "hf").exists()
    assert str(target / "preference" / "train.jsonl") in out.getvalue()
    assert snapshot.filters["min_votes"] == 2


def test_export_dataset_push_is_skipped_without_a_token_or_a_network(tmp_path, monkeypatch):
    make_pairs(2)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = io.StringIO()
    call_command("export_dataset", "--out", str(tmp_path / "a"), "--format", "parquet", "--push-to-hub", "me/data",
                 stdout=out, stderr=io.StringIO())  # fmt: skip
    assert "push to me/data skipped: HF_TOKEN is not set" in out.getvalue()
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    import huggingface_hub

    def no_network(*args, **kwargs):  # what a machine without network answers; nothing leaves this one
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", no_network)
    out = io.StringIO()
    call_command("export_dataset", "--out", str(tmp_path / "b"), "--format", "hf", "--push-to-hub", "me/data",
                 stdout=out, stderr=io.StringIO())  # fmt: skip
    assert "push to me/data skipped: could not reach the Hugging Face Hub" in out.getvalue()
    assert (tmp_path / "b").is_dir()


def test_export_dataset_refuses_an_unknown_format(tmp_path):
    with pytest.raises(CommandError, match="--format"):
        call_command("export_dataset", "--out", str(tmp_path), "--format", "csv")


def test_the_admin_queues_a_lost_building_snapshot_again(admin_client, published, django_capture_on_commit_callbacks):
    lost = DatasetSnapshot.objects.create(version=published.version + 1, filters=published.filters,
                                          last_vote_id=published.last_vote_id)  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/feedback/datasetsnapshot/",
            {"action": "requeue", "_selected_action": [lost.pk, published.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert f"Queued again: v{lost.version}." in [str(m) for m in response.context["messages"]]
    lost.refresh_from_db()
    assert lost.state == "published"
