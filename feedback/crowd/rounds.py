"""One round of the closed loop, through the platform's own services, and what it did, measured.

A round: the active model writes completions for the round's training prompts (their tests run in the
sandbox, pairs are formed by the pairing policy), the simulated crowd votes on the open pairs through the
API, a dataset snapshot is exported, and a training cycle runs the TRL pipeline (sft -> reward -> dpo ->
online_rl -> evaluate) and the promotion gate. ``bench/learning.py`` runs rounds and controls of it; a test
runs one small round.

Quality control of the votes (issue 12) plugs in as ``RoundSettings.quality_control``: a callable run after the
crowd has voted and before the export, whose returned dict is recorded with the round. None runs without it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from feedback.coders.generation import completions_generate
from feedback.coders.importing import prompts_import
from feedback.coders.registry import model_version_register
from feedback.coders.verdicts import completions_run_tests
from feedback.cycles.inputs import base_model
from feedback.cycles.runs import run_dir_for
from feedback.cycles.services import training_cycle_execute
from feedback.datasets.services import snapshot_build
from feedback.models import Completion, DatasetSnapshot, ModelVersion, Prompt, TrainingRun, Vote
from training.ladder import Task

from .oracle import FAILED, PASSED
from .profiles import mix_parse
from .report import crowd_report
from .simulation import SimulatedTime, crowd_enlist, crowd_run, crowd_tokens_issue, crowd_tokens_revoke


@dataclass(frozen=True)
class RoundSettings:
    """What one round does: which prompts, how many samples, which crowd, which recipe."""

    prompt_ids: tuple[int, ...]
    samples: int = 4
    max_new_tokens: int = 64
    temperature: float = 0.8
    mix: str = "careful:6,noisy:4"
    crowd_seed: int = 0
    sample_seed: int = 1000  # round r's completions are sampled with seed sample_seed + r
    max_votes: int = 100_000
    max_crowd_seconds: float = 1800.0
    # Reading time, simulated (simulation.SimulatedTime): a careful volunteer's mean, in seconds. Quality control
    # reads the votes' times, and a crowd voting at machine speed is, rightly, flagged as too fast.
    reading_seconds: float = 20.0
    recipe: str = "ladder"
    quality_control: Callable[[], dict] | None = None  # issue 12's hook: after the votes, before the export
    snapshot_filters: Mapping | None = None  # the export's filters (snapshot_build's; None: the defaults)
    # The labels-swapped control: every exported preference (the tests' labels too) goes in reversed.
    swap_labels: bool = False


@contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        times[name] = round(time.monotonic() - started, 2)


def generator_ensure(model_path: str, *, name: str = "bootstrap") -> ModelVersion:
    """The active transformers version (what the next round generates with); the bootstrap folder, registered
    and activated, when there is none yet."""
    version, _path = base_model()
    if version is not None and version.is_active:
        return version
    return model_version_register(
        name=name, backend=ModelVersion.Backend.TRANSFORMERS, target=str(model_path), activate=True
    )


def completions_write(version: ModelVersion, settings: RoundSettings, *, seed: int) -> list[Completion]:
    """The active model's samples for the round's prompts (pairs formed as they are stored), their tests run."""
    completions = completions_generate(
        prompt_ids=list(settings.prompt_ids),
        model_version_id=version.pk,
        n=settings.samples,
        params={"max_new_tokens": settings.max_new_tokens, "temperature": settings.temperature, "seed": seed},
    )
    # Tests are queued after commit (inline when eager); running them here as well is a no-op then, and makes
    # the outcomes certain before the crowd's oracle reads them.
    completions_run_tests(completion_ids=[c.pk for c in completions])
    return completions


def ladder_prompts_import(tasks: list[Task], *, tag: str, anchor_pairs: bool = False) -> list[int]:
    """Ladder tasks as prompts (HumanEval's schema: the reference solution comes as a "canonical" completion),
    ``tag`` appended to their ids; their imported completions' tests run now. Returns the prompt ids.

    ``anchor_pairs``: each prompt also gets a broken body as a second completion, by turns one that returns its
    input unchanged and the reference returning None: with the reference, a test-decided pair, so that a model
    that passes nothing still gives the stages pairs to learn from (the test's short form uses it).
    """
    lines = []
    for index, task in enumerate(tasks):
        record = {**task.record(), "task_id": f"{task.task_id}/{tag}"}
        if anchor_pairs:
            broken = "    return x\n" if index % 2 == 0 else task.canonical_solution.replace("return x", "return None")
            record = {
                "id": record["task_id"],
                "prompt": task.prompt,
                "language": "python",
                "tests": task.test,
                "entry_point": task.entry_point,
                "completions": [
                    {"model": "canonical", "text": task.canonical_solution},
                    {"model": "broken", "text": broken},
                ],
            }
        lines.append(json.dumps(record))
    prompts_import(lines=lines, strict=True)
    ids = sorted(
        Prompt.objects.filter(external_id__in=[f"{t.task_id}/{tag}" for t in tasks]).values_list("pk", flat=True)
    )
    completions_run_tests(completion_ids=Completion.objects.filter(prompt_id__in=ids).values_list("pk", flat=True))
    return ids


def crowd_vote(settings: RoundSettings, api) -> dict:
    """The crowd votes on every open pair (bounded by max votes and seconds); its report."""
    mix = mix_parse(settings.mix)
    members = crowd_enlist(mix=mix, volunteers=sum(mix.values()), seed=settings.crowd_seed)
    crowd_tokens_issue(members, lifetime_seconds=settings.max_crowd_seconds + 3600)
    try:
        result = crowd_run(
            members,
            api=api,
            seed=settings.crowd_seed,
            max_votes=settings.max_votes,
            max_seconds=settings.max_crowd_seconds,
            simulated=SimulatedTime(settings.reading_seconds, start=timezone.now() - timedelta(hours=6)),
        )
    finally:
        crowd_tokens_revoke(members)
    report = crowd_report(members, result, seed=settings.crowd_seed, transport=api.name)
    if result.error:
        raise RuntimeError(f"the crowd stopped on an error: {result.error}")
    return report


def preference_labels_swap(folder: Path) -> int:
    """The control's export: chosen and rejected exchanged in every preference row (JSONL and Parquet twin), so
    that every stage learns the opposite of what the tests and the crowd said. Returns the rows swapped."""
    swapped = 0
    for split in ("train", "test"):
        path = folder / "preference" / f"{split}.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for row in rows:  # chosen / rejected and every chosen_* / rejected_* column (outcomes, ids)
            for key in [k for k in row if k.startswith("chosen")]:
                other = "rejected" + key.removeprefix("chosen")
                if other in row:
                    row[key], row[other] = row[other], row[key]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        path.with_suffix(".parquet").unlink(missing_ok=True)  # the JSONL is what is read
        swapped += len(rows)
    return swapped


def label_accuracy(snapshot: DatasetSnapshot | None) -> dict:
    """The exported preference rows scored against the tests: right when chosen passed and rejected failed."""
    right = wrong = undecided = 0
    if snapshot is not None and snapshot.path.is_dir():
        for split in ("train", "test"):
            path = snapshot.path / "preference" / f"{split}.jsonl"
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line) if line.strip() else None
                if row is None:
                    continue
                chosen, rejected = row.get("chosen_outcome"), row.get("rejected_outcome")
                if chosen == PASSED and rejected in FAILED:
                    right += 1
                elif rejected == PASSED and chosen in FAILED:
                    wrong += 1
                else:
                    undecided += 1
    decided = right + wrong
    return {
        "rows": decided + undecided,
        "test_decided": decided,
        "right": right,
        "accuracy": round(right / decided, 4) if decided else None,
    }


def stage_results(run: TrainingRun) -> dict[str, dict]:
    """Each stage's result.json from the cycle's summary (empty for a stage that did not run)."""
    try:
        summary = json.loads((run_dir_for(run) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return {s["stage"]: s.get("result") or {} for s in summary.get("stages") or [] if isinstance(s, dict)}


def stage_metrics(results: dict[str, dict]) -> dict:
    """What each stage changed, against its own before value."""
    reward, dpo, rl = results.get("reward", {}), results.get("dpo", {}), results.get("online_rl", {})
    return {
        "reward_accuracy_before": reward.get("heldout_accuracy_before"),
        "reward_accuracy_after": reward.get("heldout_accuracy"),
        "reward_accuracy_grounded_before": reward.get("heldout_accuracy_grounded_before"),
        "reward_accuracy_grounded_after": reward.get("heldout_accuracy_grounded"),
        "reward_accuracy_examples_alone": reward.get("heldout_accuracy_examples_alone"),
        "reward_margin_before": reward.get("heldout_margin_before"),
        "reward_margin_after": reward.get("heldout_margin"),
        "reward_heldout_pairs": reward.get("heldout_pairs"),
        "reward_dropped_too_long": reward.get("dropped_too_long"),
        "policy_preference_before": dpo.get("policy_preference_before"),
        "policy_preference_after": dpo.get("policy_preference_after"),
        "policy_margin_before": dpo.get("policy_margin_before"),
        "policy_margin_after": dpo.get("policy_margin_after"),
        "dpo_heldout_pairs": dpo.get("heldout_pairs"),
        "rl_reward_curve": rl.get("reward_curve"),
        "rl_tests_pass_rate": rl.get("tests_pass_rate"),
        "sft_examples": results.get("sft", {}).get("train_examples"),
    }


def loop_round(number: int, settings: RoundSettings, *, api, model_path: str) -> dict:
    """Run round ``number`` and return its record (the cycle's evaluation, the gate's decision, the figures)."""
    times: dict[str, float] = {}
    version = generator_ensure(model_path)
    votes_before = Vote.objects.count()
    with timed(times, "generate_and_test"):
        completions = completions_write(version, settings, seed=settings.sample_seed + number)
    with timed(times, "crowd"):
        crowd = crowd_vote(settings, api)
    quality = None
    if settings.quality_control is not None:
        with timed(times, "quality_control"):
            quality = settings.quality_control()
    with timed(times, "snapshot"):
        built = snapshot_build(filters=settings.snapshot_filters)
        if settings.swap_labels and built.snapshot is not None:
            preference_labels_swap(built.snapshot.path)
    with timed(times, "cycle"):
        run = training_cycle_execute(recipe=settings.recipe, force=True)
    run.refresh_from_db()
    results = stage_results(run)
    times.update({f"stage_{k}": v for k, v in (run.metrics or {}).get("stage_seconds", {}).items() if v})
    outcomes = [c.outcome for c in completions]
    return {
        "round": number,
        "generator": version.name,
        "generator_dir": version.target,
        "completions": len(completions),
        "completions_passed": sum(o == PASSED for o in outcomes),
        "completions_empty": sum(not c.text.strip() for c in completions),
        "votes_used": Vote.objects.count() - votes_before,
        "crowd_majority_accuracy": crowd["pairs"]["majority_accuracy"],
        "crowd": {name: p["accuracy"] for name, p in crowd["profiles"].items()},
        "quality_control": quality,
        "snapshot": built.snapshot.version if built.snapshot else None,
        "label_accuracy": label_accuracy(run.snapshot or built.snapshot),
        "cycle": {"id": run.pk, "state": run.state, "message": run.message},
        "evaluation": (run.metrics or {}).get("evaluation") or {},
        "promotion": (run.metrics or {}).get("promotion"),
        "policy_dir": run.model_version.target if run.model_version else None,
        "eval_dir": str(Path(run_dir_for(run)) / "evaluate"),
        **stage_metrics(results),
        "seconds": times,
    }
