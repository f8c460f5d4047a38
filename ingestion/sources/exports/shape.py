"""Shape a text batch of an export into rows of the export table, column by column.

Everything here is Arrow compute over whole columns: an export of tens of
millions of rows must never meet a Python loop per row. Timestamps in the
portal's layout ("04/18/2019 09:55:45 PM") are rewritten to the API's floating
ISO form ("2019-04-18T21:55:45.000"), so a field reads the same whichever way
it arrived; `source_updated_at` is the latest of the city's change fields, read
as local time in the city's zone and stored in UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.registry import City
from ingestion.sources.arrow import key_not_null
from ingestion.sources.exports.files import export_spec

log = logging.getLogger("civic311.exports")

ISO_LAYOUT = "%Y-%m-%dT%H:%M:%S"
_ISO_WIDTH = 19  # "2019-04-18T21:55:45"
_MILLIS = np.frombuffer(b".000", dtype=np.uint8)
_SAMPLE = 100
UTC_MICROS = pa.timestamp("us", tz="UTC")


class TimestampColumns:
    """Which columns hold the export's timestamp layout, decided once per column
    from its first values (a column with no value yet stays undecided); in those,
    each value that parses is rewritten and any other is kept as it is."""

    def __init__(self, layout: str):
        self.layout = layout
        self.is_timestamp: dict[str, bool] = {}

    def rewrite(self, name: str, column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
        """The column with every value in the layout rewritten to ISO (others kept
        as they are), and the parsed moments; (column, None) for other columns."""
        decided = self.is_timestamp.get(name)
        if decided is None:
            decided = self._decide(name, column)
        if not decided:
            return column, None
        # Chunk by chunk: the numpy rewrite needs each chunk's own buffers.
        parsed = [pc.strptime(c, format=self.layout, unit="s", error_is_null=True) for c in column.chunks]
        iso = [_with_iso(c, m) for c, m in zip(column.chunks, parsed, strict=True)]
        moments = pa.chunked_array(parsed, pa.timestamp("s"))
        return pa.chunked_array(iso, pa.string()), moments

    def _decide(self, name: str, column: pa.ChunkedArray) -> bool | None:
        if column.null_count == len(column):
            return None
        head = pc.drop_null(column.slice(0, 10 * _SAMPLE))
        sample = (head if len(head) else pc.drop_null(column)).slice(0, _SAMPLE)
        parsed = pc.strptime(sample, format=self.layout, unit="s", error_is_null=True)
        # Most values, not all: a stray placeholder ("N/A") must not keep a whole
        # column of dates in the export's layout.
        self.is_timestamp[name] = parsed.null_count < len(sample) / 2
        return self.is_timestamp[name]


def _with_iso(column: pa.Array, moments: pa.Array) -> pa.Array:
    iso = iso_text(moments)
    if moments.null_count == column.null_count:
        # Every value parsed: the ISO text takes the moments' validity as is.
        if moments.offset == 0:
            return pa.StringArray.from_buffers(
                len(iso), iso.buffers()[1], iso.buffers()[2], moments.buffers()[0], moments.null_count
            )
        return pc.if_else(pc.is_valid(moments), iso, pa.scalar(None, pa.string()))
    return pc.if_else(pc.is_valid(moments), iso, column)


def iso_text(moments: pa.Array) -> pa.StringArray:
    """Second-precision timestamps as "YYYY-MM-DDTHH:MM:SS.000" (null slots hold a
    placeholder). Arrow's cast prints "YYYY-MM-DD HH:MM:SS"; the fixed-width bytes
    are patched in one numpy pass, several times faster than pc.strftime."""
    size = len(moments)
    if moments.null_count:
        moments = pc.fill_null(moments, pa.scalar(0, moments.type))
    text = pc.cast(moments, pa.string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=size + 1, offset=4 * text.offset)
    start = int(offsets[0]) if size else 0
    if size == 0 or int(offsets[-1]) - start != _ISO_WIDTH * size:
        # A year outside 0000-9999 breaks the fixed width; take the general route.
        spaced = pc.utf8_replace_slice(text, 10, 11, "T")
        return pc.binary_join_element_wise(spaced, pa.scalar(".000"), pa.scalar(""))
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8, count=_ISO_WIDTH * size, offset=start)
    out = np.empty((size, _ISO_WIDTH + 4), dtype=np.uint8)
    out[:, :_ISO_WIDTH] = data.reshape(size, _ISO_WIDTH)
    out[:, 10] = ord("T")
    out[:, _ISO_WIDTH:] = _MILLIS
    new_offsets = np.arange(0, (_ISO_WIDTH + 4) * (size + 1), _ISO_WIDTH + 4, dtype=np.int32)
    return pa.StringArray.from_buffers(size, pa.py_buffer(new_offsets), pa.py_buffer(out))


def parse_iso(column: pa.Array) -> pa.Array:
    """Floating ISO text ("2023-11-28T01:31:07.000") as second-precision timestamps."""
    return pc.strptime(
        pc.utf8_slice_codeunits(column, 0, _ISO_WIDTH), format=ISO_LAYOUT, unit="s", error_is_null=True
    )


def latest_utc(moments: Iterable[pa.Array], size: int, timezone: str) -> pa.Array:
    """The latest of several floating local times per row, as a UTC instant.

    A wall time that happens twice (the autumn DST change) takes its first
    occurrence; one that never happens (spring) the last instant before the gap.
    No row is rejected for its clock.
    """
    moments = list(moments)
    if not moments:
        return pa.nulls(size, UTC_MICROS)
    latest = pc.max_element_wise(*moments, skip_nulls=True) if len(moments) > 1 else moments[0]
    zoned = pc.assume_timezone(latest, timezone=timezone, ambiguous="earliest", nonexistent="earliest")
    return pc.cast(zoned, UTC_MICROS)


class BatchShaper:
    """Turns each text batch into (rows to load, records to quarantine)."""

    def __init__(self, city: City, loaded_at: datetime):
        spec = export_spec(city)
        self.city = city
        self.id_field = city.source.id_field
        self.updated_at_fields = spec.updated_at_fields
        self.timestamps = TimestampColumns(spec.timestamp_format)
        self.loaded_at = pa.scalar(loaded_at, UTC_MICROS)
        self.columns: dict[str, None] = {}

    def __call__(self, batch: pa.Table) -> tuple[pa.Table, list[dict]]:
        size = batch.num_rows
        fields: dict[str, pa.ChunkedArray] = {}
        moments: dict[str, pa.ChunkedArray] = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            fields[name], parsed = self.timestamps.rewrite(name, column)
            if parsed is not None:
                moments[name] = parsed
        changed = [
            moments[name] if name in moments else parse_iso(fields[name])
            for name in self.updated_at_fields
            if name in fields
        ]
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
                "source_updated_at": latest_utc(changed, size, self.city.timezone),
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
