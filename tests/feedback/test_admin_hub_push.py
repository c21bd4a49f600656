"""Push to the Hub from the admin: a published snapshot's folder goes to a dataset repository; no token, no
network, a bad name or an unpublished snapshot are said, never a 500."""

from __future__ import annotations

import huggingface_hub
import pytest

from feedback.models import DatasetSnapshot
from tests import factories
from tests.feedback.test_export_api import published  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def push_url(snapshot) -> str:
    return f"/admin/feedback/datasetsnapshot/{snapshot.pk}/push/"


def said(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def hub(monkeypatch):
    """HfApi's two calls, recorded; nothing leaves this machine."""
    calls = []
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", lambda self, repo, **kw: calls.append(("create", repo, kw))
    )

    def upload_folder(self, **kw):
        calls.append(("upload", kw["repo_id"], kw))
        return type("Commit", (), {"oid": "abc123"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    return calls


def test_a_published_snapshots_page_offers_the_push_form(admin_client, published, monkeypatch):  # noqa: F811
    monkeypatch.delenv("HF_TOKEN", raising=False)
    page = admin_client.get(f"/admin/feedback/datasetsnapshot/{published.pk}/change/").content.decode()
    assert f'action="{push_url(published)}"' in page and f"Push v{published.version}" in page
    assert "HF_TOKEN is not set on this server" in page


def test_pushing_uploads_the_snapshots_folder_and_says_where(admin_client, published, hub):  # noqa: F811
    response = admin_client.post(push_url(published), {"repo": "me/prefs", "private": "1"}, follow=True)
    assert said(response) == ["pushed to https://huggingface.co/datasets/me/prefs (abc123)"]
    (create, upload) = hub
    assert create == ("create", "me/prefs", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert upload[2]["folder_path"] == str(published.path) and upload[2]["repo_type"] == "dataset"
    assert upload[2]["commit_message"] == f"codepref snapshot v{published.version}"


def test_without_a_token_or_a_network_the_push_says_why(admin_client, published, hub, monkeypatch):  # noqa: F811
    monkeypatch.delenv("HF_TOKEN")
    response = admin_client.post(push_url(published), {"repo": "me/prefs"}, follow=True)
    assert said(response) == ["push to me/prefs not done: HF_TOKEN is not set"]
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")

    def offline(self, repo, **kw):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", offline)
    response = admin_client.post(push_url(published), {"repo": "me/prefs"}, follow=True)
    assert said(response) == [
        "push to me/prefs not done: could not reach the Hugging Face Hub (ConnectionError: Name or service not known)"
    ]
    assert hub == []


@pytest.mark.parametrize("repo", ["", "noslash", "a/b/c", "../x", "me/..", "me/<b>", "-me/x"])
def test_a_bad_repository_name_is_refused_with_a_message(admin_client, published, hub, repo):  # noqa: F811
    response = admin_client.post(push_url(published), {"repo": repo}, follow=True)
    assert response.status_code == 200
    assert said(response)[0].startswith("a Hub dataset repository is owner/name")
    assert hub == []


def test_only_a_published_snapshot_is_pushed_and_only_by_maintainers(admin_client, client, published, hub):  # noqa: F811
    building = DatasetSnapshot.objects.create(version=published.version + 1, state="building")
    page = admin_client.get(f"/admin/feedback/datasetsnapshot/{building.pk}/change/").content.decode()
    assert push_url(building) not in page
    response = admin_client.post(push_url(building), {"repo": "me/prefs"}, follow=True)
    assert said(response) == [f"snapshot v{building.version} is building: only a published one is pushed"]
    assert admin_client.get(push_url(published)).status_code == 405
    assert admin_client.post("/admin/feedback/datasetsnapshot/999999/push/", {"repo": "me/x"}).status_code == 404
    client.force_login(factories.UserFactory(username="clerk", is_staff=True))
    assert client.post(push_url(published), {"repo": "me/prefs"}).status_code == 403
    assert hub == []
