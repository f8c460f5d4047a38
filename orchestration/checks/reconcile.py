"""Source reconciliation: did civic311 load what the portal says it holds?

For each day (Socrata) of what the run's load read, its window and the lookback
before it, or for that read as a whole (SeeClickFix), the portal's own count of
records changed then (ingestion/sources/counts.py, asked up to three times, the
largest kept) is compared with what the warehouse holds for the same span: the
city's raw rows plus its quarantined records.

Below 98% the check fails. It blocks (ERROR) once the span's end is older than the
city's lookback: until then a later load reads the span again, so a shortfall is a
warning. The daily refresh reads its day and the lookback's days again, so each day
is compared once more when its lookback has passed, and blocks then if still short.
Open311 and CKAN portals cannot be counted (counts.NOT_COUNTABLE); their cities have
no such check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import duckdb
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from ingestion.pipeline import raw_dataset, raw_table_exists
from ingestion.redact import RedactedError, redact
from ingestion.registry import City
from ingestion.sources.counts import ASKS, REQUIRED_SHARE, Span, source_counts
from ingestion.sources.resource import REJECTED_TABLE
from orchestration.assets.ingestion import raw_asset_key
from orchestration.checks.layers import Check
from orchestration.partitions import EVERYTHING
from orchestration.resources import replay_url

SAMPLE_SIZE = 10
# Where a quarantined record of each protocol keeps its change stamp.
_QUARANTINE_STAMP = {"socrata": '$.":updated_at"', "seeclickfix": "$.updated_at"}


@contextmanager
def held_counter(warehouse: Path, city: City) -> Iterator[Callable[[datetime, datetime], int]]:
    """`held(start, end)`: the city's raw rows changed in [start, end) (naive UTC) plus
    its quarantined records whose change stamp falls there, over one read-only
    connection."""
    if not raw_table_exists(warehouse, city):
        yield lambda start, end: 0
        return
    schema = raw_dataset(city)
    raw = (
        f'select count(*) from "{schema}".service_requests '  # noqa: S608 - registry id
        "where source_updated_at >= $start and source_updated_at < $end"
    )
    stamp = "try_cast(json_extract_string(payload, $path) as timestamptz)"
    quarantined = (
        f'select count(*) from "{schema}"."{REJECTED_TABLE}" '  # noqa: S608 - registry id
        f"where {stamp} >= $start and {stamp} < $end"
    )
    path = _QUARANTINE_STAMP.get(city.source.protocol)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where schema_name = ?", [schema]
            ).fetchall()
        }

        @cache
        def held(start: datetime, end: datetime) -> int:
            params = {"start": start.replace(tzinfo=UTC), "end": end.replace(tzinfo=UTC)}
            count = con.execute(raw, params).fetchone()[0]
            if path and REJECTED_TABLE in tables:
                count += con.execute(quarantined, {**params, "path": path}).fetchone()[0]
            return count

        yield held


def reconciliation_check(city: City, warehouse: Path) -> Check:
    lookback = timedelta(hours=city.source.lookback_hours)
    per = "day of :updated_at" if city.source.protocol == "socrata" else "window of change stamps"
    spec = AssetCheckSpec(
        name="reconciled_with_source",
        asset=raw_asset_key(city),
        description=(
            f"For each {per} the run's load read (its window and the lookback before), civic311 "
            f"holds (raw plus quarantine) at least {REQUIRED_SHARE:.0%} of the records "
            f"{city.name}'s portal counts, asked up to {ASKS} times. Blocking once the span is "
            f"older than the lookback ({city.source.lookback_hours:g} h), a warning before."
        ),
        blocking=True,
    )

    def evaluate(start: datetime, end: datetime) -> AssetCheckResult:
        if (start, end) == (EVERYTHING.start, EVERYTHING.end):
            return AssetCheckResult(
                passed=True,
                severity=AssetCheckSeverity.WARN,
                description=f"{city.id}: the run has no window of days, so nothing was reconciled.",
                metadata={"spans_compared": 0},
            )
        # What the load read: the window and the lookback before it.
        start, end = _naive_utc(start) - lookback, _naive_utc(end)
        with held_counter(warehouse, city) as held:
            try:
                base_url = city.base_url(replay_url())
                spans, asked = source_counts(city, start, end, held=held, base_url=base_url)
            except (RedactedError, ValueError) as problem:
                return AssetCheckResult(
                    passed=False,
                    severity=AssetCheckSeverity.WARN,
                    description=redact(
                        f"{city.id}: the portal could not be counted, so nothing was reconciled: {problem}"
                    ),
                    metadata={"spans_compared": 0},
                )
            return _result(city, spans, asked, held, lookback)

    return Check(spec, evaluate)


def _result(
    city: City, spans: list[Span], asked: int, held: Callable[[datetime, datetime], int], lookback: timedelta
) -> AssetCheckResult:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(span, held(span.start, span.end)) for span in spans]
    short = [(span, n) for span, n in rows if span.count and n < REQUIRED_SHARE * span.count]
    settled = [(span, n) for span, n in short if span.end + lookback <= now]
    portal, holds = sum(s.count for s, _ in rows), sum(n for _, n in rows)
    description = None
    if short:
        worst, worst_held = min(short, key=lambda pair: pair[1] / pair[0].count)
        what = (
            f"{city.id}: {len(short)} of {len(rows)} spans hold less than {REQUIRED_SHARE:.0%} of the "
            f"portal's count; the worst, {_label(worst)}, holds {worst_held} of {worst.count} "
            f"({worst_held / worst.count:.1%}; the portal's largest count of {asked} asked). "
        )
        if settled:
            advice = (
                f"The lookback ({city.source.lookback_hours:g} h) has passed, so the models built on "
                f"raw/{city.id}/service_requests are not refreshed. Load the days again (civic311 "
                f"refresh --city {city.id} --from {settled[0][0].start:%Y-%m-%d} --to "
                f"{(settled[-1][0].end - timedelta(microseconds=1)):%Y-%m-%d}); if the portal still "
                "counts more, tell its publisher."
            )
        else:
            advice = "The next loads read these days again within the lookback; a warning until then."
        description = what + advice
    return AssetCheckResult(
        passed=not short,
        severity=AssetCheckSeverity.ERROR if settled else AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "source_count": portal,
            "held_count": holds,
            "share": round(holds / portal, 4) if portal else 1.0,
            "required_share": REQUIRED_SHARE,
            "spans_compared": len(rows),
            "spans_short": len(short),
            "times_asked": asked,
            "short_spans": MetadataValue.json(
                [
                    {"span": _label(s), "portal": s.count, "held": n, "share": round(n / s.count, 4)}
                    for s, n in short[:SAMPLE_SIZE]
                ]
            ),
        },
    )


def _label(span: Span) -> str:
    if span.end - span.start == timedelta(days=1) and span.start.time() == datetime.min.time():
        return f"{span.start:%Y-%m-%d}"
    return f"{span.start:%Y-%m-%d %H:%M} to {span.end:%Y-%m-%d %H:%M} UTC"


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
