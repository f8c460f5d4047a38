"""dlt source for Socrata SODA datasets (NYC, Chicago, San Francisco, Los Angeles).

Runs from a plain script as well as from Dagster:

    import dlt
    from ingestion.registry import load_registry
    from ingestion.sources.socrata import socrata_source

    city = load_registry().city("nyc")
    dlt.pipeline("nyc", destination="duckdb", dataset_name="raw_nyc").run(socrata_source(city))
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa
import requests
from dlt.sources import DltResource

from ingestion.registry import City
from ingestion.sources.socrata.arrow import rows_to_table
from ingestion.sources.socrata.client import SocrataClient, SocrataError, Window

__all__ = ["SocrataError", "Window", "socrata_source"]

# Where change capture starts on a city's first run when no window is given.
DEFAULT_INITIAL_UPDATED_AT = datetime(2000, 1, 1, tzinfo=UTC)


@dlt.source(name="socrata", max_table_nesting=0)
def socrata_source(
    city: City,
    start: datetime | None = None,
    end: datetime | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> DltResource:
    """Service requests of one city's Socrata dataset.

    With `start`/`end` the run reads that `:updated_at` window (a Dagster
    partition or a backfill), widened back by the city's lookback. Without them
    it resumes from the cursor kept in dlt state, minus the same lookback, so
    late changes inside the window are read again and merged.
    """
    source = city.source
    lookback = timedelta(hours=source.lookback_hours)
    if end is not None:
        cursor = dlt.sources.incremental(
            "source_updated_at",
            initial_value=(start or DEFAULT_INITIAL_UPDATED_AT) - lookback,
            end_value=end,
        )
    else:
        cursor = dlt.sources.incremental(
            "source_updated_at",
            initial_value=start or DEFAULT_INITIAL_UPDATED_AT,
            lag=lookback.total_seconds(),
        )
    resource_url = source.resource_url_at(base_url or source.base_url)
    client = SocrataClient(
        city_id=city.id,
        resource_url=resource_url,
        app_token=source.app_token(),
        page_size=source.page_size,
        timeout_seconds=source.timeout_seconds,
        max_retries=source.max_retries,
        backoff_seconds=backoff_seconds,
        session=session,
    )
    return dlt.resource(
        _service_requests,
        name="service_requests",
        write_disposition="merge",
        primary_key=("city_id", "source_id"),
        columns={
            "source_updated_at": {"data_type": "timestamp", "dedup_sort": "desc"},
            "_loaded_at": {"data_type": "timestamp"},
        },
    )(city, client, cursor)


def _service_requests(
    city: City,
    client: SocrataClient,
    # dlt binds the incremental declared as a default argument.
    updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("source_updated_at"),  # noqa: B008
) -> Iterator[pa.Table]:
    window = Window(start=_naive_utc(updated.last_value), end=_naive_utc(updated.end_value))
    loaded_at = datetime.now(UTC)
    for rows in client.pages(window):
        yield rows_to_table(rows, city_id=city.id, id_field=city.source.id_field, loaded_at=loaded_at)


def _naive_utc(value: datetime | None) -> datetime | None:
    """SoQL compares floating timestamps; `:updated_at` is kept in UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
