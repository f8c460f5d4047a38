"""Read a portal export file as batches of text columns named like the city's API fields.

CSV is parsed by pyarrow's streaming reader, every column as text, so a
40-million-row history streams through in constant memory without a Python loop
per row. JSON exports (a SODA JSON array, or JSON Lines) are decoded
record by record; they are the rarer, smaller path.

Titles are reduced the way the API names its fields ("Created Date" ->
created_date); the header then picks one of the city's known layouts
(`export.schemas`, see schemas.py), which names the API field behind each
column. A malformed CSV line is not dropped: it is handed back for quarantine.
"""

from __future__ import annotations

import csv
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingestion.redact import RedactedError, get_logger
from ingestion.registry import City, ExportSchema, ExportSpec
from ingestion.sources.arrow import META_COLUMNS, json_text
from ingestion.sources.exports.schemas import SchemaMismatch, column_name, decides, match_schema

log = get_logger("civic311.exports")

Format = Literal["csv", "json_array", "json_lines"]
# pyarrow parses small blocks several times faster than large ones (they stay in
# the CPU cache); they are then gathered into batches of DuckDB's row-group size:
# each becomes one parquet row group, which DuckDB's parallel insert writes as one
# of its own row groups instead of re-slicing misaligned ones.
CSV_BLOCK_BYTES = 2 << 20
BATCH_ROWS = 122_880
# Decoded JSON records are Python objects, far larger than their Arrow columns.
JSON_BATCH_ROWS = 20_000
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_CSV_SUFFIXES = (".csv", ".txt")
_READ_BYTES = 8 << 20
# No 311 record comes near this; a longer undecodable stretch is broken JSON, not a long record.
_MAX_RECORD_BYTES = 64 << 20


class ExportError(RedactedError, ValueError):
    """An export file cannot be loaded; the message names the city, the file and the fix."""


def export_spec(city: City) -> ExportSpec:
    if city.export is None:
        raise ExportError(
            f"{city.id}: the registry has no export block for this city, so its export files cannot be "
            "mapped. Fix: add an `export:` block (its schemas and timestamp fields) to the city in "
            "ingestion/cities.yaml, as docs/adding-a-city.md shows."
        )
    return city.export


def mapped_names(city: City, path: Path, titles: list[str]) -> tuple[ExportSchema, list[str]]:
    """The city's layout for these column titles, and the API field of each column ("" for
    an untitled one). Socrata's own fields (":id", ":@computed_region_…") keep the API's
    spelling, so they land in the same columns as the API's rows."""
    columns = [column_name(title) for title in titles]
    try:
        schema = match_schema(city, columns).schema
    except SchemaMismatch as mismatch:
        raise _error(city, path, str(mismatch), _SCHEMA_FIX.format(city=city.id)) from None
    return schema, [schema.field(c) if decides(c) else c for c in columns]


_SCHEMA_FIX = (
    "if the file is a known layout with new columns, add them to that schema's columns under "
    "export.schemas of city '{city}' in ingestion/cities.yaml; if it is another layout, add a schema "
    "there (docs/adding-a-city.md); check too that the file is this city's 311 export"
)


@dataclass
class MalformedLines:
    """CSV lines whose cell count does not match the header, kept for quarantine.

    pyarrow calls `__call__` from its parser threads; `take` hands the lines
    collected so far to the extracting generator.
    """

    expected: int
    lines: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, row: pacsv.InvalidRow) -> str:
        with self._lock:
            self.lines.append({"line": row.text, "cells": row.actual_columns, "expected": self.expected})
        return "skip"

    def take(self) -> list[dict]:
        with self._lock:
            taken, self.lines = self.lines, []
        return taken


@dataclass
class ExportFile:
    """One export file of one city, checked before any row is read."""

    city: City
    path: Path
    format: Format
    # Per CSV column, its API field name ("" when untitled and dropped).
    names: tuple[str, ...] = ()
    malformed: MalformedLines | None = None
    # The known layout the header fits (a JSON export's is found from its first records).
    schema: ExportSchema | None = None

    @classmethod
    def open(cls, city: City, path: Path | str) -> ExportFile:
        export_spec(city)
        path = Path(path)
        if not path.is_file():
            raise _error(
                city, path, "does not exist or is not a file", "check the path to the downloaded export"
            )
        found = cls(city, path, _detect_format(city, path))
        if found.format == "csv":
            _check_csv_bytes(city, path)
            found.schema, found.names = _csv_names(city, path)
            found.malformed = MalformedLines(expected=len(found.names))
        return found

    @property
    def columns(self) -> list[str]:
        return [name for name in self.names if name]

    def batches(self) -> Iterator[pa.Table]:
        """Text batches with API field names; null values already null."""
        if self.format == "csv":
            yield from self._csv_batches()
        else:
            yield from self._json_batches()

    def _csv_batches(self) -> Iterator[pa.Table]:
        spec = export_spec(self.city)
        # Untitled columns get a placeholder so pyarrow can name them, then are skipped.
        arrow_names = [name or f"__untitled_{i}" for i, name in enumerate(self.names)]
        options = {
            "read_options": pacsv.ReadOptions(
                column_names=arrow_names, skip_rows=1, block_size=CSV_BLOCK_BYTES
            ),
            # Quoted cells may span lines (free-text resolution notes).
            "parse_options": pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=self.malformed),
            "convert_options": pacsv.ConvertOptions(
                column_types=dict.fromkeys(self.columns, pa.string()),
                include_columns=self.columns,
                null_values=list(spec.null_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        }

        def read() -> Iterator[pa.Table]:
            reader = _arrow_call(self, lambda: pacsv.open_csv(self.path, **options))
            blocks: list[pa.RecordBatch] = []
            rows = 0
            while (block := _arrow_call(self, reader.read_next_batch, end=StopIteration)) is not None:
                blocks.append(block)
                rows += block.num_rows
                if rows >= BATCH_ROWS:
                    gathered = pa.Table.from_batches(blocks)
                    yield gathered.slice(0, BATCH_ROWS)
                    rest = gathered.slice(BATCH_ROWS).to_batches()
                    blocks, rows = rest, rows - BATCH_ROWS
            if rows:
                yield pa.Table.from_batches(blocks, schema=reader.schema)

        yield from read()

    def _json_batches(self) -> Iterator[pa.Table]:
        spec = export_spec(self.city)
        nulls = frozenset(spec.null_values)
        records = _json_array(self) if self.format == "json_array" else _json_lines(self)
        batch: list[dict] = []
        for record in records:
            batch.append(record)
            if len(batch) == JSON_BATCH_ROWS:
                yield _records_batch(self, batch, nulls)
                batch = []
        if batch:
            yield _records_batch(self, batch, nulls)


def _error(city: City, path: Path, problem: str, fix: str) -> ExportError:
    return ExportError(f"{city.id}: export file {path} {problem}. Fix: {fix}.")


def _arrow_call(export: ExportFile, call, end: type[BaseException] | None = None):
    """Run a pyarrow CSV call, turning its errors into ones that say what to do."""
    try:
        return call()
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "UTF8" in message or "UTF-8" in message:
            fix = "re-save the file as UTF-8 (portal exports are UTF-8)"
        else:
            fix = "re-download the export; the file looks truncated or is not a comma-separated export"
        raise _error(export.city, export.path, f"cannot be parsed as CSV ({message})", fix) from None
    except Exception as exc:
        if end is not None and isinstance(exc, end):
            return None
        raise


def _detect_format(city: City, path: Path) -> Format:
    name = path.name.lower()
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith((b"PK\x03\x04", b"\x1f\x8b", b"BZh")):
        raise _error(city, path, "is compressed", "unpack it and load the CSV or JSON file inside")
    # A NUL in a .csv is damage, which _check_csv_bytes locates; elsewhere it means binary.
    if head.startswith(b"PAR1") or (b"\x00" in head and not name.endswith(_CSV_SUFFIXES)):
        raise _error(city, path, "is a binary file, not a CSV or JSON export", "export the data as CSV")
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if name.endswith(_JSON_SUFFIXES) or (first in (b"[", b"{") and not name.endswith(_CSV_SUFFIXES)):
        if first == b"[":
            return "json_array"
        if first == b"{":
            return "json_lines"
        raise _error(
            city,
            path,
            "is not a JSON array or JSON Lines export",
            "export the dataset as JSON (an array of records) or as CSV",
        )
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    raise _error(
        city, path, "is neither a CSV nor a JSON export", "give a .csv or .json export of the city's 311 data"
    )


def _check_csv_bytes(city: City, path: Path) -> None:
    """Refuse a CSV with a NUL byte anywhere, or one that ends inside a quoted cell.

    pyarrow would store the NUL, and close the open quote at the end of the file, so a
    download cut inside the last cell would overwrite a good row with its first part.
    A file lacking only its final newline is complete. One pass of bytes.count: a
    well-formed CSV holds an even number of quote characters (a quoted cell opens and
    closes, an escaped quote is doubled), so only an odd count is parsed to see
    where the unfinished record begins (a stray quote inside an unquoted cell is odd
    too, and harmless)."""
    quotes = lines = offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_BYTES):
            if (at := chunk.find(b"\x00")) >= 0:
                line = lines + chunk.count(b"\n", 0, at) + 1
                raise _error(
                    city,
                    path,
                    f"holds a NUL byte on line {line:,} "
                    f"(byte offset {offset + at:,}); no 311 record holds one, so the file is damaged",
                    "download the export again; civic311 refuses the whole file rather than guess "
                    "which rows the damage reaches",
                )
            quotes += chunk.count(b'"')
            lines += chunk.count(b"\n")
            offset += len(chunk)
    if quotes % 2:
        _check_last_record(city, path)


def _check_last_record(city: City, path: Path) -> None:
    """Parse the file strictly, tracking where each record starts; refuse it when its end
    comes inside a quoted cell, naming where that unfinished record begins."""
    consumed = {"lines": 0, "bytes": 0}

    def lines_of() -> Iterator[str]:
        with path.open("rb") as handle:
            for line in handle:
                consumed["lines"] += 1
                consumed["bytes"] += len(line)
                yield line.decode("utf-8", errors="replace")

    reader = csv.reader(lines_of(), strict=True)
    while True:
        start_line, start_byte = consumed["lines"] + 1, consumed["bytes"]
        try:
            if next(reader, None) is None:
                return
        except csv.Error as exc:
            if "unexpected end of data" not in str(exc):
                return  # a quoting fault pyarrow reads and quarantine judges, not a cut
            raise _error(
                city,
                path,
                f"ends inside a quoted cell: its last record, from line {start_line:,} "
                f"(byte offset {start_byte:,}), is cut off",
                "download the export again; the download stopped before the end of the file",
            ) from None


def _csv_names(city: City, path: Path) -> tuple[ExportSchema, tuple[str, ...]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            titles = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        raise _error(city, path, "is not UTF-8 text", "re-save the file as UTF-8") from None
    except csv.Error as exc:
        raise _error(city, path, f"has an unreadable header ({exc})", "re-download the export") from None
    if not titles:
        raise _error(city, path, "is empty (no header line)", "re-download the export")
    schema, names = mapped_names(city, path, titles)
    for position, name in enumerate(names, start=1):
        if not name:
            # R's write.csv puts its row index first, untitled; it is not a field of the city.
            log.warning("%s: export file %s: column %d has no title; dropped", city.id, path.name, position)
    _check_names(city, path, titles, names)
    return schema, tuple(names)


def _check_names(city: City, path: Path, titles: list[str], names: list[str]) -> None:
    twice = sorted(n for n, count in Counter(n for n in names if n).items() if count > 1)
    if twice:
        clashing = ", ".join(repr(t) for t, n in zip(titles, names, strict=True) if n in twice)
        raise _error(
            city,
            path,
            f"has columns {clashing} that map to the same field ({', '.join(twice)})",
            "re-export the file with one column per field (two titles that differ only in case or "
            "punctuation name the same field)",
        )
    reserved = sorted(set(names) & set(META_COLUMNS))
    if reserved:
        raise _error(
            city,
            path,
            f"has columns named {', '.join(reserved)}, which civic311 reserves",
            f"rename them in the schema's rename of city '{city.id}' in ingestion/cities.yaml",
        )


_SINGER_TYPES = frozenset({"RECORD", "SCHEMA", "STATE", "ACTIVATE_VERSION", "BATCH"})


def _json_lines(export: ExportFile) -> Iterator[dict]:
    with export.path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise _error(
                    export.city,
                    export.path,
                    f"line {number} is not valid JSON ({exc})",
                    "re-download the export",
                ) from None
            if _is_singer_message(record):
                # A Singer tap's output (one message per line): RECORD lines carry the
                # rows; SCHEMA and STATE lines describe the stream and are not rows.
                if record["type"] == "RECORD":
                    yield _object(export, record.get("record"))
                continue
            yield _object(export, record)


def _is_singer_message(record: object) -> bool:
    """A Singer message: its type, and the stream it belongs to (STATE belongs to none)."""
    if not isinstance(record, dict) or record.get("type") not in _SINGER_TYPES:
        return False
    if record["type"] == "STATE":
        return set(record) <= {"type", "value"}
    return "stream" in record and ("record" in record or record["type"] != "RECORD")


def _json_array(export: ExportFile) -> Iterator[dict]:
    """The objects of a top-level JSON array, decoded as the file streams in."""
    decoder = json.JSONDecoder()
    with export.path.open(encoding="utf-8-sig") as handle:
        text, eof = handle.read(_READ_BYTES), False
        at = text.index("[") + 1
        while True:
            at = _skip(text, at, " \t\r\n")
            if at < len(text) and text[at] == "]":
                return
            if at < len(text) and text[at] == ",":
                at = _skip(text, at + 1, " \t\r\n")
            try:
                record, end = decoder.raw_decode(text, at)
            except json.JSONDecodeError as exc:
                if eof or len(text) - at > _MAX_RECORD_BYTES:
                    raise _error(
                        export.city,
                        export.path,
                        f"is not a valid JSON array ({exc})",
                        "re-download the export; it looks truncated",
                    ) from None
                # The record runs past what has been read so far: read on and retry.
                more = handle.read(_READ_BYTES)
                eof = not more
                text, at = text[at:] + more, 0
                continue
            yield _object(export, record)
            at = end


def _skip(text: str, at: int, chars: str) -> int:
    while at < len(text) and text[at] in chars:
        at += 1
    return at


def _object(export: ExportFile, record: object) -> dict:
    if not isinstance(record, dict):
        raise _error(
            export.city,
            export.path,
            f"holds a {type(record).__name__} where a record object was expected",
            "export the dataset as JSON records (an array of objects), as SODA serves them",
        )
    return record


def _records_batch(export: ExportFile, records: list[dict], nulls: frozenset) -> pa.Table:
    """Records as one text batch: nested values as JSON text, like the API adapter keeps them.
    The first batch's keys pick the layout; a later key must belong to it too."""
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    titles = list(keys)
    if export.schema is None:
        export.schema, names = mapped_names(export.city, export.path, titles)
    else:
        columns = [column_name(title) for title in titles]
        unknown = [c for c in columns if decides(c) and c not in export.schema.columns]
        if unknown:
            raise _error(
                export.city,
                export.path,
                f"has records further on with fields the layout {export.schema.name!r} of its first "
                f"records does not have: {', '.join(unknown[:12])}",
                _SCHEMA_FIX.format(city=export.city.id),
            )
        names = [export.schema.field(c) if decides(c) else c for c in columns]
    _check_names(export.city, export.path, titles, names)
    # SODA values are text except a few nested ones (location): only those are
    # converted in Python; pyarrow takes the rest as they are.
    nested = [key for key in titles if not isinstance(_first_value(records, key), str | None)]
    if nested:
        records = [record | {k: json_text(record[k]) for k in nested if k in record} for record in records]
    try:
        table = pa.Table.from_pylist(records, schema=pa.schema([(key, pa.string()) for key in titles]))
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # A number or object further down a text column: convert every value.
        table = pa.table(
            {key: pa.array([json_text(r.get(key)) for r in records], pa.string()) for key in titles}
        )
    kept = [i for i, name in enumerate(names) if name]
    table = table.select(kept).rename_columns([names[i] for i in kept])
    null_values = pa.array(sorted(nulls), pa.string())
    return pa.table(
        {
            name: pc.if_else(pc.is_in(column, null_values), pa.scalar(None, pa.string()), column)
            for name, column in zip(table.column_names, table.columns, strict=True)
        }
    )


def _first_value(records: list[dict], key: str) -> object:
    return next((r[key] for r in records if r.get(key) is not None), None)
