"""What goes into a snapshot (its filters), and which split and schedule slot things belong to."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from feedback.errors import ServiceError

MAX_MIN_VOTES = 1_000_000

_FRACTION = {"type": "number", "minimum": 0, "maximum": 1, "nullable": True}
_FLAG = {"type": "boolean", "nullable": True}
# The request body of POST /api/v1/datasets/ as the OpenAPI schema documents it: what ``from_request`` takes
# (null keeps the default; the two "only" filters exclude each other).
FILTERS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min_votes": {"type": "integer", "minimum": 0, "maximum": MAX_MIN_VOTES, "nullable": True},
        "min_agreement": _FRACTION,
        "drop_ties": _FLAG,
        "exclude_open_flags": _FLAG,
        "only_decided_by_tests": _FLAG,
        "only_human_decided": _FLAG,
        "test_fraction": _FRACTION,
    },
    "not": {
        "required": ["only_decided_by_tests", "only_human_decided"],
        "properties": {"only_decided_by_tests": {"enum": [True]}, "only_human_decided": {"enum": [True]}},
    },
}


@dataclass(frozen=True)
class SnapshotOptions:
    """What goes into a snapshot. Defaults come from settings.CODEPREF["SNAPSHOT_*"]."""

    min_votes: int
    min_agreement: float
    drop_ties: bool
    exclude_open_flags: bool
    only_decided_by_tests: bool
    only_human_decided: bool
    test_fraction: float
    # Weigh votes by quality control (trust, flags, onboarding; low-trust volunteers left out); off: 1 each.
    quality_control: bool = True

    @classmethod
    def defaults(cls) -> SnapshotOptions:
        conf = settings.CODEPREF
        return cls(
            min_votes=int(conf.get("SNAPSHOT_MIN_VOTES", 1)),
            min_agreement=float(conf.get("SNAPSHOT_MIN_AGREEMENT", 0.0)),
            drop_ties=bool(conf.get("SNAPSHOT_DROP_TIES", True)),
            exclude_open_flags=bool(conf.get("SNAPSHOT_EXCLUDE_OPEN_FLAGS", False)),
            only_decided_by_tests=False,
            only_human_decided=False,
            test_fraction=float(conf.get("SNAPSHOT_TEST_FRACTION", 0.1)),
        )

    @classmethod
    def from_request(cls, data: Mapping | None) -> SnapshotOptions:
        """Defaults overridden by ``data``; raises ServiceError naming the bad option."""
        values = asdict(cls.defaults())
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ServiceError("filters must be an object")
        unknown = sorted(set(data) - set(values))
        if unknown:
            raise ServiceError(f"unknown filter {unknown[0]!r}; known: {', '.join(sorted(values))}")
        for name, raw in data.items():
            if raw is None:
                continue
            default = values[name]
            if isinstance(default, bool):
                if not isinstance(raw, bool):
                    raise ServiceError(f"{name} must be true or false")
                values[name] = raw
            elif isinstance(default, int):
                if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_MIN_VOTES:
                    raise ServiceError(f"{name} must be a whole number from 0 to {MAX_MIN_VOTES}")
                values[name] = raw
            else:
                if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0.0 <= float(raw) <= 1.0:
                    raise ServiceError(f"{name} must be a number from 0 to 1")
                values[name] = float(raw)
        options = cls(**values)
        if options.only_decided_by_tests and options.only_human_decided:
            raise ServiceError("only_decided_by_tests and only_human_decided exclude each other")
        return options

    def as_dict(self) -> dict:
        return asdict(self)


def split_of(content_hash: str, *, test_fraction: float, salt: str | None = None) -> str:
    """ "train" or "test" for a prompt, from its content hash: stable across snapshots and machines."""
    salt = settings.CODEPREF.get("SNAPSHOT_SPLIT_SALT", "codepref-split-v1") if salt is None else salt
    digest = hashlib.sha256(f"{salt}:{content_hash}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") < test_fraction * 2.0**64 else "train"


def slot_for(kind: str, now: datetime | None = None) -> str:
    """The schedule slot a beat run belongs to: "hourly" -> "hourly:2026-11-27T14"; a full slot stays as is."""
    if ":" in kind:
        return kind
    now = timezone.now() if now is None else now
    if kind == "hourly":
        return f"hourly:{now:%Y-%m-%dT%H}"
    if kind == "daily":
        return f"daily:{now:%Y-%m-%d}"
    raise ServiceError(f"slot must be 'hourly', 'daily' or 'kind:key'; got {kind!r}")
