"""python manage.py register_model NAME --backend openai --target MODEL --base-url URL [--weights PATH_OR_HUB_ID]
    [--trust-remote-code] [--prompt-prefix TEXT] [--stop SEQ ...] [--fim-template starcoder] [--activate]

Registers a generator: a local transformers folder or hub id, or a model served by an OpenAI-compatible server
(vLLM, TGI). A served version that names its ``--weights`` can be trained by a cycle (the cycle trains those
weights and registers the result as a local version). ``--trust-remote-code`` lets the checkpoint's own
Python run on the workers (Replit Code V1 needs it): only for a repository you trust.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from feedback.coders.registry import model_version_activate, model_version_register
from feedback.coders.seed_settings import model_version_configure
from feedback.errors import Conflict, ServiceError
from feedback.models import ModelVersion


class Command(BaseCommand):
    help = "Register a model version (local or served) with its loading and prompting settings."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--backend", choices=[ModelVersion.Backend.TRANSFORMERS, ModelVersion.Backend.OPENAI])
        parser.add_argument("--target", required=True, help="Folder or hub id, or the served model's name.")
        parser.add_argument("--base-url", default="", help="The server's OpenAI-compatible base URL (openai).")
        parser.add_argument("--weights", help="The folder or hub id a served model serves (what cycles train).")
        parser.add_argument("--trust-remote-code", action="store_true", help="Run the checkpoint's own code.")
        parser.add_argument("--prompt-prefix", help="Text put before every prompt (\\n for newlines).")
        parser.add_argument("--stop", action="append", help="A stop sequence (\\n for newlines); repeatable.")
        parser.add_argument("--fim-template", help="starcoder, codellama, deepseek-coder or a {prefix}/{suffix} text.")
        parser.add_argument("--activate", action="store_true", help="Make it an active generator.")

    def handle(self, *args, name: str, backend: str | None, target: str, base_url: str, **options):
        def unescape(text: str) -> str:
            return text.encode().decode("unicode_escape")

        settings = {}
        if options["weights"] is not None:
            settings["weights"] = options["weights"]
        if options["trust_remote_code"]:
            settings["trust_remote_code"] = True
        if options["prompt_prefix"] is not None:
            settings["prompt_prefix"] = unescape(options["prompt_prefix"])
        if options["stop"]:
            settings["stop_sequences"] = [unescape(s) for s in options["stop"]]
        if options["fim_template"] is not None:
            settings["fim_template"] = options["fim_template"]
        try:
            with transaction.atomic():  # a bad setting leaves nothing registered
                version = model_version_register(
                    name=name, backend=backend or ModelVersion.Backend.TRANSFORMERS, target=target, base_url=base_url
                )
                model_version_configure(version, **settings)
                if options["activate"]:
                    version = model_version_activate(model_version_id=version.pk)
        except (ServiceError, Conflict) as exc:
            raise CommandError(str(exc))
        flags = [f"weights {version.weights}" if version.weights else ""]
        flags.append("RUNS ITS REPOSITORY'S CODE" if version.trust_remote_code else "")
        flags.append("active" if version.is_active else "inactive")
        self.stdout.write(f"{version.name}: {version.backend} {version.target}; " + ", ".join(f for f in flags if f))
