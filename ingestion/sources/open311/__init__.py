"""dlt source for Open311 GeoReport v2 endpoints (Chicago 2011-2018, Bloomington, Toronto, Boston).

Runs from a plain script as well as from Dagster:

    import dlt
    from ingestion.registry import load_registry
    from ingestion.sources.open311 import open311_source

    city = load_registry().city("bloomington")
    dlt.pipeline("bloomington", destination="duckdb", dataset_name="raw_bloomington").run(
        open311_source(city)
    )
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa
import requests
from dlt.sources import DltResource

from ingestion.redact import get_logger
from ingestion.registry import City
from ingestion.sources.arrow import ColumnTypes, records_to_table
from ingestion.sources.http import HttpClient
from ingestion.sources.open311.client import Open311Client, Open311Error, advice, record_id
from ingestion.sources.resource import naive_utc, rejected_table, service_requests_resource
from ingestion.sources.timestamps import parse_instant

__all__ = ["Open311Error", "open311_source"]

log = get_logger("civic311.open311")

MISSING_ID_RULE = "missing_service_request_id"
OPEN_END_MARGIN = timedelta(days=1)


@dlt.source(name="open311", max_table_nesting=0)
def open311_source(
    city: City,
    start: datetime | None = None,
    end: datetime | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> list[DltResource]:
    """Service requests of one city's GeoReport v2 endpoint, and its service list."""
    source = city.source
    accept = "application/xml" if source.format == "xml" else "application/json"
    # GeoReport asks for api_key only when POSTing; a key for reads (raised rate
    # limits) travels in a header, never in the URL.
    http = HttpClient.for_city(city, accept, "X-Api-Key", session, backoff_seconds, advice)
    client = Open311Client(http, (base_url or source.base_url).rstrip("/"), source)

    def pages(
        city: City,
        # dlt binds the incremental declared as a default argument.
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("source_updated_at"),  # noqa: B008
    ) -> Iterator[pa.Table]:
        loaded_at = datetime.now(UTC)
        # An open-ended run reads past "now", so a request changed while it reads stays
        # inside the window (with `updated` windows, leaving it would shift later pages).
        window_end = naive_utc(updated.end_value) or naive_utc(loaded_at + OPEN_END_MARGIN)
        types = ColumnTypes.from_schema(city.id, "service_requests")
        unkeyed = 0
        for records in client.pages(naive_utc(updated.last_value), window_end):
            keyed = [r for r in records if record_id(r) is not None]
            if len(keyed) < len(records):
                # Chicago and Boston list requests still being processed without an id
                # ("submitted"); they cannot be merged, so they go to the quarantine.
                missing = [r for r in records if record_id(r) is None]
                unkeyed += len(missing)
                yield rejected_table(city.id, MISSING_ID_RULE, missing, loaded_at)
            if keyed:
                yield records_to_table(
                    keyed,
                    city_id=city.id,
                    source_ids=[record_id(r) for r in keyed],
                    updated_at=[_updated_at(r, city) for r in keyed],
                    loaded_at=loaded_at,
                    types=types,
                )
        if unkeyed:
            log.warning("%s: %d requests without service_request_id quarantined", city.id, unkeyed)

    def services() -> Iterator[pa.Table]:
        records = client.services()
        keyed = [r for r in records if r.get("service_code") not in (None, "")]
        if len(keyed) < len(records):
            log.warning("%s: %d services without service_code skipped", city.id, len(records) - len(keyed))
        if keyed:
            yield records_to_table(
                keyed,
                city_id=city.id,
                source_ids=[str(r["service_code"]) for r in keyed],
                # The service list has no change stamp; it is replaced whole on every load.
                updated_at=[None] * len(keyed),
                loaded_at=datetime.now(UTC),
                types=ColumnTypes.from_schema(city.id, "services"),
            )

    return [
        service_requests_resource(city, pages, start, end),
        dlt.resource(services, name="services", write_disposition="replace"),
    ]


def _updated_at(record: dict, city: City) -> datetime | None:
    """updated_datetime as UTC. Some servers leave it empty (Toronto sends
    <updated_datetime/>); requested_datetime, the last change they do state, stands in."""
    return parse_instant(record.get("updated_datetime"), city.tz) or parse_instant(
        record.get("requested_datetime"), city.tz
    )
