"""The Socrata SODA 2.0 emulation: /resource/<dataset>.json with SoQL paging, and the
count by day a reconciliation asks (`$select=date_trunc_ymd(:updated_at) AS day,
count(*) AS records&$group=day`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from tooling.replay.api import Response, json_response
from tooling.replay.dataset import Dataset
from tooling.replay.records import DEFAULT_CREATED_FIELD, DEFAULT_UPDATED_AT_FIELDS, iter_records
from tooling.replay.soql import SoqlError, is_field_name, parse_daily_count, quote

CATALOG_PATH = "/api/catalog/v1"  # the Discovery API, as each portal's domain serves it
DEFAULT_LIMIT = 1000
MAX_LIMIT = 50_000  # SODA 2.0 silently clamps larger $limit values to this
_SOQL_PARAMS = frozenset({"$select", "$where", "$order", "$limit", "$offset", "$group"})
_CODES = {429: "too_many_requests", 500: "internal_error", 503: "service_unavailable"}


class _QueryError(ValueError):
    """A bad $-parameter; answered with Socrata's 400 body."""


@dataclass(frozen=True)
class _Query:
    where: str | None
    order: str
    limit: int
    offset: int
    system: bool


class SocrataApi:
    """Datasets served at /resource/<id>.json, optionally behind an X-App-Token."""

    def __init__(self, app_token: str | None = None, echo_rejected_token: bool = False) -> None:
        self._app_token = app_token
        # A careless portal quotes the token it refuses: the client must not repeat it.
        self._echo_rejected_token = echo_rejected_token
        self._datasets: dict[str, Dataset] = {}
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()
        self._last: Dataset | None = None

    def __repr__(self) -> str:  # never show the token
        return f"SocrataApi(datasets={sorted(self._datasets)})"

    def add_dataset(
        self,
        dataset_id: str,
        records: Iterable[dict] | Path,
        id_field: str = "unique_key",
        updated_at_fields: Sequence[str] = DEFAULT_UPDATED_AT_FIELDS,
        created_field: str = DEFAULT_CREATED_FIELD,
        name: str | None = None,
    ) -> Dataset:
        """Serve `records` as `dataset_id`; `name` is what the catalog calls it."""
        if isinstance(records, str | PathLike):
            records = iter_records(Path(records))
        dataset = Dataset(
            dataset_id,
            records,
            id_field=id_field,
            updated_at_fields=updated_at_fields,
            created_field=created_field,
        )
        with self._lock:
            self._datasets[dataset_id] = dataset
            self._names[dataset_id] = name or dataset_id
        return dataset

    def dataset(self, dataset_id: str) -> Dataset:
        return self._datasets[dataset_id]

    def _dataset_for(self, path: str) -> Dataset | None:
        if not (path.startswith("/resource/") and path.endswith(".json")):
            return None
        return self._datasets.get(path[len("/resource/") : -len(".json")])

    def is_data_request(self, path: str) -> bool:
        return path.startswith("/resource/")

    def respond(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        return self.respond_lagging(path, params, headers, 0)

    def respond_lagging(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str], rows: int
    ) -> Response:
        """The answer of a replica `rows` changes behind: of the rows the request
        matches it lacks the `rows` that changed last, so a page misses them and a count
        leaves them out (0: an up-to-date replica)."""
        if path == CATALOG_PATH:
            return self._catalog(params)
        if not self.is_data_request(path) or not path.endswith(".json"):
            return self.error(404, f"no route for {path}")
        if self._app_token is not None and (presented := headers.get("X-App-Token")) != self._app_token:
            quoted = f" {presented!r}" if self._echo_rejected_token and presented else ""
            return self.error(403, f"invalid or missing X-App-Token{quoted}", code="permission_denied")
        dataset = self._dataset_for(path)
        if dataset is None:
            return self.error(404, f"dataset {path[len('/resource/') : -5]!r} not found", code="not_found")
        try:
            query = _parse_query(params)
            if "$group" in params or "count(" in params.get("$select", "").lower():
                daily = parse_daily_count(
                    params.get("$select", ""), params.get("$group", ""), params.get("$order")
                )
                body = dataset.count_by_day(
                    where=query.where, query=daily, limit=query.limit, offset=query.offset, lagging=rows
                )
            else:
                body, _ = dataset.page(
                    where=query.where,
                    order=query.order,
                    limit=query.limit,
                    offset=query.offset,
                    system=query.system,
                    lagging=rows,
                )
        except (SoqlError, _QueryError) as exc:
            return self.error(400, str(exc), code="query.compiler.malformed")
        self._last = dataset
        return Response(200, body)

    def _catalog(self, params: Mapping[str, str]) -> Response:
        """The Discovery API's answer over the datasets served: `ids` picks one, `q` keeps
        the datasets whose name holds every word of it (case aside)."""
        with self._lock:
            named = sorted(self._names.items())
        if ids := params.get("ids"):
            named = [(i, n) for i, n in named if i in ids.split(",")]
        if words := params.get("q", "").casefold().split():
            named = [(i, n) for i, n in named if all(word in n.casefold().split() for word in words)]
        try:
            limit = _non_negative(params, "limit", 100)
        except _QueryError as exc:
            return self.error(400, str(exc), code="query.compiler.malformed")
        results = [
            {"resource": {"id": i, "name": n, "type": "dataset"}, "metadata": {}} for i, n in named[:limit]
        ]
        return json_response({"results": results, "resultSetSize": len(named), "timings": {}})

    def empty_page(self, path: str, params: Mapping[str, str]) -> Response:
        return Response(200, b"[]")

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None
    ) -> Response:
        body = json.dumps({"code": code or _CODES.get(status, "error"), "error": True, "message": message})
        return Response(status, body.encode(), headers or {})

    def apply_changes(self, inserts: Sequence[dict], updates: Sequence[dict]) -> None:
        # Changes go to the dataset the last page came from (a test replays one at a time).
        target = self._last or next(iter(self._datasets.values()), None)
        if target is not None:
            target.apply_changes(inserts, updates)


def _parse_query(params: Mapping[str, str]) -> _Query:
    unsupported = sorted(
        k for k in params if k.startswith("$") and not k.startswith("$$") and k not in _SOQL_PARAMS
    )
    if unsupported:
        raise _QueryError(f"unsupported parameter(s): {', '.join(unsupported)}")
    where = params.get("$where") or None
    # Socrata's simple filters: ?borough=BROOKLYN means borough = 'BROOKLYN'.
    filters = []
    for name, value in params.items():
        if name.startswith("$"):
            continue
        if not is_field_name(name):
            raise _QueryError(f"invalid field name in simple filter: {name!r}")
        filters.append(f"{name} = {quote(value)}")
    if filters:
        # Only wrapped when needed, so error positions match the client's own $where.
        where = " AND ".join(([f"({where})"] if where else []) + filters)
    return _Query(
        where=where,
        order=params.get("$order") or ":id",
        limit=min(_non_negative(params, "$limit", DEFAULT_LIMIT), MAX_LIMIT),
        offset=_non_negative(params, "$offset", 0),
        system=":*" in params.get("$select", ""),
    )


def _non_negative(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise _QueryError(f"{name} must be a non-negative integer, got {raw!r}")
    return int(raw)
