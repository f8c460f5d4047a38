"""The Open311 GeoReport v2 emulation: /requests.{json,xml} and /services.{json,xml}.

It holds its limits the way real servers do: a start_date/end_date span over
90 days is refused with a GeoReport error body, no dates means the 90 days
before the newest request, page_size is clamped, a wrong jurisdiction_id is
refused, and without paging an answer still stops at max_page_size rows (as
Toronto's does at 1000). Chicago's extensions (updated_after/updated_before, page/page_size,
extensions=true) are served when the instance is configured for them. Requests
are ordered by requested_datetime, then service_request_id; a recorded request
without requested_datetime (Boston's "submitted" rows) is placed and filtered
by its updated_datetime, as Boston's server listed them.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

import orjson

from ingestion.sources.http import Retryable
from ingestion.sources.open311.client import (
    EXTENSION_FIELDS,
    parse_json_list,
    parse_xml_list,
    w3c,
)
from ingestion.sources.timestamps import parse_instant
from tooling.replay.api import Response

MAX_SPAN = timedelta(days=90)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JSON = "application/json; charset=utf-8"
_XML = "text/xml; charset=utf-8"
Format = Literal["json", "xml"]


class _QueryError(ValueError):
    """A bad query; answered with a GeoReport error list."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Open311Api:
    """Recorded GeoReport v2 requests (and a service list) behind one endpoint."""

    def __init__(
        self,
        requests: Sequence[dict],
        services: Sequence[dict] | None = None,
        jurisdiction_id: str | None = None,
        max_page_size: int = 1000,
        supports_paging: bool = True,
        window_field: Literal["requested", "updated"] = "requested",
        format_default: Format = "json",
        api_key: str | None = None,
    ) -> None:
        self.jurisdiction_id = jurisdiction_id
        self.max_page_size = max_page_size
        self.supports_paging = supports_paging
        self.window_field = window_field
        self.format_default = format_default
        self._api_key = api_key
        self._services = [dict(s) for s in services or []]
        self._records = [copy.deepcopy(r) for r in requests]
        self._lock = threading.Lock()
        self._ordered: list[dict] | None = None

    def __repr__(self) -> str:  # never show the key
        return f"Open311Api(requests={len(self._records)}, jurisdiction_id={self.jurisdiction_id!r})"

    def snapshot(self) -> list[dict]:
        """Copies of the current requests, in the server's order."""
        with self._lock:
            return copy.deepcopy(self._in_order())

    # -- the Api protocol ----------------------------------------------------------------

    def is_data_request(self, path: str) -> bool:
        return path in ("/requests.json", "/requests.xml")

    def respond(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        resource, _, fmt = path.lstrip("/").partition(".")
        if resource not in ("requests", "services") or fmt not in ("json", "xml"):
            return self._error(self._format(path), 404, f"no route for {path}")
        if self._api_key is not None and _header(headers, "X-Api-Key") != self._api_key:
            return self._error(fmt, 401, "invalid or missing api key")
        wanted = params.get("jurisdiction_id")
        if wanted and self.jurisdiction_id and wanted != self.jurisdiction_id:
            return self._error(fmt, 404, f"jurisdiction_id {wanted!r} not found")
        if resource == "services":
            return _render(fmt, "services", "service", self._services)
        try:
            records = self._query(params)
        except _QueryError as exc:
            return self._error(fmt, exc.status, str(exc))
        return _render(fmt, "service_requests", "request", records)

    def empty_page(self, path: str, params: Mapping[str, str]) -> Response:
        return _render(self._format(path), "service_requests", "request", [])

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return self._error(self.format_default, status, message, headers)

    def apply_changes(self, inserts: Sequence[dict], updates: Sequence[dict]) -> None:
        """Insert requests; update requests by service_request_id (inserting unknown ones).
        A change without updated_datetime is stamped one second after the newest stamp."""
        with self._lock:
            stamp = w3c(max((_stamp(r) for r in self._records), default=_EPOCH) + timedelta(seconds=1))
            for record in inserts:
                row = copy.deepcopy(record)
                row.setdefault("requested_datetime", stamp)
                row.setdefault("updated_datetime", stamp)
                self._records.append(row)
            by_id: dict[str, list[dict]] = {}
            for row in self._records:
                if row.get("service_request_id"):
                    by_id.setdefault(str(row["service_request_id"]), []).append(row)
            for record in updates:
                row = {"updated_datetime": stamp} | copy.deepcopy(record)
                # Every recorded copy of the id (Boston's pages repeat some) takes the change.
                current = by_id.get(str(record.get("service_request_id") or ""), [])
                for existing in current:
                    existing.update(row)
                if not current:
                    row.setdefault("requested_datetime", stamp)
                    self._records.append(row)
                    if row.get("service_request_id"):
                        by_id[str(row["service_request_id"])] = [row]
            self._ordered = None

    # -- queries ---------------------------------------------------------------------------

    def _query(self, params: Mapping[str, str]) -> list[dict]:
        by_updated = self.window_field == "updated" and (
            "updated_after" in params or "updated_before" in params
        )
        low_name, high_name = (
            ("updated_after", "updated_before") if by_updated else ("start_date", "end_date")
        )
        low, high = _instant(params, low_name), _instant(params, high_name)
        with self._lock:
            ordered = self._in_order()
            if low is None and high is None:
                by_updated = False  # the spec's default window, on requested_datetime
                newest = max((_placed(r) for r in ordered), default=_EPOCH)
                low, high = newest - MAX_SPAN, newest
            elif low is None or high is None:
                # One bound given: the spec's 90 days reach from it.
                low, high = (low, low + MAX_SPAN) if high is None else (high - MAX_SPAN, high)
            if high < low:
                raise _QueryError(400, f"{low_name} must not be after {high_name}")
            if high - low > MAX_SPAN:
                raise _QueryError(400, f"{low_name} and {high_name} may not span more than 90 days")
            key = _stamp if by_updated else _placed
            matched = [r for r in ordered if low <= key(r) <= high and _wanted(r, params)]
            if self.supports_paging:
                page, size = _page(params, self.max_page_size)
                matched = matched[(page - 1) * size : page * size]
            else:
                # Servers without paging still cap an answer (Toronto: 1000 rows).
                matched = matched[: self.max_page_size]
            extended = params.get("extensions", "").lower() == "true"
            # Copies, so a change applied between pages never meets a body being written.
            return [{k: v for k, v in r.items() if extended or k not in EXTENSION_FIELDS} for r in matched]

    def _in_order(self) -> list[dict]:
        if self._ordered is None:
            self._ordered = sorted(
                self._records, key=lambda r: (_placed(r), str(r.get("service_request_id") or ""))
            )
        return self._ordered

    def _format(self, path: str) -> Format:
        return "xml" if path.endswith(".xml") else "json" if path.endswith(".json") else self.format_default

    def _error(
        self, fmt: Format, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        errors = [{"code": status, "description": message}]
        if fmt == "xml":
            return Response(status, _xml_body("errors", "error", errors), headers or {}, _XML)
        return Response(status, orjson.dumps(errors), headers or {}, _JSON)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _instant(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_instant(raw, UTC)
    if moment is None:
        raise _QueryError(400, f"{name} must be a W3C datetime such as 2010-01-01T00:00:00Z, got {raw!r}")
    return moment


def _page(params: Mapping[str, str], max_page_size: int) -> tuple[int, int]:
    values = []
    for name, default in (("page", 1), ("page_size", max_page_size)):
        raw = params.get(name) or str(default)
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise _QueryError(400, f"{name} must be a positive integer, got {raw!r}")
        values.append(int(raw))
    return values[0], min(values[1], max_page_size)


def _wanted(record: dict, params: Mapping[str, str]) -> bool:
    for name in ("status", "service_code", "service_request_id"):
        if params.get(name) and str(record.get(name)) not in params[name].split(","):
            return False
    return True


def _stamp(record: dict) -> datetime:
    """updated_datetime, else requested_datetime (Toronto leaves updated_datetime empty)."""
    for name in ("updated_datetime", "requested_datetime"):
        moment = parse_instant(record.get(name), UTC)
        if moment is not None:
            return moment
    return _EPOCH


def _placed(record: dict) -> datetime:
    """requested_datetime, else updated_datetime (Boston's rows without an id have none)."""
    return parse_instant(record.get("requested_datetime"), UTC) or _stamp(record)


# -- rendering ----------------------------------------------------------------------------


def _render(fmt: Format, container: str, item: str, records: list[dict]) -> Response:
    if fmt == "xml":
        return Response(200, _xml_body(container, item, records), content_type=_XML)
    return Response(200, orjson.dumps(records), content_type=_JSON)


def _xml_body(container: str, item: str, records: list[dict]) -> bytes:
    root = ElementTree.Element(container)
    for record in records:
        _xml_fill(ElementTree.SubElement(root, item), record)
    return ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)


def _xml_fill(element: ElementTree.Element, value: object) -> None:
    """Mirror a JSON value: objects as child elements, arrays as repeated singular
    children (<notes><note/>...), null as an empty element."""
    if isinstance(value, dict):
        for key, child in value.items():
            _xml_fill(ElementTree.SubElement(element, key), child)
    elif isinstance(value, list):
        tag = element.tag[:-1] if element.tag.endswith("s") else "item"
        for child in value:
            _xml_fill(ElementTree.SubElement(element, tag), child)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


# -- recorded files -------------------------------------------------------------------------


def load_open311_records(path: Path) -> list[dict]:
    """Requests or services from a recorded file: a JSON array (or {"service_requests": [...]}),
    one JSON object per line (Boston's pages, with stray brackets and commas), or XML."""
    path = Path(path)
    body = path.read_bytes()
    if path.suffix.lower() == ".xml":
        return parse_xml_list(body)
    try:
        return parse_json_list(body, "service_requests")
    except (Retryable, ValueError):
        records = []  # not one JSON document: one record per line
    for number, line in enumerate(body.decode("utf-8").splitlines(), start=1):
        text = line.strip().lstrip("[").rstrip(",").rstrip("]").rstrip(",").strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not a JSON object ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {number} is not a JSON object")
        records.append(record)
    return records
