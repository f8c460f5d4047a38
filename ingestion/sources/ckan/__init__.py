"""dlt source for CKAN DataStore resources, one per year (Boston).

Runs from a plain script as well as from Dagster:

    import dlt
    from ingestion.registry import load_registry
    from ingestion.sources.ckan import ckan_source

    city = load_registry().city("boston")
    dlt.pipeline("boston", destination="duckdb", dataset_name="raw_boston").run(ckan_source(city))

The DataStore keeps no change stamp, so `source_updated_at` is the latest of the
registry's `updated_at_fields` (floating wall-clock times) read in the city's
timezone; the change cursor then keeps the rows of the run's window. Every
resource the window can touch is read whole: the DataStore cannot filter on a
time range.
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dlt
import pyarrow as pa
import requests
from dlt.sources import DltResource

from ingestion.registry import City
from ingestion.sources.arrow import ColumnTypes, records_to_table
from ingestion.sources.ckan.client import CkanClient, CkanError, advice, search_url
from ingestion.sources.http import HttpClient
from ingestion.sources.resource import naive_utc, rejected_table, service_requests_resource
from ingestion.sources.timestamps import parse_instant

__all__ = ["CkanError", "ckan_source", "clean_record", "updated_at"]

# `_id` is the DataStore's row number, reassigned whenever the resource is
# reloaded (nightly at Boston), so it identifies nothing; `_full_text` is the
# DataStore's own search index of the row, not data.
INTERNAL_FIELDS = ("_id", "_full_text")


@dlt.source(name="ckan", max_table_nesting=0)
def ckan_source(
    city: City,
    start: datetime | None = None,
    end: datetime | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> DltResource:
    """Service requests of one city's yearly DataStore resources, by their latest local time."""
    source = city.source
    http = HttpClient.for_city(city, "application/json", "Authorization", session, backoff_seconds, advice)
    client = CkanClient(http, search_url(base_url or source.base_url), source.id_field, source.page_size)

    def pages(
        city: City,
        # dlt binds the incremental declared as a default argument.
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("source_updated_at"),  # noqa: B008
    ) -> Iterator[pa.Table]:
        loaded_at = datetime.now(UTC)
        types = ColumnTypes.from_schema(city.id, "service_requests")
        # A partition names its window; a resumed run starts where the cursor stands.
        first = start if start is not None else naive_utc(updated.last_value)
        for year, resource_id in source.resources_for(first, naive_utc(updated.end_value)):
            for records in client.pages(resource_id, label=f"{resource_id} ({year})"):
                kept, stamps = [], []
                # Records that cannot be keyed or placed in time are kept aside, whole.
                rejected: dict[str, list[dict]] = {"no_id": [], "no_timestamp": []}
                for raw in records:
                    record = clean_record(raw)
                    stamp = updated_at(record, source.updated_at_fields, city.tz)
                    if record.get(source.id_field) in (None, ""):
                        rejected["no_id"].append(record)
                    elif stamp is None:
                        rejected["no_timestamp"].append(record)
                    else:
                        kept.append(record)
                        stamps.append(stamp)
                if kept:
                    yield records_to_table(
                        kept,
                        city_id=city.id,
                        source_ids=[str(r[source.id_field]) for r in kept],
                        updated_at=stamps,
                        loaded_at=loaded_at,
                        types=types,
                    )
                for rule, bad in rejected.items():
                    if bad:
                        yield rejected_table(city.id, rule, bad, loaded_at)

    return service_requests_resource(city, pages, start, end)


def clean_record(record: Mapping[str, object]) -> dict:
    """The record as the city delivered it, without the DataStore's own fields."""
    return {k: v for k, v in record.items() if k not in INTERNAL_FIELDS}


def updated_at(record: Mapping[str, object], fields: Sequence[str], tz: ZoneInfo) -> datetime | None:
    """The latest of `fields` as a UTC instant, or None when none of them parses."""
    moments = [m for m in (parse_instant(record.get(f), tz) for f in fields) if m is not None]
    return max(moments, default=None)
