"""Snapshot folders on disk: written whole, made durable, renamed into place at once, served by name.

Files appear only by an atomic rename of a complete, fsynced folder, so a reader never sees half a snapshot.
"""

from __future__ import annotations

import os
from pathlib import Path

from feedback.models import DatasetSnapshot
from training.dataset_format import MANIFEST


def write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def folder_publish(tmp: Path, final: Path) -> None:
    """Make every file and folder under ``tmp`` durable, then rename it to ``final`` (same file system)."""
    for path in tmp.rglob("*"):
        if path.is_file():
            _fsync(path)
    for path in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
        _fsync(path)
    os.rename(tmp, final)
    _fsync(final.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def snapshot_file_path(snapshot: DatasetSnapshot, name: str) -> Path | None:
    """The file ``name`` of a published snapshot, only if its manifest lists it (no path tricks)."""
    if snapshot.state != DatasetSnapshot.State.PUBLISHED:
        return None
    if name != MANIFEST and name not in (snapshot.files or {}):  # the manifest lists all but itself
        return None
    root = snapshot.path.resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path
