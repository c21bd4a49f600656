"""What the admin says about a training run, in words: a stage's own time, its metrics as whole items, its log
without progress bars, and one line on what a cycle produced."""

from __future__ import annotations

import re

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from feedback.models import Pair, TrainingRun

from .arena import arena_prompt_ids

METRICS_SHOWN = 6
# A tqdm bar as it ends up in a log: "Map:  40%|████      | 4/10 [00:01<00:02, 3.1 examples/s]".
PROGRESS_BAR = re.compile(r"\d{1,3}%\|[^|]*\|\s*\d+(?:\.\d+)?[kMG]?/\d+(?:\.\d+)?[kMG]?\b")
BAR_GLYPHS = re.compile("[\u2580-\u259f\u2800-\u28ff]")  # block elements, braille "spinners"


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def run_time(run: TrainingRun) -> str:
    """A stage's own measured seconds (what the pipeline timed, the same figure as in its metrics); a cycle's, or
    a stage's without them, from its start and finish."""
    seconds = (run.metrics or {}).get("seconds")
    if run.stage != TrainingRun.Stage.CYCLE and isinstance(seconds, (int, float)):
        return clock(seconds)
    if not run.started_at:
        return "-"
    return clock(((run.finished_at or timezone.now()) - run.started_at).total_seconds())


def short(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _scalar(value) -> bool:
    return isinstance(value, (int, float, str, bool)) and not (isinstance(value, str) and len(value) > 40)


def metrics_items(metrics: dict, *, limit: int = METRICS_SHOWN) -> tuple[list[str], int]:
    """Up to ``limit`` scalar metrics as whole "name=value" items (never cut inside one), and how many more there
    are (scalars left out, and nested ones, which the stage's page shows)."""
    names = sorted(k for k in (metrics or {}) if k != "seconds")
    scalars = [k for k in names if _scalar(metrics[k])]
    return [f"{k}={short(metrics[k])}" for k in scalars[:limit]], len(names) - min(len(scalars), limit)


def log_without_progress_bars(text: str) -> tuple[str, int]:
    """The log tail without progress-bar lines (their last redraw still says only "100%|█████|"); returns the
    text and how many lines were left out."""
    kept, dropped = [], 0
    for line in (text or "").splitlines():
        if PROGRESS_BAR.search(line) or (BAR_GLYPHS.search(line) and not BAR_GLYPHS.sub("", line).strip(" |")):
            dropped += 1
            continue
        kept.append(BAR_GLYPHS.sub("", line))
    return "\n".join(kept), dropped


def cycle_outcome(run: TrainingRun) -> str:
    """One line: what this cycle produced (a model version, promoted or not, and the pairs that reached the queue)."""
    if run.stage != TrainingRun.Stage.CYCLE:
        return "-"
    if run.state in (TrainingRun.State.QUEUED, TrainingRun.State.RUNNING):
        return f"nothing yet: the cycle is {run.state}"
    version = run.model_version
    if run.state != TrainingRun.State.SUCCEEDED or version is None:
        return f"nothing: the cycle {run.state}" + (f" ({run.message})" if run.message else "")
    promotion = (run.metrics or {}).get("promotion") or {}
    if not promotion.get("promote"):
        return f"model version {version.name}, not promoted (its parent stays active); 0 new pairs: it writes none"
    mine = Q(completion_a__model_version=version) | Q(completion_b__model_version=version)
    pairs = Pair.objects.filter(mine)
    total, open_ = pairs.count(), pairs.filter(state=Pair.State.OPEN).count()
    head = f"model version {version.name}, promoted and active; "
    if total:
        return head + f"{total} new pair{'s' * (total != 1)} of its completions ({open_} open for votes)"
    if not arena_prompt_ids(version=version, limit=1):
        cap = settings.CODEPREF["MAX_PAIRS_PER_PROMPT"]
        return head + f"0 new pairs: every prompt already holds its pairs (MAX_PAIRS_PER_PROMPT = {cap})"
    return head + "0 new pairs yet: its completions are being generated (queue 'generation')"
