"""Shape a text batch of an export into rows of the export table, column by column.

Everything here is Arrow compute over whole columns: an export of tens of
millions of rows must never meet a Python loop per row. Every timestamp field of
the city (`export.timestamp_fields`) goes through the one timestamp reader
(ingestion/sources/timestamps.py), which writes it the way staging reads it:
"2019-04-18T21:55:45.000" for a wall-clock time, "...Z" for an instant.
`source_updated_at` is the latest of the city's change fields, in UTC.

A column's layout is read from its first values (or declared in the registry as
`export.timestamp_format`). The file is refused, before anything is written,
when a column's layout cannot be read with certainty:
- fewer than 99.9% of its non-empty values parse;
- day and month cannot be told apart (no value above 12 in either place), or
  both orders appear;
- more than 1% of the parsed request times are before 1990, or more than a day
  after the load (a wrong century, a day/month swap, a wrong zone).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.redact import get_logger
from ingestion.registry import City
from ingestion.sources.arrow import key_not_null
from ingestion.sources.exports.files import ExportError, export_spec
from ingestion.sources.timestamps import (
    FAMILY_NAMES,
    ColumnReport,
    Family,
    Reading,
    family_matches,
    latest,
    month_day_evidence,
    read,
)

log = get_logger("civic311.exports")

UTC_MICROS = pa.timestamp("us", tz="UTC")
MIN_PARSED_SHARE = 0.999
MAX_IMPLAUSIBLE_SHARE = 0.01
EARLIEST_REQUEST = datetime(1990, 1, 1, tzinfo=UTC)
# Values a column's layout is decided from.
SAMPLE = 1000
_DECLARED_FAMILY: dict[str, Family] = {
    "iso": "iso",
    "epoch_seconds": "epoch",
    "month_first": "slash",
    "day_first": "slash",
}


class ExportTimestamps:
    """The reading of one file's timestamp fields, kept across its batches."""

    def __init__(self, city: City, path: Path, loaded_at: datetime):
        spec = export_spec(city)
        self.city, self.path = city, path
        self.fields = spec.timestamp_fields
        self.requested_at_field = spec.requested_at_field
        self.declared = spec.timestamp_format
        self.day_first: bool | None = {"month_first": False, "day_first": True}.get(self.declared or "")
        self.families: dict[str, Family] = {}
        self.reports: dict[str, ColumnReport] = {}
        self.requests_parsed = self.requests_too_early = self.requests_too_late = 0
        self.latest_plausible = loaded_at + timedelta(days=1)

    def read_batch(self, fields: Mapping[str, pa.ChunkedArray]) -> dict[str, Reading]:
        """Each timestamp field of the batch read; a field with no value yet is left as it is."""
        present = {name: fields[name].combine_chunks() for name in self.fields if name in fields}
        self._decide(present)
        readings = {}
        for name, values in present.items():
            report = self.reports.setdefault(name, ColumnReport(name))
            family = report.family = self.families.get(name)
            if family is None:
                continue
            reading = read(values, family, self.city.timezone, day_first=bool(self.day_first))
            present_count = pc.sum(reading.present).as_py() or 0
            report.values += present_count
            report.parsed += reading.parsed
            if len(report.examples) < 3 and reading.parsed < present_count:
                unparsed = pc.filter(reading.text, pc.and_(reading.present, pc.is_null(reading.utc)))
                for example in pc.unique(unparsed).to_pylist():
                    if len(report.examples) < 3 and example not in report.examples:
                        report.examples.append(example)
            if name == self.requested_at_field:
                self._count_plausibility(reading.utc)
            readings[name] = reading
        return readings

    def _decide(self, present: dict[str, pa.Array]) -> None:
        """The layout of each column seen with values for the first time, and the file's
        day/month order from every slash-dated column of the batch."""
        for name, values in present.items():
            if name in self.families or values.null_count == len(values):
                continue
            self.families[name] = self._family(name, values)
        slash = [present[n] for n in present if self.families.get(n) == "slash"]
        if slash and self.day_first is None:
            day_first_signs = month_first_signs = 0
            for values in slash:
                first, second = month_day_evidence(values)
                day_first_signs, month_first_signs = day_first_signs + first, month_first_signs + second
            if day_first_signs and month_first_signs:
                raise self.error(
                    "writes its dates both month first and day first (values above 12 in both places)",
                    "re-export the file with one date layout",
                )
            if not (day_first_signs or month_first_signs):
                raise self.error(
                    "has dates whose day and month cannot be told apart (no value above 12 in either "
                    "place, e.g. " + ", ".join(repr(v) for v in _head(slash[0], 3)) + ")",
                    f"declare the layout with export.timestamp_format: month_first (or day_first) for "
                    f"city '{self.city.id}' in ingestion/cities.yaml",
                )
            self.day_first = bool(day_first_signs)

    def _family(self, name: str, values: pa.Array) -> Family:
        if self.declared:
            return _DECLARED_FAMILY[self.declared]
        sample = pc.drop_null(pc.utf8_trim_whitespace(values)).slice(0, SAMPLE)
        counts = family_matches(sample)
        family = max(counts, key=counts.get)
        if counts[family] == 0:
            raise self.error(
                f"has no timestamp of a known layout in column '{name}' (e.g. "
                + ", ".join(repr(v) for v in _head(sample, 3))
                + "; known: "
                + "; ".join(FAMILY_NAMES.values())
                + ")",
                "re-export the column in one of those layouts, or check that the column is mapped to "
                "the right field in the city's export.schemas",
            )
        return family

    def _count_plausibility(self, utc: pa.Array) -> None:
        self.requests_parsed += len(utc) - utc.null_count
        early = pc.less(utc, pa.scalar(EARLIEST_REQUEST, utc.type))
        late = pc.greater(utc, pa.scalar(self.latest_plausible, utc.type))
        self.requests_too_early += pc.sum(early).as_py() or 0
        self.requests_too_late += pc.sum(late).as_py() or 0

    def problems(self) -> list[str]:
        """What makes the file unreadable with certainty, once every batch is read."""
        found = []
        for report in self.reports.values():
            if report.share < MIN_PARSED_SHARE:
                found.append(
                    f"column '{report.name}': {report.parsed:,} of its {report.values:,} values "
                    f"({report.share:.2%}) read as {self._layout(report.name)}, below "
                    f"{MIN_PARSED_SHARE:.1%}; unparsed e.g. " + ", ".join(repr(e) for e in report.examples)
                )
        if self.requests_parsed:
            for count, what in (
                (self.requests_too_early, "before 1990"),
                (self.requests_too_late, "more than a day after the load"),
            ):
                if count / self.requests_parsed > MAX_IMPLAUSIBLE_SHARE:
                    found.append(
                        f"request times ('{self.requested_at_field}'): {count:,} of "
                        f"{self.requests_parsed:,} ({count / self.requests_parsed:.1%}) are {what}, "
                        f"more than {MAX_IMPLAUSIBLE_SHARE:.0%}: a wrong century, a day/month swap or "
                        "a wrong layout"
                    )
        return found

    def _layout(self, name: str) -> str:
        if self.families[name] == "slash":
            return "day/month/year" if self.day_first else "month/day/year"
        return FAMILY_NAMES[self.families[name]]

    def layouts(self) -> dict[str, str]:
        """How each timestamp field was read, for the load's summary."""
        return {
            name: f"{self._layout(name)}: {self.reports[name].parsed:,} of {self.reports[name].values:,}"
            for name in self.families
        }

    def error(self, problem: str, fix: str) -> ExportError:
        return ExportError(f"{self.city.id}: export file {self.path} {problem}. Fix: {fix}.")


def _head(values: pa.Array, count: int) -> list[str]:
    return pc.drop_null(values).slice(0, count).to_pylist()


class BatchShaper:
    """Turns each text batch into (rows to load, records to quarantine)."""

    def __init__(self, city: City, path: Path, loaded_at: datetime):
        spec = export_spec(city)
        self.city = city
        self.id_field = city.source.id_field
        self.updated_at_fields = spec.updated_at_fields
        self.timestamps = ExportTimestamps(city, path, loaded_at)
        self.loaded_at = pa.scalar(loaded_at, UTC_MICROS)
        self.columns: dict[str, None] = {}

    def __call__(self, batch: pa.Table) -> tuple[pa.Table, list[dict]]:
        size = batch.num_rows
        fields: dict[str, pa.ChunkedArray | pa.Array] = dict(
            zip(batch.schema.names, batch.columns, strict=True)
        )
        readings = self.timestamps.read_batch(fields)
        for name, reading in readings.items():
            fields[name] = reading.text
        changed = [readings[name].utc for name in self.updated_at_fields if name in readings]
        if not changed and not self.columns:
            log.warning(
                "%s: the export has none of the change fields %s; source_updated_at stays null",
                self.city.id,
                ", ".join(self.updated_at_fields),
            )
        self.columns.update(dict.fromkeys(fields))
        ids = fields.get(self.id_field, pa.nulls(size, pa.string()))
        table = pa.Table.from_pydict(
            {
                "city_id": pa.repeat(pa.scalar(self.city.id), size),
                "source_id": ids,
                "source_updated_at": latest(changed, size),
                "_loaded_at": pa.repeat(self.loaded_at, size),
                **fields,
            }
        )
        missing = pc.fill_null(pc.or_kleene(pc.is_null(ids), pc.equal(ids, "")), True)
        rejected: list[dict] = []
        if pc.any(missing).as_py():
            rejected = [
                {k: v for k, v in row.items() if v is not None}
                for row in pa.Table.from_pydict(fields).filter(missing).to_pylist()
            ]
            table = table.filter(pc.invert(missing))
        return key_not_null(table), rejected

    def finish(self) -> None:
        """Refuse the file, before dlt loads a row of it, if a timestamp was not read with certainty."""
        problems = self.timestamps.problems()
        if problems:
            raise self.timestamps.error(
                "cannot be loaded with certainty: " + "; ".join(problems),
                "re-export the columns in one layout, or declare it with export.timestamp_format "
                f"(iso, month_first, day_first, epoch_seconds) for city '{self.city.id}' in "
                "ingestion/cities.yaml; nothing was loaded",
            )
