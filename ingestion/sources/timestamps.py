"""Timestamps as feeds and exports send them: one reader for every adapter and export.

Three families of text are read, each with certainty or not at all:

- `iso`: ISO 8601. With `Z`, `UTC` or an offset ("2016-07-13 15:11:07+00:00") it is an
  instant and is only converted to UTC. Without one ("2019-04-18T21:55:45.000",
  "2022-01-01 00:13:00", "2019-04-18") it is a wall-clock time on the city's clock.
- `slash`: "04/18/2019 09:55:45 PM", "1/1/20 0:05", "4/18/2019": month and day
  in the order the file shows (`month_first` or `day_first`), a 12-hour clock
  with AM/PM or a 24-hour one, four-digit years or two-digit ones (00-68 are
  2000-2068, 69-99 are 1969-1999, as strptime's %y). Wall-clock time.
- `epoch`: whole seconds since 1970-01-01 UTC, nine or ten digits ("1563480000").

Fractions below a millisecond are dropped. Every component is checked (no 30 February,
no 25 o'clock): a value that is not a real moment is unparsed, never rolled
over. A wall-clock time becomes an instant with the staging rule (the
`local_to_utc` macro, DuckDB's): one that occurs twice (the fall-back hour) is
its second, standard-time occurrence; one that never occurs (the spring-forward
hour) takes the offset in force before the jump. So a change stamp computed
here and the times staging computes for the same request always agree.

Values are normalised to text staging reads without guessing:
"YYYY-MM-DDTHH:MM:SS.000" for a wall-clock time, the same with a trailing "Z"
for an instant (UTC).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.redact import RedactedError

Family = Literal["iso", "slash", "epoch"]
# What a registry may declare instead of letting the data decide (export.timestamp_format).
Declared = Literal["iso", "month_first", "day_first", "epoch_seconds"]

UTC_MILLIS = pa.timestamp("ms", tz="UTC")
WALL_MILLIS = pa.timestamp("ms")
_ISO_WIDTH = 23  # "2019-04-18T21:55:45.000"

# RE2 patterns (pyarrow's), whole value, after trimming whitespace.
_PATTERNS: dict[Family, str] = {
    "iso": (
        r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
        r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
        r" ?(?P<zone>[Zz]|UTC|[+-]\d{2}(?::?\d{2})?)?)?$"
    ),
    "slash": (
        r"^(?P<first>\d{1,2})/(?P<second_part>\d{1,2})/(?P<year>\d{4}|\d{2})"
        r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
        r" ?(?P<half>[AaPp]\.?[Mm]\.?)?)?$"
    ),
    "epoch": r"^(?P<seconds>\d{9,10})(?:\.(?P<fraction>\d+))?$",
}
FAMILY_NAMES = {
    "iso": "ISO 8601 (with or without an offset)",
    "slash": "M/D/Y or D/M/Y with a 12- or 24-hour clock",
    "epoch": "epoch seconds",
}
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


class TimestampError(RedactedError, ValueError):
    """The day and month of a column cannot be told apart, or the file mixes both orders."""


@dataclass(frozen=True)
class Reading:
    """One column read: the normalised text (unparsed values kept as they came), the
    instant of each parsed value in UTC, and which values were not empty."""

    text: pa.Array
    utc: pa.Array
    present: pa.Array

    @property
    def parsed(self) -> int:
        return len(self.utc) - self.utc.null_count


@dataclass(frozen=True)
class _FixedWidth:
    """One fixed-width spelling of a family, read straight from the bytes: the layout
    nearly every value of a real export has. The regex reads everything else."""

    width: int
    fields: dict[str, tuple[int, int]]  # name -> (first byte, digits)
    literals: dict[int, bytes]  # byte position -> the characters allowed there
    half: int | None = None  # where the A or P of AM/PM stands


_CLOCK = {"hour": (11, 2), "minute": (14, 2), "second": (17, 2)}
_FIXED_WIDTHS: dict[Family, tuple[_FixedWidth, ...]] = {
    # "04/18/2019 09:55:45 PM": the portal exports of NYC, LA and SF
    "slash": (
        _FixedWidth(
            22,
            {"first": (0, 2), "second_part": (3, 2), "year": (6, 4), **_CLOCK},
            {2: b"/", 5: b"/", 10: b" ", 13: b":", 16: b":", 19: b" ", 20: b"AaPp", 21: b"Mm"},
            half=20,
        ),
    ),
    # "2019-04-18T21:55:45.000" (Socrata) and "2022-01-01 00:13:00" (CKAN)
    "iso": (
        _FixedWidth(
            23,
            {"year": (0, 4), "month": (5, 2), "day": (8, 2), **_CLOCK, "fraction": (20, 3)},
            {4: b"-", 7: b"-", 10: b"T ", 13: b":", 16: b":", 19: b"."},
        ),
        _FixedWidth(
            19,
            {"year": (0, 4), "month": (5, 2), "day": (8, 2), **_CLOCK},
            {4: b"-", 7: b"-", 10: b"T ", 13: b":", 16: b":"},
        ),
    ),
}


def _fixed_width(values: pa.StringArray, family: Family, day_first: bool) -> tuple[np.ndarray, ...]:
    """(milliseconds, valid, handled) of the values in one of the family's fixed-width
    spellings; `handled` is false for every other value, which the regex then reads."""
    size = len(values)
    millis, valid, handled = np.zeros(size, np.int64), np.zeros(size, bool), np.zeros(size, bool)
    if size == 0 or values.buffers()[2] is None:
        return millis, valid, handled
    offsets = np.frombuffer(values.buffers()[1], np.int32, count=size + 1, offset=4 * values.offset)
    data = np.frombuffer(values.buffers()[2], np.uint8)
    lengths = np.diff(offsets)
    present = pc.is_valid(values).to_numpy(zero_copy_only=False)
    for layout in _FIXED_WIDTHS.get(family, ()):
        rows = np.nonzero(present & (lengths == layout.width))[0]
        if not len(rows):
            continue
        chars = _rows_of_bytes(data, offsets, lengths, rows, layout.width)
        fits = np.ones(len(rows), bool)
        for position, allowed in layout.literals.items():
            column = chars[:, position]
            fits &= np.logical_or.reduce([column == byte for byte in allowed])
        numbers = {}
        for name, (start, count) in layout.fields.items():
            # A byte below "0" wraps round to above 9: one comparison tells a digit.
            digits = chars[:, start : start + count] - np.uint8(48)
            fits &= (digits <= 9).all(axis=1)
            numbers[name] = digits.astype(np.int64) @ (10 ** np.arange(count - 1, -1, -1))
        fraction = numbers.pop("fraction", np.zeros(len(rows), np.int64))
        hour = numbers["hour"]
        ok = np.ones(len(rows), bool)
        if family == "slash":
            first, second = numbers["first"], numbers["second_part"]
            month, day = (second, first) if day_first else (first, second)
            afternoon = (chars[:, layout.half] | np.uint8(32)) == ord("p")
            ok = (hour >= 1) & (hour <= 12)
            hour = hour % 12 + np.where(afternoon, 12, 0)
        else:
            month, day = numbers["month"], numbers["day"]
        year, minute, second = numbers["year"], numbers["minute"], numbers["second"]
        ok &= _valid_date(year, month, day) & (hour <= 23) & (minute <= 59) & (second <= 59)
        seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        taken = rows[fits]
        millis[taken] = (seconds * 1000 + fraction)[fits]
        valid[taken] = ok[fits]
        handled[taken] = True
    return millis, valid, handled


def _rows_of_bytes(data: np.ndarray, offsets, lengths, rows: np.ndarray, width: int) -> np.ndarray:
    """The bytes of `rows` (all `width` long) as a (rows, width) matrix. When every other
    value is empty (a null or ""), the rows lie end to end in the buffer: a view, no copy."""
    start, end = int(offsets[rows[0]]), int(offsets[rows[-1]]) + width
    if end - start == len(rows) * width:
        return data[start:end].reshape(len(rows), width)
    return data[offsets[rows][:, None] + np.arange(width, dtype=np.int32)]


def _trimmed(values: pa.Array) -> pa.Array:
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _parts(values: pa.Array, family: Family) -> pa.StructArray:
    return pc.extract_regex(values, pattern=_PATTERNS[family])


def _number(parts: pa.StructArray, name: str, default: int) -> np.ndarray:
    """One captured group as integers (`default` where it did not take part or the row
    did not match)."""
    text = parts.field(name)
    text = pc.if_else(pc.or_kleene(pc.is_null(text), pc.equal(text, "")), str(default), text)
    return pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False)


def _millis(parts: pa.StructArray) -> np.ndarray:
    """The fraction of a second, in whole milliseconds ("4" is 400, "123456" is 123)."""
    fraction = parts.field("fraction")
    fraction = pc.if_else(pc.is_null(fraction), "", fraction)
    padded = pc.utf8_rpad(pc.utf8_slice_codeunits(fraction, 0, 3), width=3, padding="0")
    return pc.cast(padded, pa.int64()).to_numpy(zero_copy_only=False)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _valid_date(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    safe_month = np.clip(month, 0, 12)
    last = _DAYS_IN_MONTH[safe_month] + ((safe_month == 2) & leap)
    return (month >= 1) & (month <= 12) & (day >= 1) & (day <= last)


def _milliseconds(parts: pa.StructArray, year, month, day, hour) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds since the epoch of a checked date and time, and whether it is one."""
    minute, second = _number(parts, "minute", 0), _number(parts, "second", 0)
    valid = _valid_date(year, month, day) & (hour <= 23) & (minute <= 59) & (second <= 59)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return seconds * 1000 + _millis(parts), valid


def _iso(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(milliseconds, valid, is_instant) of ISO 8601 text."""
    parts = _parts(values, "iso")
    matched = pc.is_valid(parts).to_numpy(zero_copy_only=False)
    millis, valid = _milliseconds(
        parts,
        _number(parts, "year", 1970),
        _number(parts, "month", 1),
        _number(parts, "day", 1),
        _number(parts, "hour", 0),
    )
    zone = parts.field("zone")
    # "UTC" as BigQuery's CSV export writes it is the same instant as "Z".
    zone = pc.if_else(pc.is_null(zone), "", pc.replace_substring(zone, "UTC", "Z"))
    is_instant = pc.not_equal(zone, "").to_numpy(zero_copy_only=False)
    # "+05", "+0530", "+05:30" or "Z": the offset in seconds east of UTC.
    digits = pc.replace_substring(pc.utf8_slice_codeunits(zone, 1), ":", "")
    hours, minutes = (
        pc.cast(pc.if_else(pc.equal(part, ""), "0", part), pa.int64()).to_numpy(zero_copy_only=False)
        for part in (pc.utf8_slice_codeunits(digits, 0, 2), pc.utf8_slice_codeunits(digits, 2, 4))
    )
    sign = np.where(pc.starts_with(zone, "-").to_numpy(zero_copy_only=False), -1, 1)
    valid &= (hours <= 14) & (minutes <= 59)
    offset = sign * (hours * 3600 + minutes * 60) * 1000
    return millis - offset, matched & valid, is_instant


def _slash(values: pa.Array, day_first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(milliseconds, valid, is_instant) of M/D/Y or D/M/Y text: always wall-clock times."""
    parts = _parts(values, "slash")
    matched = pc.is_valid(parts).to_numpy(zero_copy_only=False)
    first, second_part = _number(parts, "first", 1), _number(parts, "second_part", 1)
    month, day = (second_part, first) if day_first else (first, second_part)
    year_text = parts.field("year")
    year = _number(parts, "year", 1970)
    two_digits = pc.equal(pc.utf8_length(pc.if_else(pc.is_null(year_text), "", year_text)), 2)
    two_digits = two_digits.to_numpy(zero_copy_only=False)
    year = np.where(two_digits, np.where(year < 69, 2000 + year, 1900 + year), year)
    hour = _number(parts, "hour", 0)
    half = parts.field("half")
    half = pc.utf8_lower(pc.if_else(pc.is_null(half), "", half))
    has_half = pc.not_equal(half, "").to_numpy(zero_copy_only=False)
    afternoon = pc.starts_with(half, "p").to_numpy(zero_copy_only=False)
    twelve_hour_ok = (hour >= 1) & (hour <= 12)
    hour = np.where(has_half, hour % 12 + np.where(afternoon, 12, 0), hour)
    millis, valid = _milliseconds(parts, year, month, day, hour)
    valid &= np.where(has_half, twelve_hour_ok, True)
    return millis, matched & valid, np.zeros(len(values), dtype=bool)


def _epoch(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = _parts(values, "epoch")
    matched = pc.is_valid(parts).to_numpy(zero_copy_only=False)
    return _number(parts, "seconds", 0) * 1000 + _millis(parts), matched, np.ones(len(values), dtype=bool)


def wall_to_utc(wall: pa.Array, timezone: str) -> pa.Array:
    """Wall-clock times (timestamp[ms]) on `timezone`'s clock as UTC instants, with the
    staging rule: the repeated fall-back hour is read as its second occurrence, a time in
    the spring-forward gap with the offset in force before the jump."""
    first_try = pc.assume_timezone(wall, timezone=timezone, ambiguous="latest", nonexistent="earliest")
    # A gap time comes back as the last instant before the gap, whose offset is the one
    # in force before the jump: apply that offset to the wall time itself.
    offset = pc.subtract(pc.local_timestamp(first_try), pc.cast(first_try, WALL_MILLIS))
    return pc.cast(pc.subtract(wall, offset), WALL_MILLIS).cast(pa.int64()).cast(UTC_MILLIS)


def _iso_text(moments: pa.Array) -> pa.StringArray:
    """Millisecond timestamps as "YYYY-MM-DDTHH:MM:SS.mmm" (null slots hold a placeholder).
    Arrow's cast prints "YYYY-MM-DD HH:MM:SS.mmm"; the fixed-width bytes get their "T" in
    one numpy pass, several times faster than pc.strftime."""
    size = len(moments)
    if moments.null_count:
        moments = pc.fill_null(moments, pa.scalar(0, moments.type))
    text = pc.cast(moments, pa.string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=size + 1, offset=4 * text.offset)
    start = int(offsets[0]) if size else 0
    if size == 0 or int(offsets[-1]) - start != _ISO_WIDTH * size:
        # A year outside 0000-9999 breaks the fixed width; take the general route.
        return pc.utf8_replace_slice(text, 10, 11, "T")
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8, count=_ISO_WIDTH * size, offset=start).copy()
    data.reshape(size, _ISO_WIDTH)[:, 10] = ord("T")
    new_offsets = np.arange(0, _ISO_WIDTH * (size + 1), _ISO_WIDTH, dtype=np.int32)
    return pa.StringArray.from_buffers(size, pa.py_buffer(new_offsets), pa.py_buffer(data))


def family_matches(values: pa.Array) -> dict[Family, int]:
    """How many of the (trimmed, non-null) values have each family's shape."""
    return {
        family: pc.sum(pc.match_substring_regex(values, _PATTERNS[family])).as_py() or 0
        for family in _PATTERNS
    }


def read(values: pa.Array, family: Family, timezone: str, day_first: bool = False) -> Reading:
    """Read `values` (text) as `family`. Unparsed values keep their text; their UTC slot is null.
    The fixed-width spellings of real exports are read from the bytes; the regex takes the rest."""
    text = values.cast(pa.string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    millis, valid, handled = _fixed_width(text, family, day_first)
    is_instant = np.zeros(len(text), bool) if family != "epoch" else np.ones(len(text), bool)
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    rest = np.nonzero(present & ~handled)[0]
    if len(rest):
        others = _trimmed(text.take(pa.array(rest)))
        readers = {"iso": _iso, "epoch": _epoch}
        found = _slash(others, day_first) if family == "slash" else readers[family](others)
        millis[rest], valid[rest], is_instant[rest] = found
        # A value of only spaces is as absent as an empty one.
        present[rest] = pc.is_valid(others).to_numpy(zero_copy_only=False)
    valid &= present
    mask = pa.array(~valid)
    moments = pa.array(np.where(valid, millis, 0), pa.int64()).cast(WALL_MILLIS)
    moments = pc.if_else(mask, pa.scalar(None, WALL_MILLIS), moments)
    instant = pa.array(is_instant)
    wall_utc = (
        wall_to_utc(moments, timezone) if not is_instant.all() else moments.cast(pa.int64()).cast(UTC_MILLIS)
    )
    utc = pc.if_else(instant, moments.cast(pa.int64()).cast(UTC_MILLIS), wall_utc)
    iso = _iso_text(moments)
    iso = pc.if_else(instant, pc.binary_join_element_wise(iso, "Z", ""), iso)
    normalised = pc.if_else(mask, text, iso)
    return Reading(text=normalised, utc=utc, present=pa.array(present))


def month_day_evidence(values: pa.Array) -> tuple[int, int]:
    """(values whose first number can only be a day, values whose second can only be a
    day) among slash-shaped values: a number above 12 is no month."""
    parts = _parts(_trimmed(values), "slash")
    first, second = _number(parts, "first", 0), _number(parts, "second_part", 0)
    return int((first > 12).sum()), int((second > 12).sum())


def read_instants(values: Sequence[object], tz: tzinfo | str = UTC) -> list[datetime | None]:
    """ISO 8601 values (the form every API's change stamp takes) as aware UTC datetimes;
    None for a value that is absent or not a timestamp. A value without an offset is on
    `tz`'s clock. A page of records at a time: the vectorised reader."""
    return read_instant_array(values, tz).to_pylist()


def read_instant_array(values: Sequence[object], tz: tzinfo | str = UTC) -> pa.Array:
    """`read_instants` as an Arrow timestamp array (UTC), for a page that stays in Arrow."""
    zone = tz if isinstance(tz, str) else getattr(tz, "key", "UTC")
    texts = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
    return read(texts, "iso", zone).utc


_ISO_VALUE = re.compile(_PATTERNS["iso"])


def parse_instant(value: object, tz: tzinfo = UTC) -> datetime | None:
    """One ISO 8601 value as an aware UTC datetime, by the same pattern and rule as
    `read` (a unit test holds the two to the same answers); for one value at a time,
    where building an Arrow array would cost more than the parse."""
    found = _ISO_VALUE.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        return None
    part = found.groupdict()
    try:
        moment = datetime(
            int(part["year"]),
            int(part["month"]),
            int(part["day"]),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            int((part["fraction"] or "")[:3].ljust(3, "0")) * 1000,
        )
    except ValueError:
        return None
    zone = "Z" if part["zone"] == "UTC" else part["zone"]
    if zone:
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2] or 0), int(digits[2:4] or 0)
        if hours > 14 or minutes > 59:
            return None
        east = timedelta(hours=hours, minutes=minutes) * (-1 if zone.startswith("-") else 1)
        return moment.replace(tzinfo=UTC) - east
    first, second = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset() and _exists(first, tz):
        return second.astimezone(UTC)
    return first.astimezone(UTC)


def _exists(moment: datetime, tz: tzinfo) -> bool:
    """Whether the wall-clock time occurs at all (a time in the spring-forward gap does not)."""
    back = moment.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None, fold=0) == moment.replace(tzinfo=None, fold=0)


def latest(instants: Iterable[pa.Array], size: int) -> pa.Array:
    """The latest of several UTC instant columns per row, as timestamp[us, UTC]."""
    found = list(instants)
    if not found:
        return pa.nulls(size, pa.timestamp("us", tz="UTC"))
    # max_element_wise has no kernel for zoned timestamps: compare epoch milliseconds.
    millis = [pc.cast(column, UTC_MILLIS).cast(pa.int64()) for column in found]
    newest = pc.max_element_wise(*millis, skip_nulls=True) if len(millis) > 1 else millis[0]
    return newest.cast(UTC_MILLIS).cast(pa.timestamp("us", tz="UTC"))


@dataclass
class ColumnReport:
    """What reading one column found, over the whole file."""

    name: str
    family: Family | None = None
    values: int = 0
    parsed: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.parsed / self.values if self.values else 1.0


__all__ = [
    "FAMILY_NAMES",
    "ColumnReport",
    "Declared",
    "Family",
    "Reading",
    "TimestampError",
    "family_matches",
    "latest",
    "month_day_evidence",
    "parse_instant",
    "read",
    "read_instant_array",
    "read_instants",
    "wall_to_utc",
]
