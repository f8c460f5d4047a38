"""The CKAN DataStore emulation: /api/3/action/datastore_search over recorded records.

Answers the way CKAN 2.9+ does: `{"success": true, "help": ..., "result": {...}}`,
or `{"success": false, "error": {...}}` with HTTP 403/404/409. Records are served
as from a resource loaded from the city's CSV, whose columns are all text: every
value a string, and an empty cell an empty string (the CSV cannot tell an empty
cell from a null, and a text loader keeps what the file says; Boston's blank
" " cells stay " " too). A column can be re-typed (`set_field_type`) to emulate
a reload with a changed data dictionary: numeric and int values are then served
as JSON numbers and empty cells as null, as CKAN does.

Each record gets the DataStore's `_id` (1..n in load order). Boston reloads its
resources nightly, which reassigns every `_id`; `reload()` does that (a seeded
shuffle of the load order), and by default every change between pages arrives
through one, as it does at Boston.
"""

from __future__ import annotations

import csv
import json
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlencode

from tooling.replay.api import Response, json_response

SEARCH_PATH = "/api/3/action/datastore_search"
DEFAULT_LIMIT = 100
MAX_LIMIT = 32_000  # CKAN's ckan.datastore.search.rows_max default; larger limits are clamped
HELP = "/api/3/action/help_show?name=datastore_search"
INTERNAL_FIELDS = ("_id", "_full_text")
_NUMERIC = re.compile(r"-?\d+(?:\.\d+)?")
_ERROR_TYPES = {403: "Authorization Error", 404: "Not Found Error", 409: "Validation Error"}


class _Invalid(ValueError):
    """A bad parameter; answered with CKAN's 409 validation body `{field: [message]}`."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def load_ckan_records(path: Path) -> list[dict]:
    """Read a CKAN-style CSV export (Boston's yearly 311 files) into records.

    The header names are the DataStore's field ids as they are; every cell is kept as
    its text, empty cells included. A DataStore dump's own `_id` column is dropped:
    the replay assigns `_id`s itself.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return []
        if any(not name.strip() for name in header) or len(set(header)) != len(header):
            raise ValueError(f"{path}: the header needs a unique, non-empty name for every column")
        records = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}: line {reader.line_num} has {len(row)} cells, the header {len(header)}"
                )
            record = dict(zip(header, row, strict=True))
            for name in INTERNAL_FIELDS:
                record.pop(name, None)
            records.append(record)
        return records


class _Resource:
    """One DataStore table: its columns (with types) and its rows in load order."""

    def __init__(self, records: Sequence[Mapping[str, object]], fields: Sequence[str] = ()):
        self.types: dict[str, str] = dict.fromkeys(fields, "text")
        self.rows: list[dict] = []
        self.append(records)

    def append(self, records: Sequence[Mapping[str, object]]) -> None:
        for record in records:
            for name in record:
                if name not in INTERNAL_FIELDS:
                    self.types.setdefault(name, "text")
            self.rows.append({k: _text(v) for k, v in record.items() if k not in INTERNAL_FIELDS})

    def served(self, row: dict, position: int) -> dict:
        """A row as CKAN answers it: `_id` first, then every column of the table."""
        out: dict[str, object] = {"_id": position + 1}
        for name, kind in self.types.items():
            out[name] = _typed(row.get(name, ""), kind)
        return out


class CkanApi:
    """DataStore resources served at /api/3/action/datastore_search."""

    def __init__(
        self,
        resources: dict[str, list[dict]],
        max_limit: int = MAX_LIMIT,
        *,
        id_field: str = "case_enquiry_id",
        api_key: str | None = None,
        reload_on_change: bool = True,
        seed: int = 311,
    ) -> None:
        self.max_limit = max_limit
        # Updates between pages find their row by the city's own id, as a reload would.
        self.id_field = id_field
        self.reload_on_change = reload_on_change
        self._api_key = api_key
        self._random = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not crypto
        self._resources = {rid: _Resource(records) for rid, records in resources.items()}
        self._lock = threading.RLock()
        self._last: str | None = None
        self.reloads = 0

    def __repr__(self) -> str:  # never show the key
        return f"CkanApi(resources={sorted(self._resources)})"

    # -- what a test may do between pages ------------------------------------------------

    def add_resource(self, resource_id: str, records: list[dict], fields: Sequence[str] = ()) -> None:
        """Serve another resource; `fields` gives an empty table its columns."""
        with self._lock:
            self._resources[resource_id] = _Resource(records, fields)

    def records(self, resource_id: str) -> list[dict]:
        """The resource's rows as served, in `_id` order."""
        with self._lock:
            resource = self._resources[resource_id]
            return [resource.served(row, i) for i, row in enumerate(resource.rows)]

    def set_field_type(self, resource_id: str, field: str, kind: str) -> None:
        """Re-type a column (text, numeric, int, timestamp), as a data dictionary edit does."""
        if kind not in ("text", "numeric", "int", "timestamp"):
            raise ValueError(f"unsupported DataStore type {kind!r}")
        with self._lock:
            self._resources[resource_id].types[field] = kind

    def reload(self, resource_id: str | None = None) -> None:
        """Reload resources as Boston does nightly: same rows, new load order, new `_id`s."""
        with self._lock:
            for rid in [resource_id] if resource_id else list(self._resources):
                rows = self._resources[rid].rows
                before = list(rows)
                self._random.shuffle(rows)
                if len(rows) > 1 and rows == before:  # a shuffle may keep the order; a reload must not
                    rows.append(rows.pop(0))
            self.reloads += 1

    def apply_changes(self, inserts: Sequence[dict], updates: Sequence[dict]) -> None:
        # Changes go to the resource the last page came from (a test replays one at a time).
        with self._lock:
            rid = self._last or next(iter(self._resources), None)
            if rid is None:
                return
            resource = self._resources[rid]
            resource.append(inserts)
            by_id = {row.get(self.id_field): row for row in resource.rows}
            for update in updates:
                row = by_id.get(_text(update.get(self.id_field)))
                if row is None:
                    resource.append([update])
                    continue
                for name in update:
                    if name not in INTERNAL_FIELDS:
                        resource.types.setdefault(name, "text")
                row.update({k: _text(v) for k, v in update.items() if k not in INTERNAL_FIELDS})
            if self.reload_on_change:
                self.reload(rid)

    # -- the Api protocol -------------------------------------------------------------------

    def is_data_request(self, path: str) -> bool:
        return path.rstrip("/") == SEARCH_PATH

    def respond(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        if not self.is_data_request(path):
            return self.error(404, f"Not found: no action at {path}")
        if self._api_key is not None and _header(headers, "Authorization") != self._api_key:
            return self.error(403, "Access denied: the API token is missing or invalid")
        rid = params.get("resource_id")
        if not rid:
            return self._invalid("resource_id", "Missing value")
        with self._lock:
            resource = self._resources.get(rid)
            if resource is None:
                return self.error(404, f'Not found: Resource "{rid}" was not found.')
            try:
                result = self._search(rid, resource, params)
            except _Invalid as exc:
                return self._invalid(exc.field, str(exc))
            self._last = rid
        return json_response({"help": HELP, "success": True, "result": result})

    def empty_page(self, path: str, params: Mapping[str, str]) -> Response:
        """A flaky answer: well-formed, the true `total`, but no records."""
        response = self.respond(path, params, {"Authorization": self._api_key or ""})
        if response.status != 200:
            return response
        answer = json.loads(response.body)
        answer["result"]["records"] = []
        return json_response(answer)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        error = {"message": message, "__type": _ERROR_TYPES.get(status, "Internal Server Error")}
        return json_response({"help": HELP, "success": False, "error": error}, status, headers)

    def _invalid(self, field: str, message: str) -> Response:
        error = {field: [message], "__type": "Validation Error"}
        return json_response({"help": HELP, "success": False, "error": error}, 409)

    # -- the query ------------------------------------------------------------------------------

    def _search(self, rid: str, resource: _Resource, params: Mapping[str, str]) -> dict:
        limit = min(_integer(params, "limit", DEFAULT_LIMIT), self.max_limit)
        offset = _integer(params, "offset", 0)
        positions = list(range(len(resource.rows)))
        filters = _json_param(params, "filters")
        if filters:
            positions = [p for p in positions if _matches(resource, resource.rows[p], filters)]
        if q := params.get("q"):
            positions = [p for p in positions if _contains(resource.rows[p], q)]
        sort = params.get("sort") or ""
        # Applied last key first: Python's sort is stable, so earlier keys win.
        for name, descending in reversed(_sort_keys(resource, sort)):
            positions.sort(key=_sort_key(resource, name), reverse=descending)
        page = positions[offset : offset + limit]
        fields = [{"id": "_id", "type": "int"}] + [{"id": n, "type": t} for n, t in resource.types.items()]
        query = {k: v for k, v in params.items() if k in ("limit", "sort", "filters", "q")}
        query["resource_id"] = rid
        result: dict[str, object] = {
            "include_total": True,
            "limit": limit,
            "records_format": "objects",
            "resource_id": rid,
            "total_estimation_threshold": None,
            "records": [resource.served(resource.rows[p], p) for p in page],
            "fields": fields,
            "_links": {
                "start": f"{SEARCH_PATH}?{urlencode(query)}",
                "next": f"{SEARCH_PATH}?{urlencode({'offset': offset + limit} | query)}",
            },
            "total": len(positions),
            "total_was_estimated": False,
        }
        if offset:
            result["offset"] = offset
        if sort:
            result["sort"] = sort
        if filters:
            result["filters"] = filters
        return result


def _text(value: object) -> str:
    """A value as a text column holds it (an empty cell for a missing one)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _typed(value: str, kind: str) -> object:
    """A stored cell as CKAN's JSON renders a column of `kind`."""
    if kind == "text":
        return value
    if not value.strip():
        return None
    if kind == "timestamp":
        return value.strip().replace(" ", "T", 1)
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return value  # the loader would have refused the row; keep it visible instead
    return int(number) if kind == "int" else float(number)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _integer(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise _Invalid(name, "Invalid integer")
    return int(raw)


def _json_param(params: Mapping[str, str], name: str) -> dict:
    raw = params.get(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise _Invalid(name, "Cannot parse JSON") from None
    if not isinstance(value, dict):
        raise _Invalid(name, "Not a json object")
    return value


def _check_field(resource: _Resource, param: str, name: str) -> None:
    if name != "_id" and name not in resource.types:
        raise _Invalid(param, f'field "{name}" not in the table')


def _matches(resource: _Resource, row: dict, filters: dict) -> bool:
    for name, wanted in filters.items():
        _check_field(resource, "filters", name)
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if row.get(name, "") not in {_text(v) for v in allowed}:
            return False
    return True


def _contains(row: dict, q: str) -> bool:
    """Full-text search, simplified to a case-insensitive substring of any value (or of
    the named fields when `q` is a JSON object)."""
    try:
        per_field = json.loads(q)
    except json.JSONDecodeError:
        per_field = None
    if isinstance(per_field, dict):
        return all(str(text).lower() in row.get(name, "").lower() for name, text in per_field.items())
    needle = q.lower()
    return any(needle in value.lower() for value in row.values())


def _sort_keys(resource: _Resource, sort: str) -> list[tuple[str, bool]]:
    keys = []
    for part in filter(None, (p.strip() for p in sort.split(","))):
        name, _, direction = part.partition(" ")
        name, direction = name.strip('"'), direction.strip().lower() or "asc"
        if direction not in ("asc", "desc"):
            raise _Invalid("sort", f'invalid sort direction "{direction}"')
        _check_field(resource, "sort", name)
        keys.append((name, direction == "desc"))
    return keys


def _sort_key(resource: _Resource, name: str) -> Callable[[int], object]:
    """The sort key of a row position. Numbers sort as numbers when every non-empty
    value of the column looks like one (as a numeric column would; a text column of
    fixed-width ids sorts the same); empty cells first, as empty strings sort in text."""
    if name == "_id":
        return lambda position: position
    values = [row.get(name, "") for row in resource.rows]
    if all(_NUMERIC.fullmatch(v.strip()) for v in values if v.strip()):

        def numeric(position: int) -> tuple[int, Decimal]:
            value = resource.rows[position].get(name, "").strip()
            return (1, Decimal(value)) if value else (0, Decimal(0))

        return numeric
    return lambda position: resource.rows[position].get(name, "")
