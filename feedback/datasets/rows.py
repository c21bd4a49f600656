"""From database rows to dataset rows: one pass over the pairs (labels, filters, agreement, masking, the
split), then the prompts and the votes of the pairs kept. Each row is one tuple in its part's column order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from django.conf import settings

from feedback.models import ModelVersion, Pair
from training.dataset_format import FORMATS, PARTS, PREFERENCE_COLUMNS, SPLITS, TABLE_PARTS

from .aggregation import AgreementCounter, label_pair
from .options import SnapshotOptions, split_of
from .privacy import Masker, pseudonym
from .reader import Reader, pairs_sql, prompts_sql, votes_sql
from .writers import Outputs, hf_folders_write

HANDOVER_ROWS = 128
_LABEL = PREFERENCE_COLUMNS.index("label")
_KINDS = {"a": "preferred", "b": "preferred", "tie": "tie", "both_bad": "both_bad"}  # the label column's values


def _no_progress(fraction: float, stage: str, *, force: bool = False) -> None:
    pass


@dataclass
class RowContext:
    """One snapshot's files being written: where rows come from and go, and what they carry."""

    reader: Reader
    outputs: Outputs
    masker: Masker
    options: SnapshotOptions
    version: int
    last_vote_id: int
    progress: Callable[..., None] = _no_progress
    salt: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.salt = settings.CODEPREF.get("SNAPSHOT_SPLIT_SALT")

    def split_of(self, content_hash: str) -> str:
        return split_of(content_hash, test_fraction=self.options.test_fraction, salt=self.salt)


def snapshot_files_write(
    *,
    folder: Path,
    version: int,
    options: SnapshotOptions,
    last_vote_id: int,
    parts: tuple[str, ...] = PARTS,
    formats: tuple[str, ...] = FORMATS,
    progress: Callable[..., None] = _no_progress,
) -> dict:
    """Write one snapshot's files into ``folder`` (which must not exist); returns counts and statistics.

    Reads only committed rows with vote ids up to ``last_vote_id``; the same database state and
    options give byte-identical JSONL files.
    """
    folder.mkdir(parents=True)
    outputs = Outputs(folder, tuple(parts), tuple(formats))
    timings: dict[str, float] = {}
    with Reader() as reader, Masker() as masker:
        progress(0.01, "starting", force=True)
        job = RowContext(reader, outputs, masker, options, version, last_vote_id, progress)
        outputs.open()
        try:
            started = time.perf_counter()
            stats = pairs_write(job)
            timings["pairs"] = time.perf_counter() - started
            for part, fraction, write in (("prompts", 0.8, prompts_write), ("votes", 0.85, votes_write)):
                if part in parts:
                    progress(fraction, part, force=True)
                    started = time.perf_counter()
                    write(job)
                    timings[part] = time.perf_counter() - started
        finally:
            started = time.perf_counter()
            outputs.close()
            timings["close"] = time.perf_counter() - started
        stats["masking"] = masker.summary()
    if "hf" in formats:
        progress(0.9, "datasets", force=True)
        started = time.perf_counter()
        hf_folders_write(folder, [part for part in TABLE_PARTS if part in parts], version)
        timings["hf"] = time.perf_counter() - started
    return {**stats, "seconds": timings, "rows": dict(outputs.rows), "hashes": outputs.hashes}


def pairs_write(job: RowContext) -> dict:
    """The hot loop of an export: one pass over the pairs in (prompt, pair) order, no per-row queries.

    Labels each pair (feedback.datasets.aggregation), applies the vote filters, counts agreement, and writes
    the preference and unpaired rows; the kept pairs go to the reader's temporary table for the later parts.
    Returns the pass's statistics.
    """
    reader = job.reader
    total = Pair.objects.filter(votes_count__gt=0).count() or 1  # for progress only
    keep_table = "prompts" in job.outputs.parts or "votes" in job.outputs.parts
    if keep_table:
        reader.create_pairs_table()
    reader.stream_in_index_order()
    sql, params = pairs_sql(job.options, postgres=reader.postgres)
    rows = _PairPass(job)
    for batch in reader.batches(sql, [job.last_vote_id, *params], name="snapshot_pairs"):
        table: list[tuple] | None = [] if keep_table else None
        # A few rows at a time, so that their texts are still in the CPU's cache when they are written out.
        for start in range(0, len(batch), HANDOVER_ROWS):
            rows.write(batch[start : start + HANDOVER_ROWS], table)
        if table:
            reader.insert_pairs(table)
        job.progress(0.8 * min(rows.considered / total, 1.0), "writing")
    if keep_table:
        reader.index_pairs()
    return rows.stats()


class _PairPass:
    """Labels and filters pairs, turns the kept ones into rows, and counts what it saw.

    A pair's row is its preference row: the chosen column holds the completion the majority preferred (A for
    ties and both-bad). Texts are masked once each: a prompt's when its first pair comes, a completion's (in
    several pairs) once per prompt. State carries over from one batch to the next.
    """

    def __init__(self, job: RowContext) -> None:
        parts, options = job.outputs.parts, job.options
        self.job = job
        self.min_votes, self.min_agreement = options.min_votes, options.min_agreement - 1e-12
        self.drop_ties = options.drop_ties
        self.models = dict(ModelVersion.objects.values_list("id", "name"))
        self.preference = job.outputs.split_writers("preference") if "preference" in parts else None
        self.unpaired = job.outputs.split_writers("unpaired") if "unpaired" in parts else None
        self.counter = AgreementCounter()
        self.dropped: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.considered = 0
        self.agreement_sum = 0.0
        self.prompt: tuple = (None, "", "")  # (id, masked text, split) of the current prompt
        self.masked: dict[int, str] = {}  # completions of the current prompt

    def write(self, batch: list[tuple], table: list[tuple] | None) -> None:
        """One batch of pairs; ``table``, if given, gets (pair, prompt, label, votes, margin, agreement) of each
        pair kept."""
        models, masked, mask, version = self.models, self.masked, self.job.masker.mask, self.job.version
        fraction, salt = self.job.options.test_fraction, self.job.salt
        pairs: dict[str, list[tuple]] = {split: [] for split in SPLITS}
        current, prompt_text, split = self.prompt
        for row, label, margin, agreement, source in self._labelled(batch):
            (pair_id, prompt_id, raw_prompt, language, chash, a_id, b_id, by_tests, a_raw, b_raw, a_outcome,
             b_outcome, a_model, b_model, votes, _w_a, _w_b, _w_tie, _w_bad, _n_a, _n_b, _n_tie, _n_bad, why, _gold,
             _gold_source, raw_suffix) = row  # fmt: skip
            if table is not None:
                table.append((pair_id, prompt_id, label, votes, margin, agreement))
            if prompt_id != current:
                current, prompt_text = prompt_id, mask(raw_prompt)
                split = split_of(chash, test_fraction=fraction, salt=salt)
                masked.clear()
            a_text = masked.get(a_id)
            if a_text is None:
                a_text = masked[a_id] = mask(a_raw)
            b_text = masked.get(b_id)
            if b_text is None:
                b_text = masked[b_id] = mask(b_raw)
            if label == "b":  # the chosen column holds the completion the majority preferred (A for ties)
                chosen, rejected, chosen_outcome, rejected_outcome, chosen_model, rejected_model = (
                    b_text, a_text, b_outcome, a_outcome, b_model, a_model)  # fmt: skip
            else:
                chosen, rejected, chosen_outcome, rejected_outcome, chosen_model, rejected_model = (
                    a_text, b_text, a_outcome, b_outcome, a_model, b_model)  # fmt: skip
            pairs[split].append(
                (prompt_text, chosen, rejected, pair_id, prompt_id, language, votes, margin, agreement, chosen_outcome,
                 rejected_outcome, models.get(chosen_model, ""), models.get(rejected_model, ""), version,
                 _KINDS[label], bool(by_tests), _masked_rationales(why, mask), source,
                 mask(raw_suffix) if raw_suffix else "")
            )  # fmt: skip
        self.considered += len(batch)
        self.prompt = (current, prompt_text, split)
        self._hand_over(pairs)

    def _labelled(self, batch: list[tuple]) -> list[tuple]:
        """The batch's pairs that pass the vote filters, in order, each as (row, label, margin, agreement, source).

        A known answer (gold) labels its pair whatever the votes say; other pairs are labelled by their votes.
        Counts agreement, the labels kept and the pairs dropped (by reason), and adds up the kept pairs' agreement.
        """
        min_votes, min_agreement, dropped, labels, count = (
            self.min_votes, self.min_agreement, self.dropped, self.labels, self.counter.add)  # fmt: skip
        agreement_sum = self.agreement_sum
        kept = []
        for row in batch:
            (_pair_id, _prompt_id, _raw_prompt, _language, _chash, _a_id, _b_id, _by_tests, _a_raw, _b_raw,
             _a_outcome, _b_outcome, _a_model, _b_model, votes, w_a, w_b, w_tie, w_bad, n_a, n_b, n_tie, n_bad, _why,
             gold, gold_source, _raw_suffix) = row  # fmt: skip
            if gold:  # a known answer (the tests', or a maintainer's) labels the pair, whatever the votes say
                if votes:
                    count(n_a, n_b, n_tie, n_bad)
                label, margin, agreement, source = gold, 1.0, 1.0, gold_source or "maintainer"
            else:
                if votes < min_votes:
                    dropped["min_votes"] += 1
                    continue
                count(n_a, n_b, n_tie, n_bad)
                result = label_pair(w_a, w_b, w_tie, w_bad, votes)
                if result is None:
                    dropped["no_weight"] += 1
                    continue
                label, _votes, _weight, margin, agreement = result
                if agreement < min_agreement:
                    dropped["min_agreement"] += 1
                    continue
                source = "votes"
            labels[label] += 1
            agreement_sum += agreement
            kept.append((row, label, margin, agreement, source))
        self.agreement_sum = agreement_sum
        return kept

    def _hand_over(self, pairs: dict[str, list[tuple]]) -> None:
        for split, rows in pairs.items():
            if self.preference is not None:
                # Ties and both-bad pairs are labelled in the file when kept (their "label" column says which).
                kept = [row for row in rows if row[_LABEL] == "preferred"] if self.drop_ties else rows
                self.preference[split].write(kept)
            if self.unpaired is not None:
                self.unpaired[split].write(_unpaired(rows))

    def stats(self) -> dict:
        kept = sum(self.labels.values())
        return {
            "dropped": dict(self.dropped),
            "labels": dict(self.labels),
            "pairs_considered": self.considered,
            "pairs_kept": kept,
            "agreement": {
                "krippendorff_alpha": self.counter.alpha(),
                "alpha_units": self.counter.pairable_units,
                "mean_pair_agreement": self.agreement_sum / kept if kept else None,
            },
        }


def _masked_rationales(rationales, mask) -> list[str]:
    """A pair's rationales (a list, or SQLite's JSON text of one), each masked like every other text."""
    if isinstance(rationales, str):
        rationales = orjson.loads(rationales)
    return [mask(text) for text in rationales or ()]


def _unpaired(pairs: list[tuple]) -> list[tuple]:
    """KTO rows of preference rows: the preferred completion is desirable, the other not; both-bad gives two
    undesirable examples; a tie says neither is better, not whether either is good, so it gives none."""
    rows = []
    for (prompt, chosen, rejected, pair_id, prompt_id, language, _votes, _margin, _agreement, chosen_outcome,
         rejected_outcome, chosen_model, rejected_model, version, kind, *_rest) in pairs:  # fmt: skip
        if kind != "tie":
            rows.append((prompt, chosen, kind != "both_bad", pair_id, prompt_id, language, chosen_outcome,
                         chosen_model, version))  # fmt: skip
            rows.append((prompt, rejected, False, pair_id, prompt_id, language, rejected_outcome, rejected_model,
                         version))  # fmt: skip
    return rows


def prompts_write(job: RowContext) -> None:
    """One row per prompt of the kept pairs, in its prompt's split."""
    writers = job.outputs.split_writers("prompts")
    mask = job.masker.mask
    for batch in job.reader.batches(prompts_sql(job.reader.table), name="prompts"):
        rows: dict[str, list[tuple]] = {split: [] for split in SPLITS}
        for prompt_id, text, language, tests, style, entry_point, reference, chash, suffix in batch:
            # Tests stay verbatim: masking them would change what they check.
            # The prompt's text was masked (and counted) in the pairs pass already.
            row = (prompt_id, mask(text, count=False), language, tests, style, entry_point, mask(reference),
                   mask(suffix, count=False) if suffix else "")  # fmt: skip
            rows[job.split_of(chash)].append(row)
        for split, split_rows in rows.items():
            writers[split].write(split_rows)


def votes_write(job: RowContext) -> None:
    """Every vote on the kept pairs, volunteers as pseudonyms, choices in the exported pair's terms."""
    writers = job.outputs.split_writers("votes")
    mask = job.masker.mask  # the rationales were masked (and counted) in the pairs pass already
    names: dict[int, str] = {}
    splits: dict[str, str] = {}
    batches = job.reader.batches(votes_sql(job.reader.table, job.options), [job.last_vote_id], name="votes")
    for batch in batches:
        rows: dict[str, list[tuple]] = {split: [] for split in SPLITS}
        for pair_id, prompt_id, label, user_id, choice, left_is_a, taken, weight, chash, why in batch:
            annotator = names.get(user_id)
            if annotator is None:
                annotator = names[user_id] = pseudonym(user_id)
            split = splits.get(chash)
            if split is None:
                if len(splits) > 10_000:
                    splits.clear()
                split = splits[chash] = job.split_of(chash)
            # "chosen" is the completion in the pair's chosen column (A unless B won).
            a_role, b_role = ("rejected", "chosen") if label == "b" else ("chosen", "rejected")
            relative = {"a": a_role, "b": b_role}.get(choice, choice)
            rows[split].append(
                (pair_id, prompt_id, annotator, relative, a_role if left_is_a else b_role, float(weight), taken,
                 mask(why, count=False))
            )  # fmt: skip
        for split, split_rows in rows.items():
            writers[split].write(split_rows)
