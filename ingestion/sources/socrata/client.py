"""HTTP side of the Socrata SODA source: paging on a seek key.

Pages are fetched by seeking on the sort key (`:updated_at`, `:id`) rather than
by a growing `$offset`. Under `$order=:updated_at,:id` an offset is only stable
while nothing changes: when a row that was already read is updated between two
pages it moves to the end of the order, every later row shifts one place left
and the row at the page boundary is skipped. A seek predicate names the last
key read, so inserts and updates between pages can neither skip nor repeat a
row (a row updated mid-run is read again in its new version and the merge on
the source id keeps the newest).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import requests

from ingestion.redact import get_logger
from ingestion.registry import City, SocrataDataset
from ingestion.sources.http import HttpClient, SourceError, json_body

log = get_logger("civic311.socrata")

# SODA's $limit ceiling: one count by day answers at most this many days.
COUNT_LIMIT = 50_000


class SocrataError(SourceError):
    """A Socrata request failed for good; the message names the city and what to do."""


def soql_timestamp(value: datetime) -> str:
    """Render a timestamp as a SoQL floating timestamp literal."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def soql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Window:
    """The `:updated_at` range a run reads: start inclusive, end exclusive, both optional."""

    start: datetime | None = None
    end: datetime | None = None

    def where(self, after: tuple[str, str] | None = None) -> str | None:
        clauses = []
        if self.start is not None:
            clauses.append(f":updated_at >= {soql_string(soql_timestamp(self.start))}")
        if self.end is not None:
            clauses.append(f":updated_at < {soql_string(soql_timestamp(self.end))}")
        if after is not None:
            updated_at, row_id = (soql_string(v) for v in after)
            clauses.append(f"(:updated_at > {updated_at} OR (:updated_at = {updated_at} AND :id > {row_id}))")
        return " AND ".join(clauses) or None


def advice(status: int) -> str:
    if status in (401, 403):
        return "Check that the app token environment variable named by source.app_token_env is valid."
    if status == 404:
        return "Check source.base_url and the dataset ids in the city registry."
    return "Check the dataset's field names and the registry entry."


def socrata_http(
    city: City, session: requests.Session | None = None, backoff_seconds: float = 1.0
) -> HttpClient:
    """The HTTP client of a Socrata city: its app token (if the environment has one) in
    X-App-Token."""
    return HttpClient.for_city(city, "application/json", "X-App-Token", session, backoff_seconds, advice)


def dataset_clients(
    city: City, http: HttpClient, base_url: str | None, end: datetime | None
) -> list[tuple[SocrataDataset, SocrataClient]]:
    """A client for each of the city's datasets that can hold a row changed before `end`."""
    source = city.source
    root = base_url or source.base_url
    return [
        (dataset, SocrataClient(http, source.resource_url_at(root, dataset.id), source.page_size))
        for dataset in source.datasets_for(end)
    ]


@dataclass
class SocrataClient:
    """Reads one SODA resource page by page."""

    http: HttpClient
    resource_url: str
    page_size: int = 50_000

    def pages(self, window: Window) -> Iterator[list[dict]]:
        """Yield pages of rows (with system fields) in `:updated_at, :id` order."""
        after: tuple[str, str] | None = None
        page_number = 0
        while True:
            params = {"$select": ":*, *", "$order": ":updated_at, :id", "$limit": str(self.page_size)}
            where = window.where(after)
            if where:
                params["$where"] = where
            page_number += 1
            rows = self.http.get(
                self.resource_url, params, f"page {page_number}", self._parse, confirm_empty=operator.not_
            )
            if not rows:
                return
            log.info("%s: page %d, %d rows", self.http.city_id, page_number, len(rows))
            yield rows
            last = rows[-1]
            if ":updated_at" not in last or ":id" not in last:
                raise SocrataError(
                    f"{self.http.city_id}: {self.resource_url} returned rows without the system "
                    "fields ':updated_at' and ':id'; the endpoint must honour $select=:*, *"
                )
            after = (last[":updated_at"], last[":id"])
            if len(rows) < self.page_size:
                return

    def daily_counts(self, window: Window) -> dict[date, int]:
        """How many rows the portal holds per UTC day of `:updated_at` in `window`:
        `$select=date_trunc_ymd(:updated_at) AS day, count(*) AS records` grouped by day."""
        params = {
            "$select": "date_trunc_ymd(:updated_at) AS day, count(*) AS records",
            "$group": "day",
            "$order": "day",
            # An aggregate is paged like rows: ask for every day at once.
            "$limit": str(COUNT_LIMIT),
        }
        if where := window.where():
            params["$where"] = where
        rows = self.http.get(self.resource_url, params, "the count by day", self._parse)
        if len(rows) >= COUNT_LIMIT:
            raise SocrataError(
                f"{self.http.city_id}: the count by day of {self.resource_url} has {len(rows)} days or "
                "more; reconcile a shorter window"
            )
        counts: dict[date, int] = {}
        for row in rows:
            day, records = row.get("day"), row.get("records")
            if day is None:
                continue  # rows without :updated_at: no window holds them
            try:
                counts[datetime.fromisoformat(str(day).removesuffix("Z")).date()] = int(records)
            except (TypeError, ValueError):
                raise SocrataError(
                    f"{self.http.city_id}: the count by day of {self.resource_url} answered "
                    f"{row!r}, not a day and a count; check that the portal supports SoQL aggregates"
                ) from None
        return counts

    def _parse(self, body: bytes) -> list[dict]:
        rows = json_body(body)
        if not isinstance(rows, list):
            raise SocrataError(
                f"{self.http.city_id}: {self.resource_url} returned {type(rows).__name__}, not a "
                "JSON array of rows; check source.base_url and the dataset ids in the registry"
            )
        return rows
