"""What goes into a snapshot (its filters), and which split and schedule slot things belong to."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from feedback.errors import ServiceError


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
                if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                    raise ServiceError(f"{name} must be a whole number >= 0")
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
