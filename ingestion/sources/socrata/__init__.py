"""dlt source for Socrata SODA datasets (NYC, Chicago, San Francisco, Los Angeles).

Runs from a plain script as well as from Dagster:

    import dlt
    from ingestion.registry import load_registry
    from ingestion.sources.socrata import socrata_source

    city = load_registry().city("nyc")
    dlt.pipeline("nyc", destination="duckdb", dataset_name="raw_nyc").run(socrata_source(city))
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dlt
import pyarrow as pa
import requests
from dlt.sources import DltResource

from ingestion.registry import City
from ingestion.sources.arrow import ColumnTypes, records_to_table
from ingestion.sources.readahead import read_ahead
from ingestion.sources.resource import naive_utc, service_requests_resource
from ingestion.sources.socrata.client import SocrataError, Window, dataset_clients, socrata_http
from ingestion.sources.timestamps import read_instant_array

__all__ = ["SocrataError", "Window", "socrata_source"]

# `source_id` falls back to Socrata's own row id when the dataset's id field is
# missing, so the row is still kept and merged stably; the raw check reports it.
MISSING_ID_PREFIX = ":id/"


@dlt.source(name="socrata", max_table_nesting=0)
def socrata_source(
    city: City,
    start: datetime | None = None,
    end: datetime | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> DltResource:
    """Service requests of one city's Socrata datasets, by `:updated_at`."""
    source = city.source
    http = socrata_http(city, session, backoff_seconds)

    def pages(
        city: City,
        # dlt binds the incremental declared as a default argument.
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("source_updated_at"),  # noqa: B008
    ) -> Iterator[pa.Table]:
        window = Window(start=naive_utc(updated.last_value), end=naive_utc(updated.end_value))
        loaded_at = datetime.now(UTC)
        types = ColumnTypes.from_schema(city.id, "service_requests")

        def every_page() -> Iterator[list[dict]]:
            for _, client in dataset_clients(city, http, base_url, updated.end_value):
                yield from client.pages(window)

        # The next page, of this dataset or the next, is fetched and parsed while this
        # one becomes Arrow and is written.
        for rows in read_ahead(every_page(), depth=1):
            yield records_to_table(
                rows,
                city_id=city.id,
                source_ids=[_source_id(r, source.id_field) for r in rows],
                updated_at=read_instant_array([r.get(":updated_at") for r in rows]),
                loaded_at=loaded_at,
                types=types,
            )

    return service_requests_resource(city, pages, start, end)


def _source_id(row: dict, id_field: str) -> str:
    value = row.get(id_field)
    if value in (None, ""):
        return MISSING_ID_PREFIX + str(row.get(":id"))
    return value if isinstance(value, str) else str(value)
