"""A snapshot's README.md: a Hugging Face dataset card (configs, licence, counts, agreement, how it was made)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string

from feedback.models import DatasetSnapshot
from training.dataset_format import CARD, PARTS, SPLITS, count_key, file_name

from .files import write_bytes
from .options import SnapshotOptions

# Hugging Face's size categories, by the number of preference rows.
_SIZE_CATEGORIES = ((1e3, "n<1K"), (1e4, "1K<n<10K"), (1e5, "10K<n<100K"), (1e6, "100K<n<1M"), (1e7, "1M<n<10M"))


def card_write(folder: Path, snapshot: DatasetSnapshot, options: SnapshotOptions, stats: dict, manifest: dict) -> None:
    rows = stats["rows"]
    licence = settings.CODEPREF["CONTRIBUTION_LICENCE"]
    alpha = stats["agreement"]["krippendorff_alpha"]
    mean = stats["agreement"]["mean_pair_agreement"]
    total = rows.get(count_key("preference", "train"), 0) + rows.get(count_key("preference", "test"), 0)
    text = render_to_string(
        "feedback/dataset_card.md",
        {
            "version": snapshot.version,
            "size_category": next((name for bound, name in _SIZE_CATEGORIES if total < bound), "n>10M"),
            "licence": licence.lower(),
            "licence_name": licence,
            "licence_url": settings.CODEPREF.get("CONTRIBUTION_LICENCE_URL", ""),
            "configs": _configs(rows),
            "rows": rows,
            "counts": manifest["counts"],
            "alpha": "n/a (undefined: fewer than two votes per pair, or every vote the same)"
            if alpha is None
            else f"{alpha:.3f}",
            "alpha_units": stats["agreement"]["alpha_units"],
            "mean_agreement": "n/a" if mean is None else f"{mean:.3f}",
            "filters": options.as_dict(),
            "masking": stats["masking"],
            "code_version": manifest["code_version"],
            "created_at": manifest["created_at"],
            "last_vote_id": snapshot.last_vote_id,
        },
    )
    write_bytes(folder / CARD, text.encode("utf-8"))


def _configs(rows: dict) -> list[dict]:
    """The card's ``configs``: each part with its splits' JSON lines files."""
    configs = []
    for part in PARTS:
        # datasets refuses a config split whose file is empty: list only the splits that have rows.
        splits = [(split, file_name(part, split)) for split in SPLITS if rows.get(count_key(part, split))]
        if splits:
            configs.append({"name": part, "splits": splits})
    return configs
