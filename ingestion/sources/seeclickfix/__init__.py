"""dlt source for SeeClickFix v2 places (Detroit, Jersey City).

Runs from a plain script as well as from Dagster:

    import dlt
    from ingestion.registry import load_registry
    from ingestion.sources.seeclickfix import seeclickfix_source

    city = load_registry().city("detroit")
    dlt.pipeline("detroit", destination="duckdb", dataset_name="raw_detroit").run(seeclickfix_source(city))

Public issues need no credential. `source_id` is the issue id; `source_updated_at`
is its `updated_at`, or, when the page has a reduced field set without it, the
latest of created_at / acknowledged_at / closed_at / reopened_at (see client.py).
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dlt
import pyarrow as pa
import requests
from dlt.sources import DltResource

from ingestion.registry import City
from ingestion.sources.arrow import ColumnTypes, records_to_table
from ingestion.sources.http import HttpClient
from ingestion.sources.resource import naive_utc, rejected_table, service_requests_resource
from ingestion.sources.seeclickfix.client import (
    SeeClickFixClient,
    SeeClickFixError,
    Window,
    advice,
    issue_updated_at,
)

__all__ = ["SeeClickFixError", "http_client", "seeclickfix_source"]

UNKEYED_RULE = "issue without an id or any timestamp"


def http_client(
    city: City, session: requests.Session | None = None, backoff_seconds: float = 1.0
) -> HttpClient:
    """The paced HTTP client for a SeeClickFix city (the API allows about 20 requests a minute)."""
    return HttpClient.for_city(city, "application/json", None, session, backoff_seconds, advice)


@dlt.source(name="seeclickfix", max_table_nesting=0)
def seeclickfix_source(
    city: City,
    start: datetime | None = None,
    end: datetime | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> DltResource:
    """Issues of one city's SeeClickFix place, by change stamp."""
    source = city.source
    client = SeeClickFixClient(
        http=http_client(city, session, backoff_seconds),
        issues_url=f"{(base_url or source.base_url).rstrip('/')}/issues",
        place_url=source.place_url,
        per_page=source.per_page,
        statuses=tuple(source.statuses),
    )

    def pages(
        city: City,
        # dlt binds the incremental declared as a default argument.
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("source_updated_at"),  # noqa: B008
    ) -> Iterator[pa.Table]:
        window = Window(start=naive_utc(updated.last_value), end=naive_utc(updated.end_value))
        loaded_at = datetime.now(UTC)
        types = ColumnTypes.from_schema(city.id, "service_requests")
        for issues in client.pages(window):
            stamps = [issue_updated_at(issue) for issue in issues]
            keyed = [(i, s) for i, s in zip(issues, stamps, strict=True) if i.get("id") is not None and s]
            if len(keyed) < len(issues):
                unkeyed = [i for i, s in zip(issues, stamps, strict=True) if i.get("id") is None or not s]
                yield rejected_table(city.id, UNKEYED_RULE, unkeyed, loaded_at)
            if keyed:
                yield records_to_table(
                    [issue for issue, _ in keyed],
                    city_id=city.id,
                    source_ids=[str(issue["id"]) for issue, _ in keyed],
                    updated_at=[stamp for _, stamp in keyed],
                    loaded_at=loaded_at,
                    types=types,
                )

    return service_requests_resource(city, pages, start, end)
