"""python manage.py demo [--serve] [--addr 127.0.0.1:8000]

Everything the demo needs, each step safe to repeat: migrate (SQLite unless DATABASE_URL says
otherwise), import the bundled demo prompts, prepare the models, create the demo volunteer and an
admin, print where to go and how to log in, and with --serve run the development server.
"""

from __future__ import annotations

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

    def add_arguments(self, parser):
        parser.add_argument("--serve", action="store_true", help="Run the development server afterwards.")
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Address for --serve (default 127.0.0.1:8000).")

    def handle(self, *args, serve: bool, addr: str, **options):
        self._migrate()
        self._import_prompts()
        self._prepare_models()
        self._create_users()
        url = _url_for(addr)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"codepref demo ready at {url}"))
        self.stdout.write(f"  rank as the demo volunteer: username {VOLUNTEER[0]!r}, password {VOLUNTEER[1]!r}")
        self.stdout.write(f"  admin at {url}admin/: username {ADMIN[0]!r}, password {ADMIN[1]!r}")
        if serve:
            # --insecure serves static files with DEBUG off: fine for a local demo, never in production.
            call_command("runserver", addr, use_reloader=False, insecure_serving=True)

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
        version, and sample two completions per prompt with it. Re-runs find both done and add nothing."""
        import time

        from feedback.coders.generation import completions_generate
        from feedback.coders.registry import model_version_default
        from feedback.errors import ServiceError
        from feedback.models import Prompt
        from training.bootstrap import INFO_FILE

        started = time.monotonic()
        model = settings.CODEPREF["MODEL"]
        if not (Path(model) / INFO_FILE).exists():
            self.stdout.write(f"Preparing the model {model} (the local one is built once, in a few minutes) ...")
        try:
            version = model_version_default()
        except ServiceError as exc:
            raise CommandError(f"the local model could not be prepared: {exc}")
        self.stdout.write(f"Model: {version.name} ({version.target}), ready in {time.monotonic() - started:.0f}s")

        started = time.monotonic()
        prompt_ids = list(Prompt.objects.filter(language="python").order_by("pk").values_list("pk", flat=True))
        try:
            completions = completions_generate(
                prompt_ids=prompt_ids, model_version_id=version.pk, n=2, params={"max_new_tokens": 96, "seed": 0}
            )
        except ServiceError as exc:
            # The imported demo completions are still there to rank; say why there are no generated ones.
            self.stderr.write(f"Generation with {version.name} failed, continuing without it: {exc}")
            return
        self.stdout.write(
            f"Generated completions: {len(completions)} by {version.name} for {len(prompt_ids)} prompt(s) "
            f"in {time.monotonic() - started:.0f}s"
        )

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
