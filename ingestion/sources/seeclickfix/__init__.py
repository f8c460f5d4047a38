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

A place's pages can hold issues of other organisations than the city's. An issue
is the city's when its handling organisation (`request_type.organization`, a
name: issues carry no organisation id) matches the registry's
`source.organizations`; any other, or one with no organisation, goes to
`rejected_service_requests` with the rule `foreign_organization` and never to
`service_requests`. A page without `request_type` at all (a reduced field set)
cannot be judged: its issues are kept, and the page's count is logged.
"""

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import dlt
import pyarrow as pa
import requests
from dlt.sources import DltResource

from ingestion.redact import get_logger
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

__all__ = ["FOREIGN_RULE", "SeeClickFixError", "http_client", "seeclickfix_source", "split_foreign"]

UNKEYED_RULE = "issue without an id or any timestamp"
FOREIGN_RULE = "foreign_organization"

log = get_logger("civic311.seeclickfix")


def organization(issue: Mapping[str, object]) -> str | None:
    """The name of the organisation handling the issue, if it says."""
    request_type = issue.get("request_type")
    name = request_type.get("organization") if isinstance(request_type, Mapping) else None
    return name if isinstance(name, str) else None


def split_foreign(city: City, issues: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the city's issues, the other organisations' issues) of one page.

    A page whose issues carry no `request_type` field cannot be judged: all of it
    is kept, and the count logged (counts only: issues hold residents' names).
    """
    if not any("request_type" in issue for issue in issues):
        log.warning(
            "%s: %d issues kept unjudged: the page has no request_type, so no organisation",
            city.id,
            len(issues),
        )
        return issues, []
    ours, foreign = [], []
    for issue in issues:
        (ours if city.source.handles(organization(issue)) else foreign).append(issue)
    if foreign:
        log.info("%s: %d issues of other organisations quarantined (%s)", city.id, len(foreign), FOREIGN_RULE)
    return ours, foreign


def http_client(
    city: City, session: requests.Session | None = None, backoff_seconds: float = 1.0
) -> HttpClient:
    """The paced HTTP client for a SeeClickFix city (the API allows about 20 requests a minute)."""
    return HttpClient.for_city(city, "application/json", None, session, backoff_seconds, advice)


def seeclickfix_client(
    city: City,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> SeeClickFixClient:
    """The client of the city's place, at `base_url` (default: the registry's)."""
    source = city.source
    return SeeClickFixClient(
        http=http_client(city, session, backoff_seconds),
        issues_url=f"{(base_url or source.base_url).rstrip('/')}/issues",
        place_url=source.place_url,
        per_page=source.per_page,
        statuses=tuple(source.statuses),
    )


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
    client = seeclickfix_client(city, base_url, session, backoff_seconds)

    def pages(
        city: City,
        # dlt binds the incremental declared as a default argument.
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("source_updated_at"),  # noqa: B008
    ) -> Iterator[pa.Table]:
        window = Window(start=naive_utc(updated.last_value), end=naive_utc(updated.end_value))
        loaded_at = datetime.now(UTC)
        types = ColumnTypes.from_schema(city.id, "service_requests")
        for page in client.pages(window):
            issues, foreign = split_foreign(city, page)
            if foreign:
                yield rejected_table(city.id, FOREIGN_RULE, foreign, loaded_at)
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
