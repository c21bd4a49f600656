"""python manage.py demo [--serve] [--addr 127.0.0.1:8000] [--model-preset demo]

Everything the demo needs, each step safe to repeat: migrate (SQLite unless DATABASE_URL says
otherwise), import the bundled demo prompts, create the demo volunteer and an admin, print where to go
and how to log in, and prepare the local model (build it, generate, test and screen its pairs).

With --serve the site serves as soon as the hand-written pairs are in: the model is prepared by a
background process (``demo --model-only``, at low priority) whose progress shows in the terminal and
on the admin's dashboard, and whose pairs join the queue when their tests have run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from feedback.coders.importing import prompts_import
from feedback.coders.parsing import ImportFailed, decode_jsonl
from feedback.models import Volunteer

DEMO_PROMPTS = Path(__file__).resolve().parents[2] / "fixtures" / "demo_prompts.jsonl"
# Fixed and printed on purpose: this is a local demo. Never run it against a shared database.
VOLUNTEER = ("demo", "demo-password-123")
ADMIN = ("admin", "admin-password-123")


class Command(BaseCommand):
    help = "Set up the demo (migrate, demo prompts, demo volunteer and admin) and optionally serve it."
    model_preset = "demo"  # --model-preset

    def add_arguments(self, parser):
        parser.add_argument("--serve", action="store_true", help="Run the development server afterwards.")
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Address for --serve (default 127.0.0.1:8000).")
        parser.add_argument(
            "--model-preset",
            default="demo",
            choices=["demo", "test"],
            help="Size of the local model (default demo; test builds in seconds).",
        )
        parser.add_argument(
            "--model-only",
            action="store_true",
            help="Only prepare the local model (what --serve runs in the background).",
        )

    def handle(self, *args, serve: bool, addr: str, model_preset: str, model_only: bool, **options):
        self.model_preset = model_preset
        if model_only:
            self._prepare_models()
            return
        self._migrate()
        self._import_prompts()
        self._create_users()
        if not serve:
            self._prepare_models()
        url = _url_for(addr)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"codepref demo ready at {url}"))
        self.stdout.write(f"  rank as the demo volunteer: username {VOLUNTEER[0]!r}, password {VOLUNTEER[1]!r}")
        self.stdout.write(f"  admin at {url}admin/: username {ADMIN[0]!r}, password {ADMIN[1]!r}")
        if serve:
            self._serve(addr)

    def _serve(self, addr: str) -> None:
        # WhiteNoise warns about a missing STATIC_ROOT; the demo serves static files through runserver instead.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        background = self._start_model_in_background()
        self.stdout.write(
            "  the local model is prepared in the background; its pairs join the queue when ready "
            "(progress: lines marked [model] below, and the admin's dashboard)"
        )
        try:
            # --insecure serves static files with DEBUG off: fine for a local demo, never in production.
            call_command("runserver", addr, use_reloader=False, insecure_serving=True)
        finally:
            if background.poll() is None:
                background.terminate()
                background.wait(timeout=30)

    def _start_model_in_background(self) -> subprocess.Popen:
        manage = Path(__file__).resolve().parents[3] / "manage.py"
        command = [sys.executable, "-u", str(manage), "demo", "--model-only", "--model-preset", self.model_preset]
        # Low priority, so that the pages stay quick while the model trains on the same cores.
        # Its progress is the [model] lines: the libraries' own progress bars would garble the server's log.
        env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
        return subprocess.Popen(command, env=env, preexec_fn=lambda: os.nice(10))

    def _migrate(self) -> None:
        database = settings.DATABASES["default"]
        if database["ENGINE"] == "django.db.backends.sqlite3" and str(database["NAME"]) != ":memory:":
            Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        self.stdout.write("Migrating the database ...")
        call_command("migrate", interactive=False, verbosity=0)

    def _import_prompts(self) -> None:
        try:
            # Leave one pair per prompt for the two samples the local model writes (_prepare_models).
            cap = max(settings.CODEPREF["MAX_PAIRS_PER_PROMPT"] - 1, 1)
            report = prompts_import(lines=decode_jsonl(DEMO_PROMPTS.read_bytes()), strict=True, max_pairs=cap)
        except (OSError, ImportFailed) as exc:
            raise CommandError(f"{DEMO_PROMPTS}: the demo prompts could not be imported: {exc}")
        self.stdout.write(f"Demo prompts: {report.summary()}")

    def _prepare_models(self) -> None:
        """Build the tiny local model once (cached in CODEPREF["MODEL"]), register it as the active model
        version, sample two completions per prompt, test them and form their screened pairs. Re-runs find it
        all done and add nothing."""
        from feedback.coders.firstrun import demo_model_prepare
        from feedback.errors import ServiceError

        try:
            demo_model_prepare(preset=self.model_preset, say=lambda line: self.stdout.write(f"[model] {line}"))
        except ServiceError as exc:
            # The imported demo completions are still there to rank; say why there are no generated ones.
            self.stderr.write(f"[model] continuing without the local model's pairs: {exc}")

    @transaction.atomic
    def _create_users(self) -> None:
        volunteer = self._user(*VOLUNTEER, email="demo@example.org")
        admin = self._user(*ADMIN, email="admin@example.org")
        if not (admin.is_staff and admin.is_superuser):
            admin.is_staff = admin.is_superuser = True
            admin.save(update_fields=["is_staff", "is_superuser"])
        for user in (volunteer, admin):
            profile, _ = Volunteer.objects.get_or_create(user=user)
            profile.languages = ["python"]
            profile.accepted_licence = profile.accepted_licence or settings.CODEPREF["CONTRIBUTION_LICENCE"]
            profile.accepted_terms_at = profile.accepted_terms_at or timezone.now()
            profile.save(update_fields=["languages", "accepted_licence", "accepted_terms_at"])
        self.stdout.write(f"Users: demo volunteer {volunteer.username!r} and superuser {admin.username!r}")

    def _user(self, username: str, password: str, *, email: str):
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
        # The printed password must work, even if someone changed it since the last run.
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user


def _url_for(addr: str) -> str:
    """The address runserver listens on, as a browser on this machine would open it."""
    host, _, port = addr.rpartition(":") if not addr.isdigit() else ("", "", addr)
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/"
