"""HTTP side of the Open311 GeoReport v2 source: date windows, paging, parsing.

GeoReport v2 answers at most 90 days per `start_date`/`end_date` query (both
bounds inclusive: "earliest/latest datetime to include"), so a run's window is
read in chunks of `source.window_days`. Adjacent chunks share their boundary
second; a request stamped exactly there is read twice and merged once. Chicago's
`updated_after`/`updated_before` extension is read the same way.

Sort assumption: within a chunk the server orders requests by
`requested_datetime`, then `service_request_id`, and pages with the
`page`/`page_size` extension (an offset). New requests are stamped "now" and so
join the end of that order, and a status change does not move a request in it,
so neither shifts a page the client has still to read (a change to a request
already read is read by the next run, whose window holds its new stamp). With
`window_field: updated` a request changed mid-read leaves a window that ends in
the past and can shift one later request into a page already read; an
open-ended run avoids this by reaching past "now" (see `open311_source`), and a
backfill window is read again whole when it is rerun.

Nothing is truncated silently: a chunk that fills `max_pages` pages (or, on a
server without paging, a customary 1000-row answer) is split in half and read
again; until a server has returned one full page of `page_size`, a short page
is checked by asking for the next one, in case the server clamps page sizes.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from ingestion.redact import get_logger
from ingestion.registry import Open311Source
from ingestion.sources.http import HttpClient, Retryable, SourceError, json_body

log = get_logger("civic311.open311")

# Servers without the paging extension answer at most this many requests per
# query (Toronto documents 1000), so an answer this long may be cut short.
UNPAGED_ROW_CAP = 1000
EXTENSION_FIELDS = ("notes", "extended_attributes", "attributes")
_ONE_SECOND = timedelta(seconds=1)


class Open311Error(SourceError):
    """An Open311 request failed for good; the message names the city and what to do."""


def advice(status: int) -> str:
    if status == 400:
        return (
            "Check source.window_days (GeoReport servers answer at most 90 days), source.window_field "
            "and source.page_size in the city registry."
        )
    if status in (401, 403):
        return "Check the API key in the environment variable named by source.api_key_env."
    if status == 404:
        return "Check source.base_url, source.format and source.jurisdiction_id in the city registry."
    return "Check source.base_url and source.jurisdiction_id in the city registry."


@dataclass(frozen=True)
class Chunk:
    """One query window in UTC, both bounds inclusive, whole seconds."""

    start: datetime
    end: datetime

    def halves(self) -> tuple[Chunk, Chunk] | None:
        middle = self.start + timedelta(seconds=int((self.end - self.start).total_seconds()) // 2)
        if middle <= self.start:
            return None
        return Chunk(self.start, middle), Chunk(middle, self.end)

    def __str__(self) -> str:
        return f"{w3c(self.start)}..{w3c(self.end)}"


def w3c(moment: datetime) -> str:
    """The W3C form GeoReport asks for, in UTC: 2014-05-09T00:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_utc(moment: datetime) -> datetime:
    # The shared resource hands windows over as naive UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def chunks(start: datetime, end: datetime, days: int) -> list[Chunk]:
    """[start, end] in consecutive windows of at most `days` days sharing their bounds."""
    start = as_utc(start).replace(microsecond=0)
    end = as_utc(end)
    if end.microsecond:
        end = end.replace(microsecond=0) + _ONE_SECOND
    found = []
    step = timedelta(days=days)
    while start < end:
        found.append(Chunk(start, min(start + step, end)))
        start = found[-1].end
    return found


def record_id(record: dict) -> str | None:
    value = record.get("service_request_id")
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


# -- bodies -----------------------------------------------------------------------------


def parse_json_list(body: bytes, container: str) -> list[dict]:
    """A JSON array of objects, or one wrapped as {container: [...]}."""
    data = json_body(body)
    if isinstance(data, dict) and isinstance(data.get(container), list):
        data = data[container]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"expected a JSON array of {container}, got {type(data).__name__}")
    if data and all("description" in item and set(item) <= {"code", "description"} for item in data):
        raise ValueError("; ".join(str(item["description"]) for item in data))
    return data


def parse_xml_list(body: bytes) -> list[dict]:
    """The records under the root element (<service_requests><request>...): empty
    elements become null, nested elements dicts, repeated ones lists."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        # No GeoReport body needs a DTD; refusing one rules out entity expansion attacks.
        raise ValueError("the XML body declares a DTD, which GeoReport bodies never need")
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - DTDs refused above
    except ElementTree.ParseError as exc:
        raise Retryable(f"invalid XML body ({exc})") from None
    if _tag(root) == "errors":
        raise ValueError("; ".join(str(error.get("description")) for error in _value(root) or []))
    records = [_value(child) for child in root]
    if not all(isinstance(record, dict) for record in records):
        raise ValueError(f"expected <{_tag(root)}> to hold one element per record")
    return records


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]


def _value(element: ElementTree.Element) -> object:
    children = list(element)
    if not children:
        return element.text or None
    tags = [_tag(child) for child in children]
    # <notes><note/><note/></notes> is a list; <extended_attributes><ward/>...</> a dict.
    if len(set(tags)) == 1 and (len(tags) > 1 or _tag(element) == tags[0] + "s"):
        return [_value(child) for child in children]
    return {tag: _value(child) for tag, child in zip(tags, children, strict=True)}


# -- the client -------------------------------------------------------------------------


@dataclass
class Open311Client:
    """Reads one city's GeoReport v2 endpoint."""

    http: HttpClient
    base_url: str
    source: Open311Source
    # An unpaged answer this long may have been cut at the server's row cap.
    unpaged_row_cap: int = UNPAGED_ROW_CAP
    # Set once the server returns a page of the full requested size: it does not clamp.
    _page_size_honoured: bool = False

    @property
    def requests_path(self) -> str:
        return f"requests.{self.source.format}"

    def pages(self, start: datetime, end: datetime) -> Iterator[list[dict]]:
        """Every request in [start, end], page by page (rows without an id included)."""
        for chunk in chunks(start, end, self.source.window_days):
            yield from self._read(chunk)

    def services(self) -> list[dict]:
        url = f"{self.base_url}/services.{self.source.format}"
        params = {"jurisdiction_id": self.source.jurisdiction_id} if self.source.jurisdiction_id else {}
        return self._get(url, params, f"services.{self.source.format}", "services")

    def _read(self, chunk: Chunk) -> Iterator[list[dict]]:
        asked = self.source.page_size
        if asked is None:
            rows = self._page(chunk, None, confirm_empty=True)
            if len(rows) >= self.unpaged_row_cap:
                yield from self._split(chunk, f"{len(rows)} requests in one unpaged answer")
            elif rows:
                yield rows
            return
        size, page = asked, 1
        rows = self._page(chunk, page, confirm_empty=True)
        while rows:
            if len(rows) > asked:
                raise Open311Error(
                    f"{self.http.city_id}: {self.requests_path} returned {len(rows)} requests for "
                    f"page_size={asked}; the server does not page, so set source.page_size to null "
                    "in the city registry"
                )
            yield rows
            full = len(rows) >= size
            if full and len(rows) == asked:
                self._page_size_honoured = True
            if full and page >= self.source.max_pages:
                yield from self._split(chunk, f"{page} full pages (source.max_pages)")
                return
            if not full and self._page_size_honoured:
                return
            # After a short page this asks whether it really was the last one.
            previous, page = rows, page + 1
            rows = self._page(chunk, page, confirm_empty=full)
            if rows and not full:
                if [record_id(r) for r in rows] == [record_id(r) for r in previous]:
                    raise Open311Error(
                        f"{self.http.city_id}: {self.requests_path} answered page {page} with page "
                        f"{page - 1} again; the server ignores paging, so set source.page_size to null "
                        "in the city registry"
                    )
                size = len(previous)
                log.warning(
                    "%s: the server caps pages at %d requests, below page_size=%d; set "
                    "source.page_size to %d in the city registry",
                    self.http.city_id,
                    size,
                    asked,
                    size,
                )

    def _split(self, chunk: Chunk, reason: str) -> Iterator[list[dict]]:
        halves = chunk.halves()
        if halves is None:
            raise Open311Error(
                f"{self.http.city_id}: {self.requests_path} for {chunk} still returned {reason} in a "
                "one-second window; raise source.max_pages (or source.page_size) in the city registry"
            )
        log.info("%s: %s for %s; reading it in two halves", self.http.city_id, reason, chunk)
        for half in halves:
            yield from self._read(half)

    def _page(self, chunk: Chunk, page: int | None, confirm_empty: bool) -> list[dict]:
        what = f"{'page ' + str(page) + ' of ' if page else ''}{self.requests_path} for {chunk}"
        url = f"{self.base_url}/{self.requests_path}"
        rows = self._get(url, self._params(chunk, page), what, "service_requests", confirm_empty)
        log.info("%s: %s: %d requests", self.http.city_id, what, len(rows))
        return rows

    def _params(self, chunk: Chunk, page: int | None) -> dict[str, str]:
        source = self.source
        after, before = (
            ("updated_after", "updated_before")
            if source.window_field == "updated"
            else ("start_date", "end_date")
        )
        params = {after: w3c(chunk.start), before: w3c(chunk.end)}
        if source.jurisdiction_id:
            params["jurisdiction_id"] = source.jurisdiction_id
        if source.extensions:
            params["extensions"] = "true"
        if page is not None and source.page_size is not None:
            params["page"] = str(page)
            params["page_size"] = str(source.page_size)
        return params

    def _get(
        self, url: str, params: dict[str, str], what: str, container: str, confirm_empty: bool = False
    ) -> list[dict]:
        def parse(body: bytes) -> list[dict]:
            try:
                if self.source.format == "xml":
                    return parse_xml_list(body)
                return parse_json_list(body, container)
            except ValueError as exc:
                raise Open311Error(
                    f"{self.http.city_id}: {url} answered {what} with {exc}. {advice(404)}"
                ) from None

        return self.http.get(url, params, what, parse, confirm_empty=operator.not_ if confirm_empty else None)
