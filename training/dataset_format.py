"""The dataset snapshot format: the one place that names its parts, splits, files, columns and manifest keys.

The platform writes snapshots with it (feedback/datasets/) and the training pipeline reads them with it
(training/data.py); no Django here, and pyarrow only where a schema is asked for. A snapshot folder::

    preference/{train,test}.jsonl, .parquet   PREFERENCE_COLUMNS: prompt, chosen, rejected + metadata (rationales)
    unpaired/{train,test}.jsonl, .parquet     UNPAIRED_COLUMNS: prompt, completion, label (KTO) + metadata
    prompts/{train,test}.jsonl                PROMPT_COLUMNS: one row per prompt (tests for rewards, pass@k)
    votes/{train,test}.jsonl                  VOTE_COLUMNS: every vote and its rationale, volunteers as pseudonyms
    hf/preference, hf/unpaired                DatasetDict(train, test).save_to_disk
    README.md                                 a Hugging Face dataset card
    manifest.json                             MANIFEST_KEYS: counts, sha256 and size of each file, filters, ...

A row is a tuple in its part's column order; JSON lines and Parquet are both made from that tuple.
"""

from __future__ import annotations

from typing import Any

# The layout's version: bump it when a column, a part or a manifest key changes meaning. It is not written into
# snapshots (that would add a manifest key); code that must tell layouts apart compares against it.
FORMAT_VERSION = 1

PARTS = ("preference", "unpaired", "prompts", "votes")
SPLITS = ("train", "test")
FORMATS = ("jsonl", "parquet", "hf")
FILE_FORMATS = ("jsonl", "parquet")  # the formats that are one file per part and split
TEST_STYLES = ("humaneval", "asserts", "none")
MANIFEST = "manifest.json"
CARD = "README.md"

# (column, Arrow type) in file order; the types are pyarrow's factory names ("list_string": a list of strings).
_PREFERENCE = (
    ("prompt", "string"),
    ("chosen", "string"),
    ("rejected", "string"),
    ("pair_id", "int64"),
    ("prompt_id", "int64"),
    ("language", "string"),
    ("votes", "int32"),
    ("margin", "float64"),
    ("agreement", "float64"),
    ("chosen_outcome", "string"),
    ("rejected_outcome", "string"),
    ("chosen_model", "string"),
    ("rejected_model", "string"),
    ("snapshot_version", "int32"),
    ("label", "string"),
    ("decided_by_tests", "bool_"),
    ("rationales", "list_string"),  # the volunteers' one-line reasons, masked, in vote order ("" left out)
    ("label_source", "string"),  # "tests" / "maintainer" (a gold pair's known answer) or "votes"
    ("suffix", "string"),  # fill-in-the-middle: the code after the gap ("" for a left-to-right prompt)
)
_UNPAIRED = (
    ("prompt", "string"),
    ("completion", "string"),
    ("label", "bool_"),
    ("pair_id", "int64"),
    ("prompt_id", "int64"),
    ("language", "string"),
    ("outcome", "string"),
    ("model", "string"),
    ("snapshot_version", "int32"),
)
_TYPED_PARTS = {"preference": _PREFERENCE, "unpaired": _UNPAIRED}

PREFERENCE_COLUMNS = tuple(name for name, _type in _PREFERENCE)
UNPAIRED_COLUMNS = tuple(name for name, _type in _UNPAIRED)
PROMPT_COLUMNS = (
    "prompt_id",
    "prompt",
    "language",
    "tests",
    "test_style",
    "entry_point",
    "reference_solution",
    "suffix",  # fill-in-the-middle: the code after the gap; prompt + completion + suffix is the program
)
VOTE_COLUMNS = ("pair_id", "prompt_id", "annotator", "choice", "shown_left", "weight", "time_taken_ms", "rationale")
COLUMNS = {
    "preference": PREFERENCE_COLUMNS,
    "unpaired": UNPAIRED_COLUMNS,
    "prompts": PROMPT_COLUMNS,
    "votes": VOTE_COLUMNS,
}
# What TRL's preference trainers (reward, DPO) take from a preference row.
TRAINER_PREFERENCE_COLUMNS = PREFERENCE_COLUMNS[:3]
# Parts with Parquet files and ``datasets`` folders besides their JSON lines.
TABLE_PARTS = tuple(_TYPED_PARTS)

MANIFEST_VERSION = "snapshot_version"
MANIFEST_KEYS = (
    MANIFEST_VERSION,
    "build",
    "created_at",
    "code_version",
    "last_vote_id",
    "filters",
    "split",
    "counts",
    "agreement",
    "secrets",
    "licence",
    "files",
)


def file_name(part: str, split: str, fmt: str = "jsonl") -> str:
    """A part's file for one split, relative to the snapshot folder: ``preference/train.jsonl``."""
    return f"{part}/{split}.{fmt}"


def count_key(part: str, split: str) -> str:
    """The manifest's ``counts`` key for a part's rows in one split: ``preference_train``."""
    return f"{part}_{split}"


def manifest_check(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` itself, once its keys are exactly MANIFEST_KEYS (a writer cannot drift from the readers)."""
    if set(manifest) != set(MANIFEST_KEYS):
        missing, extra = set(MANIFEST_KEYS) - set(manifest), set(manifest) - set(MANIFEST_KEYS)
        raise ValueError(f"manifest keys differ from the format: missing {sorted(missing)}, extra {sorted(extra)}")
    return manifest


def arrow_schemas() -> dict:
    """The pyarrow schema of each part that has Parquet files."""
    import pyarrow as pa

    def arrow_type(kind: str):
        return pa.list_(pa.string()) if kind == "list_string" else getattr(pa, kind)()

    return {
        part: pa.schema([(name, arrow_type(kind)) for name, kind in columns]) for part, columns in _TYPED_PARTS.items()
    }
