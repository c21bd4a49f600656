"""The demo's own model, prepared in the background while the site already serves the hand-written pairs.

``demo_model_prepare`` builds the tiny local model (cached), samples two completions per demo prompt, runs their
tests, and forms their pairs screened (``screening``): the pairs join the queue only once their tests ran, and
pairs of two degenerate completions never do. Its progress goes to a small JSON file beside the database
(``demo_status_read``), which the admin's dashboard shows, and to the terminal through ``say``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from feedback.errors import ServiceError
from feedback.models import Completion, Prompt

from .generation import completions_generate
from .registry import model_version_default
from .screening import outcome_counts, pairs_form_screened
from .verdicts import completions_run_tests

GENERATION = {"max_new_tokens": 96, "seed": 0}
SAMPLES_PER_PROMPT = 2


def demo_status_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-model.json"


def demo_status_read() -> dict | None:
    """The background preparation's last reported state, or None if the demo never started one."""
    try:
        return json.loads(demo_status_path().read_text())
    except (OSError, ValueError):
        return None


class _Progress:
    """Writes each stage to the status file (atomically) and says it once in the terminal."""

    def __init__(self, say: Callable[[str], None], preset: str):
        self.say = say
        self.status: dict = {"preset": preset, "pid": os.getpid(), "started_at": timezone.now().isoformat()}

    def update(self, stage: str, message: str, *, quiet: bool = False, **facts) -> None:
        self.status.update(facts, stage=stage, message=message, updated_at=timezone.now().isoformat())
        path = demo_status_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status, indent=2))
        os.replace(tmp, path)
        if not quiet:
            self.say(message)


class _TrainingSteps(logging.Handler):
    """Turns the pretraining's "step n/N" log lines into progress (the terminal already shows the log)."""

    def __init__(self, progress: _Progress):
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("step ") and isinstance(record.args, tuple) and len(record.args) >= 2:
            step, total = record.args[:2]
            self.progress.update("building", f"building the model: step {step} of {total}", quiet=True, step=step)


def demo_model_prepare(*, preset: str = "demo", say: Callable[[str], None] = print) -> dict:
    """Build the local model, generate, test and screen its demo pairs; returns the summary (also in the file)."""
    progress = _Progress(say, preset)
    started = time.monotonic()
    progress.update("building", f"building the {preset} model (cached once built); the site serves meanwhile")
    watcher = _TrainingSteps(progress)
    logging.getLogger("training").addHandler(watcher)
    try:
        version = model_version_default(preset=preset)
    except ServiceError as exc:
        progress.update("failed", f"the local model could not be prepared: {exc}", error=str(exc))
        raise
    finally:
        logging.getLogger("training").removeHandler(watcher)
    built = time.monotonic() - started
    progress.update("generating", f"model {version.name} ready in {built:.0f}s; generating", build_seconds=built)

    started = time.monotonic()
    prompts = list(Prompt.objects.filter(language="python").order_by("pk"))

    def generated(done: int, total: int) -> None:
        progress.update("generating", f"generating: {done} of {total} samples", quiet=done not in (0, total))

    try:
        completions = completions_generate(
            prompt_ids=[p.pk for p in prompts],
            model_version_id=version.pk,
            n=SAMPLES_PER_PROMPT,
            params=GENERATION,
            progress=generated,
            form_pairs=False,
        )
    except ServiceError as exc:
        progress.update("failed", f"generation with {version.name} failed: {exc}", error=str(exc))
        raise
    progress.update("testing", f"running the tests of {len(completions)} completions")
    completions_run_tests(completion_ids=[c.pk for c in completions])
    joined = held = 0
    for prompt in prompts:
        formed, held_back = pairs_form_screened(prompt=prompt, model_version=version)
        joined, held = joined + len(formed), held + len(held_back)
    counts = outcome_counts(Completion.objects.filter(model_version=version, prompt__in=prompts))
    total = sum(counts.values())
    summary = {
        "model": version.name,
        "completions": total,
        "passed": counts[Completion.Outcome.PASSED],
        "pairs_joined": joined,
        "pairs_held_back": held,
        "generation_seconds": time.monotonic() - started,
    }
    progress.update(
        "done",
        f"{version.name}: {summary['passed']} of {total} completions pass their tests; "
        f"{joined} new pairs joined the queue, {held} held back as degenerate",
        **summary,
    )
    return progress.status
