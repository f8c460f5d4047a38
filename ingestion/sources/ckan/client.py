"""HTTP side of the CKAN DataStore source: `datastore_search` paged in case-id order.

The DataStore offers only `limit`/`offset` paging (equality `filters`, no range
predicate, so no seek key), and its `_id` is no paging key either: Boston
reloads each year's resource nightly, which reassigns every `_id`. The pages
are therefore sorted on the city's business id (`case_enquiry_id`), which never
changes, and new cases get higher ids, so between two pages an insert lands
after the current offset and an update or a reload leaves every row where it
was: offsets can neither skip nor repeat a row. Only a row deleted upstream
mid-read shifts the rows after it, skipping one at the next page boundary
until a later run reads the resource again.
A text-typed id column sorts as text, which is numeric order for Boston's
fixed-width ids.

`total` is re-read on every page and the read ends once the offset reaches the
latest one; an empty page before that is a flaky answer and is fetched again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from ingestion.redact import get_logger
from ingestion.sources.http import HttpClient, Retryable, SourceError, json_body

log = get_logger("civic311.ckan")

SEARCH_PATH = "/api/3/action/datastore_search"


class CkanError(SourceError):
    """A DataStore request failed for good; the message names the city and what to do."""


@dataclass(frozen=True)
class Page:
    """One `datastore_search` answer: its records and the resource's row count."""

    records: list[dict]
    total: int
    # CKAN may estimate `total` for big tables (`total_was_estimated`); then only an
    # empty page ends the read.
    total_exact: bool = True


def search_url(base_url: str) -> str:
    return base_url.rstrip("/") + SEARCH_PATH


def advice(status: int) -> str:
    if status in (401, 403):
        return "Check the API key in the environment variable named by source.api_key_env."
    if status == 404:
        return "Check source.base_url and the resource ids in source.resources_by_year."
    if status in (400, 409):
        return "Check source.id_field: the DataStore rejected the query (sort on a field it lacks?)."
    return "Check the city's registry entry."


@dataclass
class CkanClient:
    """Reads the resources of one CKAN DataStore page by page."""

    http: HttpClient
    url: str
    id_field: str
    page_size: int = 32_000

    def pages(self, resource_id: str, label: str | None = None) -> Iterator[list[dict]]:
        """Yield the records of one resource in `id_field` order, `_id` and all."""
        label = label or resource_id
        offset, total, page_number = 0, None, 0
        while True:
            params = {
                "resource_id": resource_id,
                "limit": str(self.page_size),
                "offset": str(offset),
                "sort": f"{self.id_field} asc",
            }
            page_number += 1
            what = f"page {page_number} of resource {label}"
            # An empty page before the end is retried by the parser; one at the end (or
            # under an estimated total) is asked for again before it ends the read.
            page = self.http.get(
                self.url,
                params,
                what,
                partial(self._parse, offset=offset, what=what),
                confirm_empty=lambda page: not page.records,
            )
            if total is not None and page.total != total:
                # Rows arrived (or went) while we read; the read follows the new count. A
                # shrinking count may be a reload in progress, worth a warning: rows it
                # hides now wait for the next run over their window.
                level = logging.INFO if page.total > total else logging.WARNING
                log.log(
                    level,
                    "%s: resource %s now holds %d rows (was %d)",
                    self.http.city_id,
                    label,
                    page.total,
                    total,
                )
            total = page.total
            if not page.records:
                return
            log.info("%s: %s, %d records", self.http.city_id, what, len(page.records))
            yield page.records
            offset += len(page.records)
            if page.total_exact and offset >= total:
                return

    def _parse(self, body: bytes, offset: int, what: str) -> Page:
        answer = json_body(body)
        if not isinstance(answer, dict) or not answer.get("success"):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise CkanError(
                f"{self.http.city_id}: {what} from {self.url} was refused ({_describe(error)}); "
                "check source.base_url, the resource ids and source.id_field in the registry"
            )
        result = answer.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("records"), list):
            raise CkanError(
                f"{self.http.city_id}: {what} from {self.url} has no result.records; "
                "source.base_url must point at a CKAN site with the DataStore extension"
            )
        records, total = result["records"], result.get("total")
        if not isinstance(total, int):
            raise CkanError(f"{self.http.city_id}: {what} from {self.url} has no integer result.total")
        exact = not result.get("total_was_estimated", False)
        if not records and exact and offset < total:
            raise Retryable(f"empty page at offset {offset} of {total} rows")
        return Page(records, total, exact)


def _describe(error: object) -> str:
    if isinstance(error, dict):
        message = error.get("message") or ", ".join(f"{k}: {v}" for k, v in error.items() if k != "__type")
        return str(message)[:300]
    return "no error given" if error is None else str(error)[:300]
