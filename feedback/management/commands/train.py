"""Run one training cycle now, in the foreground, printing its progress.

    python manage.py train --recipe tiny            # skipped without enough new preferences
    python manage.py train --recipe tiny --force    # train anyway
    python manage.py train -v 2                     # also echo the pipeline's log as it grows

The same cycle the nightly ``train_cycle`` task runs (feedback/cycles/services.py): refused while another
cycle runs; Ctrl-C stops the pipeline and marks the cycle cancelled.
"""

from __future__ import annotations

import threading
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback.cycles.runs import LOG_NAME, run_dir_for
from feedback.cycles.services import training_cycle_execute
from feedback.errors import ServiceError
from feedback.models import TrainingRun


class _LogFollower:
    """Echoes new lines of the pipeline's log (verbosity 2), read from where it was last time."""

    def __init__(self, write):
        self.write = write
        self.path: Path | None = None
        self.offset = 0
        self.lock = threading.Lock()

    def follow(self, run: TrainingRun) -> None:
        """Called by the cycle once its pipeline has started."""
        self.path, self.offset = run_dir_for(run) / LOG_NAME, 0

    def pump(self) -> None:
        if self.path is None:
            return
        with self.lock:
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(self.offset)
                    chunk = fh.read()
            except OSError:
                return
            end = chunk.rfind(b"\n") + 1  # whole lines only; the rest waits for its newline
            self.offset += end
            for line in chunk[:end].decode("utf-8", errors="replace").splitlines():
                self.write("  | " + line.split("\r")[-1])


class Command(BaseCommand):
    help = "Run one training cycle now (snapshot -> TRL pipeline -> new model version), printing progress."

    def add_arguments(self, parser):
        parser.add_argument("--recipe", default=None, help="Folder under training/recipes/ (default: the setting).")
        parser.add_argument(
            "--force", action="store_true", help="Train even with fewer new preferences than the setting asks."
        )

    def handle(self, *args, recipe=None, force=False, verbosity=1, **options):
        follower = _LogFollower(self.stdout.write) if verbosity >= 2 else None
        stop = threading.Event()

        def echo_log() -> None:
            while not stop.wait(1.0):
                follower.pump()

        echo = threading.Thread(target=echo_log, daemon=True) if follower is not None else None
        if echo is not None:
            echo.start()
        try:
            run = training_cycle_execute(
                recipe=recipe,
                force=force,
                progress=self.stdout.write,
                on_started=follower.follow if follower is not None else None,
            )
        except ServiceError as exc:  # Conflict included: refused while another cycle runs
            raise CommandError(str(exc))
        except KeyboardInterrupt:
            raise CommandError("interrupted: the pipeline was stopped and the cycle marked cancelled")
        finally:
            stop.set()
            if echo is not None:
                echo.join()
        if follower is not None:
            follower.pump()
        for stage in run.stages.order_by("started_at", "pk"):
            self.stdout.write(f"  {stage.stage:<10} {stage.state:<10} {stage.artefact_dir}")
        if run.state == TrainingRun.State.FAILED:
            raise CommandError(f"cycle {run.pk} failed: {run.message} (log: {run.artefact_dir})")
        if run.state == TrainingRun.State.CANCELLED:
            raise CommandError(f"cycle {run.pk} was cancelled: {run.message}")
        style = self.style.SUCCESS if run.state == TrainingRun.State.SUCCEEDED else self.style.WARNING
        self.stdout.write(style(f"cycle {run.pk} {run.state}: {run.message}"))
