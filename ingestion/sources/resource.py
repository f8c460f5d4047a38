"""The `service_requests` resource shape every adapter shares.

Each adapter supplies a generator of Arrow pages; this module wraps it the same
way for all of them: merged on (city_id, source_id) with the newest
`source_updated_at` winning, read through one change cursor, and with a
quarantine table for records that cannot be keyed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import dlt
import orjson
import pyarrow as pa
from dlt.common.pipeline import current_pipeline
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.sources import DltResource

from ingestion.registry import City
from ingestion.sources.arrow import key_not_null

# Where change capture starts on a city's first run when no window is given.
DEFAULT_INITIAL_UPDATED_AT = datetime(2000, 1, 1, tzinfo=UTC)
# A first load remembers this many keys to prove none repeats (about 100 MB); a
# larger first load merges.
FIRST_LOAD_KEYS_REMEMBERED = 2_000_000
REJECTED_TABLE = "rejected_service_requests"


def change_cursor(
    start: datetime | None, end: datetime | None, lookback: timedelta
) -> dlt.sources.incremental[datetime]:
    """The `source_updated_at` cursor.

    With a window (a Dagster partition or a backfill) the run reads
    [start - lookback, end). Without one it resumes from the cursor kept in dlt
    state, minus the same lookback, so late changes are read again and merged.
    Rows without a cursor value (only quarantined records) are kept.
    """
    if end is not None:
        return dlt.sources.incremental(
            "source_updated_at",
            initial_value=(start or DEFAULT_INITIAL_UPDATED_AT) - lookback,
            end_value=end,
            on_cursor_value_missing="include",
        )
    return dlt.sources.incremental(
        "source_updated_at",
        initial_value=start or DEFAULT_INITIAL_UPDATED_AT,
        lag=lookback.total_seconds(),
        on_cursor_value_missing="include",
    )


def naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


PageReader = Callable[[City, dlt.sources.incremental[datetime]], Iterator[pa.Table]]


def service_requests_resource(
    city: City, pages: PageReader, start: datetime | None, end: datetime | None
) -> DltResource:
    """Wrap an adapter's page generator as the city's `service_requests` resource.

    `pages(city, updated)` must declare `updated` with a default of
    `dlt.sources.incremental("source_updated_at")`, which dlt binds to the cursor.
    """
    cursor = change_cursor(start, end, timedelta(hours=city.source.lookback_hours))

    def service_requests(
        city: City,
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("source_updated_at"),  # noqa: B008
    ) -> Iterator[object]:
        yield from first_load_appends(pages(city, updated))

    return dlt.resource(
        service_requests,
        name="service_requests",
        write_disposition="merge",
        primary_key=("city_id", "source_id"),
        columns={
            "source_updated_at": {"data_type": "timestamp", "dedup_sort": "desc"},
            "_loaded_at": {"data_type": "timestamp"},
        },
    )(city, cursor)


def first_load_appends(items: Iterator[object], table: str = "service_requests") -> Iterator[object]:
    """`items`, with the write disposition each load of `table` needs.

    A merge costs a staging copy and a second write of every row, for nothing when
    the table is still empty: such a first load appends. That holds only while no
    key repeats within the load (a record updated while the run pages, or listed
    by two datasets); from the first page that repeats one, or once more keys have
    been seen than are worth remembering, the whole load merges again, as every
    load into a table that has rows does. Items that are not Arrow pages (the
    quarantine table's) pass as they are.
    """
    seen: set[str] | None = set() if not _destination_has_rows(table) else None
    for item in items:
        if not isinstance(item, pa.Table):
            yield item
            continue
        if seen is not None:
            keys = item.column("source_id").to_pylist()
            repeats = len(set(keys)) < len(keys) or not seen.isdisjoint(keys)
            if repeats or len(seen) + len(keys) > FIRST_LOAD_KEYS_REMEMBERED:
                seen = None
            else:
                seen.update(keys)
        # Every page says which, so no page the cursor filters out takes the switch with it.
        disposition = "append" if seen is not None else "merge"
        yield dlt.mark.with_hints(item, dlt.mark.make_hints(write_disposition=disposition))


def _destination_has_rows(table: str) -> bool:
    """Whether the running pipeline's dataset holds rows of `table`; True when that
    cannot be told (no pipeline running, say), so the load merges."""
    pipeline = current_pipeline()
    if pipeline is None:
        return True
    try:
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                return False
            with client.execute_query(
                f"select 1 from {client.make_qualified_table_name(table)} limit 1"
            ) as cursor:
                return cursor.fetchone() is not None
    except DatabaseUndefinedRelation:
        return False


def rejected_table(
    city_id: str, rule: str, records: Sequence[Mapping[str, object]], loaded_at: datetime
) -> pa.Table:
    """Records that break `rule`, kept whole as JSON in the city's quarantine table.

    They are keyed by a hash of their content, so a rerun of the same window does
    not quarantine a record twice.
    """
    payloads = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS).decode() for r in records]
    ids = [hashlib.sha1(f"{rule}|{p}".encode(), usedforsecurity=False).hexdigest() for p in payloads]
    table = pa.table(
        {
            "city_id": pa.array([city_id] * len(records), pa.string()),
            "source_id": pa.array(ids, pa.string()),
            "source_updated_at": pa.nulls(len(records), pa.timestamp("us", tz="UTC")),
            "_loaded_at": pa.array([loaded_at] * len(records), pa.timestamp("us", tz="UTC")),
            "rule": pa.array([rule] * len(records), pa.string()),
            "payload": pa.array(payloads, pa.string()),
        }
    )
    table = key_not_null(table)
    # A table variant: the hints apply to this table only. Without it dlt would move the
    # whole resource, and every page after this one, to the quarantine table.
    return dlt.mark.with_hints(
        table,
        dlt.mark.make_hints(
            table_name=REJECTED_TABLE, write_disposition="merge", primary_key=["city_id", "source_id"]
        ),
        create_table_variant=True,
    )
