"""python manage.py run_tests --all | --untested | --ids 1,2,3 [--force]

Runs completions' unit tests in the sandbox (training/sandbox/) here, in this process, with a progress bar,
and stores the outcomes (feedback/coders/verdicts.py). ``--all`` re-runs every completion that has tests;
``--untested`` only those never run or run by another sandbox version; ``--ids`` the given ones. ``--force``
re-runs with ``--untested`` too, and is implied by ``--all`` and ``--ids``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from feedback.coders.verdicts import completion_ids_to_test, completions_run_tests
from feedback.models import Completion
from training.sandbox import isolation_available

BATCH = 200  # completions per service call: results are stored as they come, memory stays flat


def parse_ids(text: str) -> list[int]:
    ids = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit():
            raise CommandError(f"--ids must be comma-separated completion ids like 1,2,3; {part!r} is not an id")
        ids.append(int(part))
    if not ids:
        raise CommandError("--ids needs at least one completion id, like --ids 1,2,3")
    return ids


class Command(BaseCommand):
    help = "Run completions' unit tests in the sandbox and store the outcomes, with a progress bar."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="Every completion whose prompt has tests.")
        which.add_argument("--untested", action="store_true", help="Those never run, or run by an older sandbox.")
        which.add_argument("--ids", metavar="1,2,3", help="These completion ids.")
        parser.add_argument("--force", action="store_true", help="Re-run even those this sandbox already ran.")

    def handle(self, *args, all: bool, untested: bool, ids: str | None, force: bool, **options):
        if ids is not None:
            wanted = parse_ids(ids)
            known = set(Completion.objects.filter(pk__in=wanted).values_list("pk", flat=True))
            unknown = [pk for pk in wanted if pk not in known]
            if unknown:
                raise CommandError(f"--ids: no completion with id {', '.join(map(str, unknown))}")
            force = True
        else:
            wanted = list(completion_ids_to_test(which="all" if all else "untested"))
            force = force or all
        self.stdout.write(f"{len(wanted)} completion(s) to test; sandbox isolation: {isolation_available()}")
        totals: dict[str, int] = {}
        # The raw stream: Django's OutputWrapper would end each of tqdm's carriage-return redraws with a newline.
        # disable=None: no bar when stderr is not a terminal (logs, tests).
        with tqdm(total=len(wanted), unit="completion", file=self.stderr._out, disable=None) as bar:
            for start in range(0, len(wanted), BATCH):
                counts = completions_run_tests(
                    completion_ids=wanted[start : start + BATCH], force=force, progress=bar.update
                )
                for key, value in counts.items():
                    totals[key] = totals.get(key, 0) + value
        self.stdout.write(", ".join(f"{key} {value}" for key, value in totals.items() if value) or "nothing to do")
