"""python manage.py import_prompts FILE.jsonl [--strict] [--max-pairs N]

Each line is the project's own schema, or HumanEval / MBPP as published (see feedback/coders/parsing.py).
Bad lines are reported with their number; the good ones are imported and the command then exits
non-zero. With --strict a bad line aborts the whole import and nothing is stored.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback.coders.importing import prompts_import
from feedback.coders.parsing import ImportFailed, decode_jsonl


class Command(BaseCommand):
    help = "Import prompts (and completions, forming pairs) from a JSON Lines file: own, HumanEval or MBPP schema."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to a .jsonl file, one prompt per line.")
        parser.add_argument(
            "--strict", action="store_true", help="Abort the whole import, storing nothing, if any line is bad."
        )
        parser.add_argument(
            "--max-pairs",
            type=int,
            default=None,
            metavar="N",
            help="Pairs formed per prompt at most (default: settings CODEPREF MAX_PAIRS_PER_PROMPT).",
        )

    def handle(self, *args, file: str, strict: bool, max_pairs: int | None, **options):
        if max_pairs is not None and max_pairs < 0:
            raise CommandError("--max-pairs must be zero or more")
        path = Path(file)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file")
        except IsADirectoryError:
            raise CommandError(f"{file}: is a directory, not a .jsonl file")
        except OSError as exc:
            raise CommandError(f"{file}: cannot be read ({exc.strerror or exc})")
        try:
            report = prompts_import(lines=decode_jsonl(data), strict=strict, max_pairs=max_pairs)
        except ImportFailed as exc:
            raise CommandError(f"{file}: {exc}")

        for message in report.bad_line_messages():
            self.stderr.write(f"{file}: {message}")
        self.stdout.write(f"{file}: {report.summary()}")
        if report.bad_lines:
            first_number, first_reason = report.bad_lines[0]
            raise CommandError(
                f"{file}: {len(report.bad_lines)} bad line(s), first on line {first_number}: {first_reason} "
                "(the other lines were imported)"
            )
