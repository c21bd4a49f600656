"""Streaming writers of a snapshot's files: JSON lines and Parquet from the same row tuples, and the
``datasets`` folders made from the Parquet files.

A row is a tuple in its part's column order (training.dataset_format); the JSON line is the object of
those columns, the Parquet row the tuple itself.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from training.dataset_format import COLUMNS, SPLITS, TABLE_PARTS, arrow_schemas, count_key, file_name

from .files import write_bytes

ROW_GROUP_ROWS = 8192
JSONL_FLUSH_BYTES = 4 << 20


class JsonlWriter:
    """Lines appended to one growing buffer, written in chunks; its sha256 computed on the way out.

    Each line is copied into the buffer at once: orjson's result keeps a few KB of spare capacity, so
    holding thousands of short lines as separate objects would cost many times their length.
    """

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.append = _lines_appender(columns)
        self.file = open(path, "wb")  # noqa: SIM115 (closed in close())
        self.digest = hashlib.sha256()
        self.buffer = bytearray()
        self.rows = 0

    def write(self, rows: list[tuple]) -> None:
        self.append(rows, self.buffer, orjson.dumps, orjson.OPT_APPEND_NEWLINE)
        self.rows += len(rows)
        if len(self.buffer) >= JSONL_FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.file.write(self.buffer)
            self.digest.update(self.buffer)
            self.buffer.clear()

    def close(self) -> str:
        self.flush()
        self.file.close()
        return self.digest.hexdigest()


def _lines_appender(columns: tuple[str, ...]) -> Callable[..., None]:
    """``append(rows, buffer, dumps, option)``: each row's JSON line onto ``buffer``, compiled from the column
    names as namedtuple once was. This is the export's hottest loop: a dict display over the unpacked row costs
    a third less than ``dict(zip(columns, row))``, and the loop calls no Python function per row."""
    names = [f"value_{index}" for index in range(len(columns))]
    pairs = ", ".join(f"{column!r}: {name}" for column, name in zip(columns, names, strict=True))
    source = (
        "def append(rows, buffer, dumps, option):\n"
        f"    for {', '.join(names)} in rows:\n"
        f"        buffer += dumps({{{pairs}}}, option=option)\n"
    )
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - the format's own column names, not input
    return namespace["append"]


class ParquetWriter:
    """Row groups of exactly ROW_GROUP_ROWS rows (the last one shorter), zstd-compressed."""

    def __init__(self, path: Path, schema) -> None:
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        self.pending: list[tuple] = []
        self.rows = 0

    def write(self, rows: list[tuple]) -> None:
        self.pending += rows
        while len(self.pending) >= ROW_GROUP_ROWS:
            self._write_group(self.pending[:ROW_GROUP_ROWS])
            del self.pending[:ROW_GROUP_ROWS]

    def _write_group(self, rows: list[tuple]) -> None:
        import pyarrow as pa

        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(column, type=spec.type) for column, spec in zip(columns, self.schema, strict=True)]
        self.writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.rows += len(rows)

    def close(self) -> None:
        if self.pending:
            self._write_group(self.pending)
            self.pending = []
        self.writer.close()


class SplitWriter:
    """One part's rows of one split, to each of its files (none for a part or format left out)."""

    def __init__(self, *files: JsonlWriter | ParquetWriter) -> None:
        self.files = files

    def write(self, rows: list[tuple]) -> None:
        if rows:
            for file in self.files:
                file.write(rows)


@dataclass
class Outputs:
    """The open files of one snapshot, by part and split."""

    folder: Path
    parts: tuple[str, ...]
    formats: tuple[str, ...]
    jsonl: dict = field(default_factory=dict)
    parquet: dict = field(default_factory=dict)
    hashes: dict = field(default_factory=dict)
    rows: Counter = field(default_factory=Counter)

    def open(self) -> Outputs:
        schemas = arrow_schemas() if "parquet" in self.formats or "hf" in self.formats else {}
        for part in self.parts:
            for split in SPLITS:
                # Prompts and votes are JSON lines only, whatever the formats.
                if "jsonl" in self.formats or part not in TABLE_PARTS:
                    self.jsonl[part, split] = JsonlWriter(self.folder / file_name(part, split), COLUMNS[part])
                if part in schemas:
                    path = self.folder / file_name(part, split, "parquet")
                    self.parquet[part, split] = ParquetWriter(path, schemas[part])
        return self

    def split_writers(self, part: str) -> dict[str, SplitWriter]:
        """The writer of each split of ``part``."""
        return {
            split: SplitWriter(*(files[part, split] for files in (self.jsonl, self.parquet) if (part, split) in files))
            for split in SPLITS
        }

    def close(self) -> None:
        for (part, split), writer in self.jsonl.items():
            self.hashes[file_name(part, split)] = writer.close()
            self.rows[count_key(part, split)] = writer.rows
        for (part, split), writer in self.parquet.items():
            writer.close()
            self.rows[count_key(part, split)] = writer.rows


def hf_folders_write(folder: Path, parts: list[str], version: int) -> None:
    """``datasets`` folders (what ``DatasetDict.save_to_disk`` writes), streamed from the Parquet files.

    ``Dataset.from_parquet`` + ``save_to_disk`` would copy each table through a memory-mapped cache file, and
    every page it touches counts as resident: 2 GB at a million pairs. Here record batches go one at a time
    from the Parquet file into datasets' own ``ArrowWriter``, and the two small JSON files beside the data are
    those ``save_to_disk`` writes, so ``datasets.load_from_disk`` reads the result as its own.
    """
    for part in parts:
        root = folder / "hf" / part
        for split in SPLITS:
            _hf_split_write(root / split, folder / file_name(part, split, "parquet"), f"{version}:{part}:{split}")
        write_bytes(root / "dataset_dict.json", orjson.dumps({"splits": list(SPLITS)}))


def _hf_split_write(target: Path, source_path: Path, fingerprint: str) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.arrow_writer import ArrowWriter

    target.mkdir(parents=True)
    source = pq.ParquetFile(source_path)
    features = datasets.Features.from_arrow_schema(source.schema_arrow)
    writer = ArrowWriter(features=features, path=str(target / "data-00000-of-00001.arrow"))
    try:
        for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
            writer.write_table(pa.Table.from_batches([batch]))
        writer.finalize()
    finally:
        writer.close()
    state = {
        "_data_files": [{"filename": "data-00000-of-00001.arrow"}],
        "_fingerprint": hashlib.sha256(f"codepref:{fingerprint}".encode()).hexdigest()[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": target.name,
    }
    write_bytes(target / "state.json", orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    info = asdict(datasets.DatasetInfo(features=features))
    write_bytes(target / "dataset_info.json", orjson.dumps({key: info[key] for key in sorted(info)}))
