"""Publishing a snapshot to a Hugging Face dataset repository (the admin's "Push to the Hub", and
``export_dataset --push-to-hub``). The token comes from ``HF_TOKEN``; without it, or without network, a
ServiceError says so: the snapshot itself is untouched either way."""

from __future__ import annotations

import os
import re
from pathlib import Path

from feedback.errors import ServiceError
from feedback.models import DatasetSnapshot

REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def hub_repo_check(repo: str) -> str:
    repo = (repo or "").strip()
    if not REPO.match(repo) or ".." in repo:
        raise ServiceError(f"a Hub dataset repository is owner/name (letters, digits, - _ .); got {repo!r}")
    return repo


def folder_push_to_hub(*, folder: Path, repo: str, private: bool = False, message: str = "") -> str:
    """Upload a folder to the dataset repository ``repo`` (created if missing); returns where it went."""
    repo = hub_repo_check(repo)
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ServiceError("HF_TOKEN is not set")
    try:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder), repo_id=repo, repo_type="dataset", commit_message=message or "codepref snapshot"
        )
    except Exception as exc:  # offline, refused, DNS, HTTP errors: nothing here depends on the upload
        raise ServiceError(f"could not reach the Hugging Face Hub ({type(exc).__name__}: {exc})") from exc
    return f"pushed to https://huggingface.co/datasets/{repo} ({getattr(commit, 'oid', commit)})"


def snapshot_push_to_hub(*, snapshot_id: int, repo: str, private: bool = False) -> str:
    """Upload a published snapshot's folder (files, card, manifest) as it is on disk."""
    snapshot = DatasetSnapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None:
        raise ServiceError(f"snapshot {snapshot_id} does not exist")
    if snapshot.state != DatasetSnapshot.State.PUBLISHED or not snapshot.path.is_dir():
        raise ServiceError(f"snapshot v{snapshot.version} is {snapshot.state}: only a published one can be pushed")
    return folder_push_to_hub(
        folder=snapshot.path, repo=repo, private=private, message=f"codepref snapshot v{snapshot.version}"
    )
