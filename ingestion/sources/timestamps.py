"""Timestamps as the feeds send them, as UTC instants: one rule for every adapter.

A value with an offset ("2014-05-09T19:02:21-05:00", Socrata's "...Z") is an
instant and is only converted. A value without one is a wall-clock time on the
city's clock: one that occurs twice (the fall-back hour) is read as its second,
standard-time occurrence, and one that never occurs (the spring-forward hour)
with the offset in force before the jump. That is the rule staging's
`local_to_utc` macro (DuckDB) applies, so a change stamp computed here and the
times staging computes for the same request always agree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

# fromisoformat alone would also read "20220119" (an id, say) as a date.
_STAMP_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]|$)")


def parse_instant(value: object, tz: tzinfo = UTC) -> datetime | None:
    """`value` as an aware UTC datetime, reading a time without offset on `tz`;
    None when it is absent or not a timestamp."""
    if not isinstance(value, str) or not _STAMP_SHAPE.match(value.strip()):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    first, second = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset() and _exists(first, tz):
        return second.astimezone(UTC)
    return first.astimezone(UTC)


def _exists(moment: datetime, tz: tzinfo) -> bool:
    """Whether the wall-clock time occurs at all (a time in the spring-forward gap does not)."""
    back = moment.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None, fold=0) == moment.replace(tzinfo=None, fold=0)
