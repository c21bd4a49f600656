"""A snapshot's manifest.json: what was built, from which votes and code, with which filters, and the size
and sha256 of every file; also how a folder is matched to the row it was built for."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import orjson
from django.conf import settings
from django.utils import timezone

from feedback.models import DatasetSnapshot
from training.dataset_format import MANIFEST, MANIFEST_VERSION, manifest_check

from .files import write_bytes
from .options import SnapshotOptions


def code_version() -> str:
    """The git revision of the code that built the snapshot, else the package version."""
    base = Path(settings.BASE_DIR)
    try:
        result = subprocess.run(
            ["git", "-C", str(base), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            return f"git:{result.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import tomllib

        return "codepref " + tomllib.loads((base / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "codepref (unknown version)"


def build_id(snapshot: DatasetSnapshot) -> str:
    """Names the row a folder was built for: its version alone is not enough if the database was reset."""
    return f"{snapshot.pk}:{snapshot.created_at.isoformat()}"


def manifest_make(snapshot: DatasetSnapshot, options: SnapshotOptions, stats: dict) -> dict:
    """The manifest without its file list (which includes the card, written from this)."""
    rows = stats["rows"]
    counts = {
        **dict(sorted(rows.items())),
        "pairs_considered": stats["pairs_considered"],
        "pairs_kept": stats["pairs_kept"],
        "labels": stats["labels"],
        "dropped": stats["dropped"],
        "source_votes": snapshot.counts.get("source_votes"),
    }
    return {
        MANIFEST_VERSION: snapshot.version,
        "build": build_id(snapshot),
        "created_at": timezone.now().isoformat(),
        "code_version": code_version(),
        "last_vote_id": snapshot.last_vote_id,
        "filters": options.as_dict(),
        "split": {"by": "prompt content hash", "test_fraction": options.test_fraction},
        "counts": counts,
        "agreement": stats["agreement"],
        "secrets": stats["masking"],
        "licence": settings.CODEPREF["CONTRIBUTION_LICENCE"],
    }


def manifest_write(folder: Path, manifest: dict, hashes: dict[str, str]) -> None:
    """Add the list of the folder's files (sha256 from ``hashes`` where known) and write manifest.json."""
    manifest["files"] = _file_list(folder, hashes)
    data = orjson.dumps(manifest_check(manifest), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    write_bytes(folder / MANIFEST, data)


def manifest_read(folder: Path) -> dict | None:
    try:
        return orjson.loads((folder / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def _file_list(folder: Path, hashes: dict[str, str]) -> dict:
    files = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == MANIFEST:
            continue
        name = path.relative_to(folder).as_posix()
        files[name] = {"bytes": path.stat().st_size, "sha256": hashes.get(name) or _sha256(path)}
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
