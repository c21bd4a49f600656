"""Running completions' unit tests in the sandbox, and storing the trusted outcome on each Completion.

The running itself is training/sandbox/ (no Django there: training uses it for rewards and pass@k). Here:
which completions to run, the limits from ``settings.CODEPREF``, storing outcome, output, the sandbox's
version, the verdict's strength and which limits held, and flagging the pairs that the tests decide (one side
passed, the other did not, both judged outside the sandbox: strong verdicts only).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from feedback.models import Completion, Pair, Prompt
from training.sandbox import SANDBOX_VERSION, SandboxJob, run_many

logger = logging.getLogger(__name__)

# Languages the sandbox can run; completions of other prompts keep the outcome "not run".
RUNNABLE_LANGUAGES = frozenset({"python"})
STRONG = Completion.VerdictStrength.STRONG


def _runnable(completion: Completion) -> bool:
    prompt = completion.prompt
    return prompt.has_tests and prompt.language in RUNNABLE_LANGUAGES and prompt.test_style in ("humaneval", "asserts")


def _job(completion: Completion) -> SandboxJob:
    prompt = completion.prompt
    return SandboxJob(
        prompt=prompt.text,
        completion=completion.text + prompt.suffix,  # fill-in-the-middle: the program is prefix + middle + suffix
        tests=prompt.tests,
        style=prompt.test_style,
        entry_point=prompt.entry_point,
        timeout=settings.CODEPREF["SANDBOX_TIMEOUT_SECONDS"],
        memory_mb=settings.CODEPREF.get("SANDBOX_MEMORY_MB", 1024),
        output_limit=settings.CODEPREF["SANDBOX_OUTPUT_LIMIT"],
    )


def completions_run_tests(
    *,
    completion_ids: Iterable[int],
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Run the unit tests of these completions in the sandbox and store each outcome; safe to repeat.

    A completion already tested by this sandbox version is skipped unless ``force``; one whose prompt has no
    tests (or is not Python) keeps the outcome "not run". Results are stored a batch at a time, so an
    interrupted run keeps what it finished. ``progress(n)`` is called as n more completions are done.
    Returns counts: outcomes, ``skipped_current``, ``skipped_no_tests``, ``missing`` and ``pairs_decided``.
    """
    ids = sorted({int(pk) for pk in completion_ids})
    counts: Counter[str] = Counter()
    completions = list(Completion.objects.filter(pk__in=ids).select_related("prompt").order_by("pk"))
    counts["missing"] = len(ids) - len(completions)
    todo = _to_run(completions, force=force, counts=counts)
    if progress and len(completions) > len(todo):
        progress(len(completions) - len(todo))

    workers = max(1, int(settings.CODEPREF.get("SANDBOX_WORKERS", 2)))
    batch = workers * 8
    isolation = ""
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        isolation = _run_and_store(chunk, workers=workers, counts=counts)
        if progress:
            progress(len(chunk))
    if todo:
        logger.info("ran the tests of %d completion(s) under %s: %s", len(todo), isolation, dict(counts))
    counts["pairs_decided"] = pairs_refresh_decided_by_tests(completion_ids=[c.pk for c in todo])
    return {key: counts.get(key, 0) for key in _COUNT_KEYS}


def _to_run(completions: list[Completion], *, force: bool, counts: Counter[str]) -> list[Completion]:
    """The completions whose tests are to run; counts the others as ``skipped_no_tests`` (nothing runnable) or
    ``skipped_current`` (already tested by this sandbox version, unless ``force``)."""
    todo: list[Completion] = []
    for completion in completions:
        if not _runnable(completion):
            counts["skipped_no_tests"] += 1
        elif not force and completion.outcome != Completion.Outcome.NOT_RUN and _is_current(completion):
            counts["skipped_current"] += 1
        else:
            todo.append(completion)
    return todo


def _run_and_store(chunk: list[Completion], *, workers: int, counts: Counter[str]) -> str:
    """Run one batch's tests in the sandbox and store each outcome (one bulk update); counts the outcomes.
    Returns the isolation the batch's last run had."""
    results = run_many([_job(c) for c in chunk], workers=workers)
    tested_at = timezone.now()
    isolation = ""
    for completion, result in zip(chunk, results, strict=True):
        completion.outcome = result.outcome
        completion.test_duration = round(result.duration, 4)
        completion.test_stdout = result.stdout
        completion.test_stderr = result.stderr
        completion.isolation = result.isolation
        completion.sandbox_version = result.sandbox_version
        completion.verdict_strength = result.verdict_strength
        completion.test_details = result.details
        completion.tested_at = tested_at
        counts[result.outcome] += 1
        isolation = result.isolation
    Completion.objects.bulk_update(
        chunk,
        [
            "outcome",
            "test_duration",
            "test_stdout",
            "test_stderr",
            "isolation",
            "sandbox_version",
            "verdict_strength",
            "test_details",
            "tested_at",
        ],
    )
    return isolation


_COUNT_KEYS = (
    Completion.Outcome.PASSED,
    Completion.Outcome.FAILED,
    Completion.Outcome.ERROR,
    Completion.Outcome.TIMEOUT,
    "skipped_current",
    "skipped_no_tests",
    "missing",
    "pairs_decided",
)


def _is_current(completion: Completion) -> bool:
    return completion.sandbox_version == SANDBOX_VERSION


# An error of the sandbox itself (tests it could not split, a sandbox that would not start) is its whole stderr,
# starting with this; a program that broke its harness (no report) has its own output before the sandbox's note.
SANDBOX_TROUBLE = "[sandbox]"


def is_decisive_failure(completion: Completion) -> bool:
    """Whether this completion's verdict is a real failure of its code, so a pair of it and a passing one
    is decided (and gold): tests that ran and failed, or the program raising; never a timeout (the machine
    may have been slow) nor an error of the sandbox itself (isolation, harness, test split).

    Only a strong verdict (judged outside the sandbox) can be decisive. The one place that says what decides a
    pair: pairing, the verdict refresh and gold all ask here.
    """
    if completion.verdict_strength != STRONG:
        return False  # judged in process: code under test could have forged the report
    if completion.outcome == Completion.Outcome.FAILED:
        return True
    if completion.outcome == Completion.Outcome.ERROR:
        return not (completion.test_stderr or "").startswith(SANDBOX_TROUBLE)
    return False


def winner_by_tests(a: Completion, b: Completion) -> str:
    """ "a" or "b" when one side passed and the other failed decisively, both by strong verdicts; "" when the
    tests do not decide."""
    if a.verdict_strength != STRONG or b.verdict_strength != STRONG:
        return ""
    if a.outcome == Completion.Outcome.PASSED and is_decisive_failure(b):
        return "a"
    if b.outcome == Completion.Outcome.PASSED and is_decisive_failure(a):
        return "b"
    return ""


def gold_explanation_from_tests(winner: Completion, loser: Completion) -> str:
    """What a volunteer who missed this gold pair is told."""
    tail = [line for line in (loser.test_stderr or "").splitlines() if line.strip()][-1:]
    why = f" ({tail[0][:200]})" if tail else ""
    return (
        "The preferred completion passes the prompt's unit tests; the other one "
        f"{'fails them' if loser.outcome == Completion.Outcome.FAILED else 'raises an error'}{why}."
    )


_VERDICT_FIELDS = ("id", "outcome", "test_stderr", "verdict_strength")


def pairs_refresh_decided_by_tests(*, completion_ids: Iterable[int]) -> int:
    """Set ``decided_by_tests`` on the pairs touching these completions; returns how many are now decided.

    A pair is decided when one side passed and the other failed decisively (``is_decisive_failure``), both by
    strong verdicts (judged outside the sandbox); a side not run, timed out, stopped by the sandbox or judged by
    the in-process report that code under test can forge decides nothing. A decided pair becomes gold (state
    ``gold``, its known answer from the tests): labelled by the tests and shown to volunteers only as a quality
    check. A pair no longer decided goes back to the volunteers (maintainer-authored gold stays gold).
    """
    ids = list(completion_ids)
    if not ids:
        return 0
    touching = Pair.objects.filter(Q(completion_a_id__in=ids) | Q(completion_b_id__in=ids))
    decided = 0
    with transaction.atomic():
        pairs = list(
            touching.select_for_update(of=("self",))
            .select_related("completion_a", "completion_b")
            .only(
                "id",
                "state",
                "votes_count",
                "votes_wanted",
                "gold_source",
                "decided_by_tests",
                *(f"completion_{side}__{name}" for side in "ab" for name in _VERDICT_FIELDS),
            )  # fmt: skip
        )
        for pair in pairs:
            winner = winner_by_tests(pair.completion_a, pair.completion_b)
            decided += bool(winner)
            _pair_gold_from_tests(pair, winner)
    return decided


def _pair_gold_from_tests(pair: Pair, winner: str) -> None:
    if winner:
        won, lost = (pair.completion_a, pair.completion_b) if winner == "a" else (pair.completion_b, pair.completion_a)
        fields = {"decided_by_tests": True}
        if pair.gold_source != Pair.GoldSource.MAINTAINER:
            fields.update(gold_choice=winner, gold_source=Pair.GoldSource.TESTS,
                          gold_explanation=gold_explanation_from_tests(won, lost))  # fmt: skip
            if pair.state != Pair.State.RETIRED:
                fields["state"] = Pair.State.GOLD
        Pair.objects.filter(pk=pair.pk).update(**fields)
    elif pair.decided_by_tests or pair.gold_source == Pair.GoldSource.TESTS:
        fields = {"decided_by_tests": False}
        if pair.gold_source == Pair.GoldSource.TESTS:
            fields.update(gold_choice="", gold_source="", gold_explanation="")
            if pair.state == Pair.State.GOLD:
                full = pair.votes_count >= pair.votes_wanted
                fields["state"] = Pair.State.COMPLETE if full else Pair.State.OPEN
        Pair.objects.filter(pk=pair.pk).update(**fields)


def completion_ids_to_test(*, which: str) -> Iterable[int]:
    """Ids for ``manage.py run_tests``: "all" completions with runnable tests, or the "untested" ones among them.

    Untested means never run or run by another sandbox version.
    """
    runnable = Completion.objects.filter(
        prompt__language__in=RUNNABLE_LANGUAGES,
        prompt__test_style__in=[Prompt.TestStyle.HUMANEVAL, Prompt.TestStyle.ASSERTS],
    ).exclude(prompt__tests="")
    if which == "untested":
        runnable = runnable.filter(Q(outcome=Completion.Outcome.NOT_RUN) | ~Q(sandbox_version=SANDBOX_VERSION))
    elif which != "all":
        raise ValueError(f"which must be 'all' or 'untested'; got {which!r}")
    return runnable.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=2000)
