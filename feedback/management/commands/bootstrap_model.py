"""python manage.py bootstrap_model [--preset demo|test] [--seed N] [--out DIR] [--minutes M] [--no-activate]

Builds the bootstrap coder model (training/bootstrap.py) unless the folder already holds it, and registers
it as an active transformers model version named bootstrap-<preset>-seed<N>.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from feedback.coders.registry import model_version_bootstrap
from feedback.errors import ServiceError
from training.bootstrap import PRESETS


class Command(BaseCommand):
    help = "Build (once) and register the tiny local code model."

    def add_arguments(self, parser):
        parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", help="Model folder (default: settings CODEPREF MODEL).")
        parser.add_argument("--minutes", type=float, help="Time budget of training (default: the preset's).")
        parser.add_argument("--no-activate", action="store_true", help="Register without making it active.")

    def handle(self, *args, preset: str, seed: int, out: str | None, minutes: float | None, **options):
        try:
            version = model_version_bootstrap(
                out=out, preset=preset, seed=seed, activate=not options["no_activate"], minutes=minutes
            )
        except ServiceError as exc:
            raise CommandError(str(exc))
        facts = version.metrics.get("bootstrap", {})
        self.stdout.write(
            f"{version.name}: {version.target} ({facts.get('params')} parameters, {facts.get('steps')} steps, "
            f"loss {facts.get('final_loss')}, val loss {facts.get('val_loss')}); "
            f"{'active' if version.is_active else 'inactive'}"
        )
