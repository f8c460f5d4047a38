"""HTTP side of the Socrata SODA source: paging, retries and the app token.

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

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson
import requests

log = logging.getLogger("civic311.socrata")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 300.0


class SocrataError(RuntimeError):
    """A Socrata request failed for good; the message names the city and what to do."""


class _Retryable(Exception):
    """A failure worth another try; `wait` is what the server asked for, if anything."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


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


@dataclass
class SocrataClient:
    """Reads one SODA resource page by page, retrying what is worth retrying."""

    city_id: str
    resource_url: str
    app_token: str | None = None
    page_size: int = 50_000
    timeout_seconds: float = 60.0
    max_retries: int = 6
    backoff_seconds: float = 1.0
    session: requests.Session | None = None

    def pages(self, window: Window) -> Iterator[list[dict]]:
        """Yield pages of rows (with system fields) in `:updated_at, :id` order."""
        after: tuple[str, str] | None = None
        page_number = 0
        # One session for the whole run, so pages reuse the connection.
        session = self.session or requests.Session()
        while True:
            params = {
                "$select": ":*, *",
                "$order": ":updated_at, :id",
                "$limit": str(self.page_size),
            }
            where = window.where(after)
            if where:
                params["$where"] = where
            page_number += 1
            rows = self._get(session, params, page_number)
            if not rows:
                return
            log.info("%s: page %d, %d rows", self.city_id, page_number, len(rows))
            yield rows
            last = rows[-1]
            if ":updated_at" not in last or ":id" not in last:
                raise SocrataError(
                    f"{self.city_id}: {self.resource_url} returned rows without the system "
                    "fields ':updated_at' and ':id'; the endpoint must honour $select=:*, *"
                )
            after = (last[":updated_at"], last[":id"])
            if len(rows) < self.page_size:
                return

    def _get(self, session: requests.Session, params: dict[str, str], page_number: int) -> list[dict]:
        headers = {"Accept": "application/json"}
        if self.app_token:
            headers["X-App-Token"] = self.app_token
        attempt = 0
        while True:
            try:
                return self._try_once(session, params, headers)
            except _Retryable as problem:
                attempt += 1
                if attempt > self.max_retries:
                    raise SocrataError(
                        f"{self.city_id}: page {page_number} of {self.resource_url} failed after "
                        f"{self.max_retries} retries: {problem}. Check the portal's status, or "
                        "raise source.max_retries in the city registry."
                    ) from None
                delay = problem.wait if problem.wait is not None else self._backoff(attempt)
                log.warning(
                    "%s: page %d: %s; retry %d/%d in %.1fs",
                    self.city_id,
                    page_number,
                    problem,
                    attempt,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)

    def _try_once(
        self, session: requests.Session, params: dict[str, str], headers: dict[str, str]
    ) -> list[dict]:
        """One request: the rows, or _Retryable with how long the server asked us to wait."""
        try:
            response = session.get(
                self.resource_url, params=params, headers=headers, timeout=self.timeout_seconds
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(type(exc).__name__) from None
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {response.status_code}", _retry_after(response))
        if response.status_code != 200:
            raise SocrataError(
                f"{self.city_id}: {self.resource_url} answered HTTP {response.status_code}: "
                f"{_socrata_message(response)}. " + _advice(response.status_code)
            )
        try:
            rows = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            # A truncated body is a transport fault: fail the whole page and read it again.
            raise _Retryable(f"invalid JSON body ({exc.msg} at byte {exc.pos})") from None
        if not isinstance(rows, list):
            raise SocrataError(
                f"{self.city_id}: {self.resource_url} returned {type(rows).__name__}, not a "
                "JSON array of rows; check source.base_url and source.dataset_id in the registry"
            )
        return rows

    def _backoff(self, attempt: int) -> float:
        base = self.backoff_seconds * 2 ** (attempt - 1)
        return min(60.0, base) * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(value)))
    except ValueError:
        return None


def _socrata_message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", "no message"))
    except ValueError:
        return response.text[:200] or "empty body"


def _advice(status: int) -> str:
    if status in (401, 403):
        return "Check that the app token environment variable named by source.app_token_env is valid."
    if status == 404:
        return "Check source.base_url and source.dataset_id in the city registry."
    return "Check the dataset's field names and the registry entry."
