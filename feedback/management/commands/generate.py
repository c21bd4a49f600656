"""python manage.py generate --model NAME --prompts all|1,2,3 [--n 4] [--temperature T] [--top-p P]
[--max-new-tokens N] [--seed S] [--stop SEQ ...] [--batch-size B] [--endpoint completions|chat] [--queue]
[--backend transformers|openai --target FOLDER_HUB_ID_OR_SERVED_MODEL [--base-url URL] [--parent NAME]]

Samples completions with a model version, stores them (a re-run of the same request adds nothing), forms
pairs by the pairing policy and queues their tests. With --backend and --target the version is registered
first (again with the same values: nothing changes). --queue hands the work to a Celery worker on the
"generation" queue instead of doing it here.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from feedback.coders.generation import completions_generate, generation_params_clean
from feedback.coders.registry import model_version_register
from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, Pair, Prompt


def parse_prompt_ids(spec: str) -> list[int]:
    """'all' or a comma-separated list of ids and ranges (1,2,5-9)."""
    spec = spec.strip()
    if spec == "all":
        return list(Prompt.objects.order_by("pk").values_list("pk", flat=True))
    ids: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        low, dash, high = part.partition("-")
        try:
            ids.extend(range(int(low), int(high) + 1) if dash else [int(part)])
        except ValueError:
            raise CommandError(f"--prompts: {part!r} is not an id or a range like 3-7 (or use 'all')")
    if not ids:
        raise CommandError("--prompts: give 'all' or ids like 1,2,5-9")
    return ids


class Command(BaseCommand):
    help = "Generate completions with a model version for some or all prompts, then pair them."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="Name of the model version (see the admin).")
        parser.add_argument("--prompts", default="all", help="'all' or ids: 1,2,5-9.")
        parser.add_argument("--n", type=int, default=4, help="Completions per prompt (1 to 16).")
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--top-p", type=float, dest="top_p")
        parser.add_argument("--max-new-tokens", type=int, dest="max_new_tokens")
        parser.add_argument("--seed", type=int)
        parser.add_argument(
            "--stop", action="append", help="A stop sequence (\\n for a newline); repeat it. Default: code stops."
        )
        parser.add_argument("--no-stop", action="store_true", help="No stop sequences (only EOS and the length).")
        parser.add_argument("--batch-size", type=int, dest="batch_size")
        parser.add_argument("--endpoint", choices=("completions", "chat"), help="OpenAI-compatible API to call.")
        parser.add_argument("--queue", action="store_true", help="Queue a Celery task instead of generating here.")
        parser.add_argument("--backend", choices=("transformers", "openai"), help="Register --model first: backend.")
        parser.add_argument("--target", help="Register --model first: folder or hub id, or the served model name.")
        parser.add_argument("--base-url", dest="base_url", default="", help="Register: OpenAI-compatible base URL.")
        parser.add_argument("--parent", help="Register: name of the parent version (for the arena policy).")

    def handle(self, *args, model: str, prompts: str, n: int, queue: bool, **options):
        if options["backend"] or options["target"]:
            version = self._register(model, **options)
        else:
            version = ModelVersion.objects.filter(name=model).first()
        if version is None:
            names = ", ".join(ModelVersion.objects.order_by("name").values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"--model: no model version named {model!r} (registered: {names})")
        prompt_ids = parse_prompt_ids(prompts)
        if not prompt_ids:
            raise CommandError("there are no prompts yet: import some with `manage.py import_prompts FILE`")
        params = {k: options[k] for k in ("temperature", "top_p", "max_new_tokens", "seed", "batch_size", "endpoint")}
        params = {k: v for k, v in params.items() if v is not None}
        if options["no_stop"]:
            params["stop"] = []
        elif options["stop"]:
            params["stop"] = [s.encode().decode("unicode_escape") for s in options["stop"]]
        try:
            generation_params_clean(params)  # refuse bad values here, before anything is queued
        except ServiceError as exc:
            raise CommandError(str(exc))

        if queue:
            from feedback.coders.tasks import generate_completions

            result = generate_completions.delay(prompt_ids, version.pk, n, params)
            self.stdout.write(f"queued generation of {n} per prompt for {len(prompt_ids)} prompt(s): task {result.id}")
            return

        before = Completion.objects.filter(model_version=version).count(), Pair.objects.count()
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            if total == 0:
                self.stdout.write(f"{version.name}: every sample of this request is already stored")
                return
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"{version.name}: {done}/{total} samples ({100 * done // total}%, {rate:.1f}/s)")

        try:
            completions = completions_generate(
                prompt_ids=prompt_ids, model_version_id=version.pk, n=n, params=params, progress=progress
            )
        except ServiceError as exc:
            raise CommandError(str(exc))
        added = Completion.objects.filter(model_version=version).count() - before[0]
        pairs = Pair.objects.count() - before[1]
        self.stdout.write(
            f"{version.name}: {len(completions)} completion(s) for this request, {added} new, {pairs} new pair(s), "
            f"{time.monotonic() - started:.1f}s"
        )

    def _register(self, name: str, *, backend: str | None, target: str | None, base_url: str, parent: str | None, **_):
        if not (backend and target):
            raise CommandError("--backend and --target go together (to register --model)")
        parent_version = None
        if parent:
            parent_version = ModelVersion.objects.filter(name=parent).first()
            if parent_version is None:
                raise CommandError(f"--parent: no model version named {parent!r}")
        try:
            version = model_version_register(
                name=name, backend=backend, target=target, base_url=base_url, parent=parent_version
            )
        except ServiceError as exc:
            raise CommandError(f"--model {name}: {exc}")
        self.stdout.write(f"{version.name}: {version.backend} {version.target}")
        return version
