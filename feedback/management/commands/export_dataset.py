"""python manage.py export_dataset --out DIR [--format jsonl,parquet,hf] [filters] [--push-to-hub REPO]

Builds a fresh snapshot now (in this process, with progress), then copies the requested formats into
DIR/v<version>/ and prints where each file went. The snapshot itself stays under DATASETS_DIR like any
other. Filters: --min-votes N, --min-agreement X, --drop-ties / --keep-ties, --exclude-open-flags,
--only-decided-by-tests, --only-human-decided, --test-fraction X.

--push-to-hub REPO uploads the copied folder to a Hugging Face dataset repository with the token in
HF_TOKEN; without a token, or without network, it says so and skips the upload (the export still counts).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback.datasets.hub import folder_push_to_hub
from feedback.datasets.services import snapshot_build
from feedback.errors import ServiceError
from training.dataset_format import FILE_FORMATS, FORMATS, PARTS, SPLITS, TABLE_PARTS, file_name


def _formats(value: str) -> list[str]:
    formats = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in formats if item not in FORMATS]
    if unknown or not formats:
        raise CommandError(f"--format: expected a comma-separated list of {', '.join(FORMATS)}; got {value!r}")
    return formats


class Command(BaseCommand):
    help = "Build a fresh dataset snapshot and copy it (JSONL, Parquet, datasets folders) to a folder."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="Folder to copy the snapshot into (DIR/v<version>/).")
        parser.add_argument("--format", default="jsonl,parquet,hf", help="Comma-separated: jsonl, parquet, hf.")
        parser.add_argument(
            "--min-votes", type=int, default=None, metavar="N", help="Pairs with fewer votes are left out."
        )
        parser.add_argument(
            "--min-agreement",
            type=float,
            default=None,
            metavar="X",
            help="Pairs whose label has a smaller share (0-1).",
        )
        ties = parser.add_mutually_exclusive_group()
        ties.add_argument("--drop-ties", dest="drop_ties", action="store_true", default=None,
                          help="Leave ties and both-bad pairs out of the preference file (the default).")  # fmt: skip
        ties.add_argument("--keep-ties", dest="drop_ties", action="store_false",
                          help="Keep them (label column says which).")  # fmt: skip
        parser.add_argument("--exclude-open-flags", action="store_true", default=None,
                            help="Also leave out pairs with open (not yet moderated) reports.")  # fmt: skip
        decided = parser.add_mutually_exclusive_group()
        decided.add_argument("--only-decided-by-tests", action="store_true", default=None,
                             help="Only pairs where one completion passed its tests, the other not.")  # fmt: skip
        decided.add_argument("--only-human-decided", action="store_true", default=None,
                             help="Only pairs the tests did not decide.")  # fmt: skip
        parser.add_argument("--test-fraction", type=float, default=None, metavar="X", help="Share of prompts in test.")
        parser.add_argument("--no-quality-control", dest="quality_control", action="store_false", default=None,
                            help="Every vote weighs 1 (no trust, flags, onboarding; suspended out).")  # fmt: skip
        parser.add_argument("--push-to-hub", metavar="REPO", help="Upload to this Hugging Face dataset repository.")
        parser.add_argument(
            "--private", action="store_true", help="With --push-to-hub: create the repository private."
        )

    def handle(self, *args, **options):
        formats = _formats(options["format"])
        filters = {
            name: options[name]
            for name in (
                "min_votes",
                "min_agreement",
                "drop_ties",
                "exclude_open_flags",
                "only_decided_by_tests",
                "only_human_decided",
                "test_fraction",
                "quality_control",
            )  # fmt: skip
            if options[name] is not None
        }
        out = Path(options["out"])
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out}: exists and is not a folder")

        def show(fraction: float, stage: str) -> None:
            self.stderr.write(f"\r{stage:<12} {fraction:6.1%}", ending="")
            self.stderr.flush()

        try:
            result = snapshot_build(filters=filters, on_progress=show)
        except ServiceError as exc:
            raise CommandError(str(exc))
        self.stderr.write("")
        snapshot = result.snapshot
        if not result.built:
            raise CommandError(f"snapshot v{snapshot.version} was not built: {result.reason}")

        target = out / f"v{snapshot.version}"
        if target.exists():
            raise CommandError(f"{target} already exists; choose another --out")
        names = self._selected(snapshot.files, formats)
        for name in names:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(snapshot.path / name, destination)
        counts = snapshot.counts
        alpha = "n/a" if snapshot.agreement_alpha is None else f"{snapshot.agreement_alpha:.3f}"
        self.stdout.write(
            f"snapshot v{snapshot.version}: {counts.get('preference_train', 0)} + {counts.get('preference_test', 0)} "
            f"preference rows (train + test), Krippendorff's alpha {alpha}"
        )
        for name in names:
            if not name.startswith("hf/"):
                self.stdout.write(str(target / name))
        if "hf" in formats:
            for part in TABLE_PARTS:
                self.stdout.write(f"{target / 'hf' / part} (datasets.load_from_disk)")
        if options["push_to_hub"]:
            self._push(target, options["push_to_hub"], private=options["private"])

    @staticmethod
    def _selected(files: dict, formats: list[str]) -> list[str]:
        names = ["README.md", "manifest.json"]
        for part in PARTS:
            for split in SPLITS:
                for fmt in FILE_FORMATS:
                    name = file_name(part, split, fmt)
                    if fmt in formats and name in files:
                        names.append(name)
        if "hf" in formats:
            names += sorted(name for name in files if name.startswith("hf/"))
        return [name for name in names if name in files or name == "manifest.json"]

    def _push(self, folder: Path, repo: str, *, private: bool) -> None:
        try:
            said = folder_push_to_hub(
                folder=folder, repo=repo, private=private, message=f"codepref snapshot {folder.name}"
            )
        except ServiceError as exc:  # no token, no network: the export itself is done
            self.stdout.write(f"push to {repo} skipped: {exc}")
            return
        self.stdout.write(said)
