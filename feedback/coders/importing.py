"""Importing prompts and completions from JSON Lines: the lines parsed (``parsing``), then the good ones stored.

Storing writes batches of lines with a few queries each, in a savepoint per batch; a batch the database
refuses is redone with a savepoint per line, so a line that fails at the database leaves nothing behind
either. The command and the admin upload both call ``prompts_import``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import DatabaseError, transaction

from feedback import dispatch
from feedback.models import Completion, ModelVersion, Pair, Prompt, content_hash, prompt_hash
from feedback.ranking.services import pair_gold_author

from .pairing import pairs_form
from .parsing import ImportFailed, LineError, ParsedLine, parse_line

logger = logging.getLogger(__name__)

MAX_BAD_LINES_SHOWN = 20
BATCH_LINES = 200  # lines written per savepoint; a batch the database refuses is redone line by line


@dataclass
class ImportReport:
    lines: int = 0
    prompts_added: int = 0
    prompts_present: int = 0
    completions_added: int = 0
    pairs_formed: int = 0
    gold_pairs: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    new_completion_ids: list[int] = field(default_factory=list)

    def add(self, other: ImportReport) -> None:
        self.prompts_added += other.prompts_added
        self.prompts_present += other.prompts_present
        self.completions_added += other.completions_added
        self.pairs_formed += other.pairs_formed
        self.gold_pairs += other.gold_pairs
        self.new_completion_ids.extend(other.new_completion_ids)

    def summary(self) -> str:
        return (
            f"{self.prompts_added} prompts added, {self.prompts_present} already present, "
            f"{self.completions_added} completions added, {self.pairs_formed} pairs formed, "
            + (f"{self.gold_pairs} gold pairs, " if self.gold_pairs else "")
            + f"{len(self.bad_lines)} bad lines"
        )

    def bad_line_messages(self, limit: int = MAX_BAD_LINES_SHOWN) -> list[str]:
        messages = [f"line {number}: {reason}" for number, reason in self.bad_lines[:limit]]
        if len(self.bad_lines) > limit:
            messages.append(f"... and {len(self.bad_lines) - limit} more bad lines")
        return messages


def prompts_import(*, lines: Iterable[str], strict: bool = False, max_pairs: int | None = None) -> ImportReport:
    """Parse every line, then store the good ones: prompts deduplicated by content, completions, pairs.

    A bad line is listed in the report with its number and reason, and nothing from it is stored. With
    ``strict``, one bad line refuses the whole file (``ImportFailed``) and nothing at all is stored.
    Importing the same file twice adds nothing. New completions are handed to the test runner after commit.
    """
    if max_pairs is not None and max_pairs < 0:
        raise ImportFailed("max_pairs must be zero or more")
    report = ImportReport()
    parsed: list[ParsedLine] = []
    for number, raw in enumerate(lines, start=1):
        report.lines = number
        try:
            line = parse_line(raw, number=number)
        except LineError as exc:
            report.bad_lines.append((number, str(exc)))
            continue
        if line is not None:
            parsed.append(line)
    if strict and report.bad_lines:
        raise ImportFailed(_strict_message(report))

    store = _Store(max_pairs=max_pairs)
    with transaction.atomic():
        for start in range(0, len(parsed), BATCH_LINES):
            batch = parsed[start : start + BATCH_LINES]
            try:
                with transaction.atomic():
                    tally = store.lines(batch)
            except DatabaseError:
                store.forget()
                if strict:
                    raise ImportFailed(_first_failure(store, batch))
                # Some line fails at the database: redo the batch one line per savepoint, losing only that line.
                tally = ImportReport()
                for line in batch:
                    try:
                        with transaction.atomic():
                            tally.add(store.lines([line]))
                    except DatabaseError as exc:
                        store.forget()
                        report.bad_lines.append((line.number, f"could not be stored: {exc}"))
            report.add(tally)
        report.bad_lines.sort()
        ids = list(report.new_completion_ids)
        if ids:
            dispatch.enqueue("feedback.tasks.run_tests", completion_ids=ids, on_error=_tests_not_queued)
    return report


def _strict_message(report: ImportReport) -> str:
    return "; ".join(report.bad_line_messages()) + " (--strict: nothing was imported)"


def _first_failure(store: _Store, batch: list[ParsedLine]) -> str:
    """Under --strict, name the line the database refused (found by retrying the batch line by line)."""
    for line in batch:
        try:
            with transaction.atomic():
                store.lines([line])
        except DatabaseError as exc:
            store.forget()
            return f"line {line.number}: could not be stored ({exc}) (--strict: nothing was imported)"
    return "a batch of lines could not be stored (--strict: nothing was imported)"


class _Store:
    """Writes batches of parsed lines with a handful of queries per batch, not per line."""

    def __init__(self, *, max_pairs: int | None) -> None:
        self.max_pairs = max_pairs
        self.versions: dict[str, ModelVersion] = {}

    def forget(self) -> None:
        # Versions created inside a rolled-back savepoint are gone: look them up again.
        self.versions.clear()

    def lines(self, batch: list[ParsedLine]) -> ImportReport:
        tally = ImportReport()
        digests = [
            prompt_hash(ln.prompt["language"], ln.prompt["text"], ln.prompt["tests"], ln.prompt.get("suffix", ""))
            for ln in batch
        ]
        prompts = {p.content_hash: p for p in Prompt.objects.filter(content_hash__in=set(digests))}
        known = set(prompts)
        new_prompts: dict[str, Prompt] = {}
        for line, digest in zip(batch, digests, strict=True):
            if digest in prompts:
                tally.prompts_present += 1
            else:
                prompts[digest] = new_prompts[digest] = Prompt(content_hash=digest, **line.prompt)
                tally.prompts_added += 1
        Prompt.objects.bulk_create(new_prompts.values())

        self._load_versions({model for line in batch for model, _ in line.completions})
        present = set(
            Completion.objects.filter(prompt_id__in=[prompts[digest].pk for digest in known]).values_list(
                "prompt_id", "model_version_id", "text_hash"
            )
        )
        wanted: dict[tuple[int, int, str], Completion] = {}
        for line, digest in zip(batch, digests, strict=True):
            prompt = prompts[digest]
            for model, text in line.completions:
                key = (prompt.pk, self.versions[model].pk, content_hash(text))
                if key not in present and key not in wanted:
                    wanted[key] = Completion(
                        prompt=prompt, model_version=self.versions[model], text=text, text_hash=key[2]
                    )
        # ignore_conflicts: a concurrent import of the same file must not turn these lines into errors.
        Completion.objects.bulk_create(wanted.values(), ignore_conflicts=True)

        by_prompt: dict[int, list[Completion]] = {}
        pks = {prompt.pk: prompt for prompt in prompts.values()}
        for completion in Completion.objects.filter(prompt_id__in=pks).order_by("prompt_id", "pk"):
            completion.prompt = pks[completion.prompt_id]  # pairs_form reads it; saves a query per completion
            by_prompt.setdefault(completion.prompt_id, []).append(completion)
            if (completion.prompt_id, completion.model_version_id, completion.text_hash) in wanted:
                tally.new_completion_ids.append(completion.pk)
        tally.completions_added = len(tally.new_completion_ids)
        for completions in by_prompt.values():
            tally.pairs_formed += len(pairs_form(completions=completions, max_pairs=self.max_pairs))
        for line, digest in zip(batch, digests, strict=True):
            if line.gold:
                tally.gold_pairs += self._gold(line, prompts[digest], by_prompt.get(prompts[digest].pk, []))
        return tally

    def _gold(self, line: ParsedLine, prompt: Prompt, completions: list[Completion]) -> int:
        """The line's gold pairs: formed if the cap left them out, then given their known answer."""
        by_key = {(c.model_version_id, c.text_hash): c for c in completions}
        made = 0
        for first, second, answer, explanation in line.gold:
            sides = []
            for model, text in (line.completions[first], line.completions[second]):
                sides.append(by_key.get((self.versions[model].pk, content_hash(text))))
            if None in sides or sides[0].pk == sides[1].pk:
                continue  # the two texts are one completion: nothing to compare
            a, b = sorted(sides, key=lambda c: c.pk)
            pair, _ = Pair.objects.get_or_create(
                completion_a=a, completion_b=b, defaults={"prompt": prompt, "language": prompt.language}
            )
            choice = {"tie": "tie", "both_bad": "both_bad"}.get(answer)
            if choice is None:
                better = sides[0] if answer == "first" else sides[1]
                choice = "a" if better.pk == a.pk else "b"
            pair_gold_author(pair_id=pair.pk, choice=choice, explanation=explanation)
            made += 1
        return made

    def _load_versions(self, names: set[str]) -> None:
        missing = names - self.versions.keys()
        if not missing:
            return
        for version in ModelVersion.objects.filter(name__in=missing):
            self.versions[version.name] = version
        for name in sorted(missing - self.versions.keys()):
            self.versions[name], _ = ModelVersion.objects.get_or_create(
                name=name, defaults={"backend": ModelVersion.Backend.IMPORTED}
            )


def _tests_not_queued(exc: Exception) -> None:
    # The import is already committed: the prompts stay imported and `manage.py run_tests --all` runs them later.
    logger.warning("imported completions but could not queue their tests: %s", exc)
