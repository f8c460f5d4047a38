"""Turn 311 files on disk into the records a Socrata SODA endpoint would serve."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ingestion.sources.exports.schemas import column_name

SYSTEM_FIELDS = (":id", ":created_at", ":updated_at")
DEFAULT_UPDATED_AT_FIELDS = ("resolution_action_updated_date", "closed_date", "created_date")
DEFAULT_CREATED_FIELD = "created_date"
EPOCH_STAMP = "1970-01-01T00:00:00.000Z"
SYSTEM_STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.000Z"

# Real 311 extracts use 1900-01-01 as an "unknown" placeholder; such a value must never
# decide when a record was last touched.
_PLACEHOLDER_CUTOFF = datetime(1990, 1, 1)

# Strict shape check first: datetime.fromisoformat alone would also accept "20160620",
# turning eight-digit ids into dates.
_ISO_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_US_STAMP = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([AP])M")


def api_field_name(display: str) -> str:
    """Map a portal export column title to the field name the SODA API uses (the export
    loader's own reduction, so the replay and the loader always agree)."""
    return column_name(display)


def parse_timestamp(value: Any) -> datetime | None:
    """Parse a SODA-style ISO timestamp as a naive datetime, or return None."""
    if not isinstance(value, str) or not _ISO_SHAPE.fullmatch(value):
        return None
    try:
        # Socrata floating timestamps carry no zone; an offset or Z is dropped, not applied.
        moment = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        return None
    return moment if moment.tzinfo is None else moment.replace(tzinfo=None)


def system_stamp(moment: datetime | None) -> str:
    """Format as SYSTEM_STAMP_FORMAT; isoformat is several times faster than strftime."""
    if moment is None:
        return EPOCH_STAMP
    return moment.isoformat(timespec="seconds") + ".000Z"


def load_records(path: Path) -> list[dict]:
    """Read a SODA JSON array (.json) or a portal CSV export (.csv)."""
    return list(iter_records(path))


def iter_records(path: Path) -> Iterator[dict]:
    """`load_records` one record at a time, so a large file is never all in memory as dicts."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _iter_json(path)
    if suffix == ".csv":
        return _iter_csv(path)
    raise ValueError(f"{path}: expected a .json SODA array or a .csv portal export")


def _load_json(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{path}: expected a JSON array of objects, as SODA returns")
    return data


def _iter_json(path: Path) -> Iterator[dict]:
    """The objects of a JSON array, parsed one at a time by the json module's own decoder.

    Anything but an array of objects is read again whole by `_load_json`, which names
    what is wrong; the records already yielded are not yielded twice.
    """
    yielded = 0
    try:
        for record in _JsonArray(path):
            yield record
            yielded += 1
    except (_NotAnArrayOfObjects, json.JSONDecodeError, UnicodeDecodeError):
        yield from _load_json(path)[yielded:]


class _NotAnArrayOfObjects(Exception):
    """The file is JSON, but not an array of objects: `_load_json` says what it is."""


class _JsonArray:
    """Iterate over a file holding a JSON array of objects, a chunk of text at a time."""

    _CHUNK_CHARACTERS = 1 << 22
    _WHITESPACE = re.compile(r"[ \t\n\r]*")  # what the json module skips

    def __init__(self, path: Path) -> None:
        self.path = path
        self.decoder = json.JSONDecoder()
        self.text: io.TextIOWrapper | None = None
        self.buffer = ""
        self.position = 0

    def __iter__(self) -> Iterator[dict]:
        with self.path.open("rb") as raw:
            # As json.loads decodes bytes: UTF-8, -16 or -32, a byte-order mark allowed.
            encoding = json.detect_encoding(raw.read(4))
            raw.seek(0)
            self.text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogatepass")
            if self._next_character() != "[":
                raise _NotAnArrayOfObjects
            self.position += 1
            if self._next_character() == "]":
                self.position += 1
            else:
                while True:
                    if self._next_character() != "{":
                        raise _NotAnArrayOfObjects
                    yield self._object()
                    separator = self._next_character()
                    self.position += 1
                    if separator == "]":
                        break
                    if separator != ",":
                        raise _NotAnArrayOfObjects
            if self._next_character() != "":
                raise _NotAnArrayOfObjects

    def _read_more(self) -> bool:
        # At least as much as is left: an object longer than a chunk costs O(its size).
        chunk = self.text.read(max(self._CHUNK_CHARACTERS, len(self.buffer) - self.position))
        if not chunk:
            return False
        self.buffer = self.buffer[self.position :] + chunk
        self.position = 0
        return True

    def _next_character(self) -> str:
        """The next character after whitespace, not consumed; "" at the end of the file."""
        while True:
            self.position = self._WHITESPACE.match(self.buffer, self.position).end()
            if self.position < len(self.buffer):
                return self.buffer[self.position]
            if not self._read_more():
                return ""

    def _object(self) -> dict:
        while True:
            try:
                # An object ends with "}", so a decoded one cannot continue in the next chunk.
                record, self.position = self.decoder.raw_decode(self.buffer, self.position)
                return record
            except json.JSONDecodeError:
                if not self._read_more():
                    raise


def _iter_csv(path: Path) -> Iterator[dict]:
    # utf-8-sig: some portal exports start with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        names = _field_names(path, header)
        for row in reader:
            if not row:
                continue
            if len(row) != len(names):
                raise ValueError(
                    f"{path}: line {reader.line_num} has {len(row)} cells, the header has {len(names)}"
                )
            # SODA omits null fields, and an empty export cell is a null.
            yield {name: _csv_value(cell) for name, cell in zip(names, row, strict=True) if cell}


def _field_names(path: Path, header: Sequence[str]) -> list[str]:
    names = [api_field_name(title) for title in header]
    if "" in names:
        raise ValueError(f"{path}: column {names.index('') + 1} has no usable name")
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise ValueError(f"{path}: columns map to the same API name: {', '.join(dupes)}")
    return names


def _csv_value(cell: str) -> str:
    # Cheap pre-check keeps large exports fast: only "MM/DD/YYYY ..." cells reach the regex.
    if len(cell) != 22 or cell[2] != "/":
        return cell
    match = _US_STAMP.fullmatch(cell)
    if match is None:
        return cell
    month, day, year, hour, minute, second, half = match.groups()
    hour12 = int(hour)
    if not 1 <= hour12 <= 12:
        return cell
    hour24 = hour12 % 12 + (12 if half == "P" else 0)
    try:
        moment = datetime(int(year), int(month), int(day), hour24, int(minute), int(second))
    except ValueError:
        return cell
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000")


def new_row_id(dataset_id: str, key: Any, taken: set[str], salt: int = 0) -> str:
    """A stable Socrata-looking :id, added to `taken`.

    Duplicate keys are salted with the row's position rather than a retry counter, so a
    key repeated n times costs O(n) hashes instead of O(n^2).
    """
    base = f"{dataset_id}|{'' if key is None else key}"
    seed, attempt = base, 0
    while True:
        digest = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        row_id = f"row-{digest[0:4]}.{digest[4:8]}-{digest[8:12]}"
        if row_id not in taken:
            taken.add(row_id)
            return row_id
        attempt += 1
        seed = f"{base}|{salt}" if attempt == 1 else f"{base}|{salt}|{attempt}"


def derive_created_at(record: dict, created_field: str) -> str:
    return system_stamp(parse_timestamp(record.get(created_field)))


def derive_updated_at(record: dict, updated_at_fields: Iterable[str]) -> str:
    moments = [parse_timestamp(record.get(name)) for name in updated_at_fields]
    real = [m for m in moments if m is not None and m >= _PLACEHOLDER_CUTOFF]
    return system_stamp(max(real)) if real else EPOCH_STAMP


def with_system_fields(
    records: Iterable[dict],
    dataset_id: str,
    id_field: str = "unique_key",
    updated_at_fields: Sequence[str] = DEFAULT_UPDATED_AT_FIELDS,
    created_field: str = DEFAULT_CREATED_FIELD,
) -> list[dict]:
    """Copy records, filling :id/:created_at/:updated_at the way Socrata would have."""
    records = list(records)
    taken = {r[":id"] for r in records if ":id" in r}
    rows = []
    for position, record in enumerate(records):
        row = dict(record)
        if ":id" not in row:
            row[":id"] = new_row_id(dataset_id, row.get(id_field), taken, position)
        if ":created_at" not in row:
            row[":created_at"] = derive_created_at(row, created_field)
        if ":updated_at" not in row:
            row[":updated_at"] = derive_updated_at(row, updated_at_fields)
        rows.append(row)
    return rows
