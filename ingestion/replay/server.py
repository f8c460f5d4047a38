"""A local stand-in for a Socrata SODA 2.0 endpoint, with scriptable failures."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from os import PathLike
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ingestion.replay.dataset import Dataset
from ingestion.replay.records import (
    DEFAULT_CREATED_FIELD,
    DEFAULT_UPDATED_AT_FIELDS,
    load_records,
)
from ingestion.replay.soql import SoqlError, is_field_name, quote

logger = logging.getLogger("civic311.replay")

DEFAULT_LIMIT = 1000
MAX_LIMIT = 50_000  # SODA 2.0 silently clamps larger $limit values to this
_RESOURCE = re.compile(r"/resource/([^/]+)\.json")
_SOQL_PARAMS = frozenset({"$select", "$where", "$order", "$limit", "$offset"})
# Socrata also accepts the token as a query parameter; it must never reach a log line.
_TOKEN_PARAM = re.compile(r"((?:\$|%24){2}app_token=)[^&\s]*", re.IGNORECASE)
_REDACTED = "[redacted]"
_FAULT_CODES = {429: "too_many_requests", 500: "internal_error", 503: "service_unavailable"}


@dataclass
class Fault:
    """One scripted misbehaviour, used up by a single data request."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    truncate: bool = False


@dataclass
class FaultPlan:
    """Faults to hand out in order, and data changes to make between pages."""

    queue: list[Fault] = field(default_factory=list)
    insert_after_page: dict[int, list[dict]] = field(default_factory=dict)
    update_after_page: dict[int, list[dict]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self.queue.pop(0) if self.queue else None

    def changes_after(self, page: int) -> tuple[list[dict], list[dict]]:
        """Pop the inserts and updates due after data page `page` (1-based)."""
        with self._lock:
            return self.insert_after_page.pop(page, []), self.update_after_page.pop(page, [])


@dataclass(frozen=True)
class RecordedRequest:
    """What a test may inspect about a request; header values are deliberately absent."""

    method: str
    path: str
    query: dict[str, str]
    header_names: tuple[str, ...]
    had_app_token: bool
    status: int


class _QueryError(ValueError):
    """A bad $-parameter; answered with Socrata's 400 body."""


@dataclass(frozen=True)
class _Query:
    where: str | None
    order: str
    limit: int
    offset: int
    system: bool


class ReplayServer:
    """Serves datasets at /resource/<id>.json; use as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        app_token: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.faults = faults
        self._app_token = app_token
        self._datasets: dict[str, Dataset] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._pages_served = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # explicit so the token can never leak through repr
        return f"ReplayServer(host={self.host!r}, port={self.port!r})"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def pages_served(self) -> int:
        """Successful data pages so far; insert/update_after_page count against this."""
        return self._pages_served

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add_dataset(
        self,
        dataset_id: str,
        records: list[dict] | Path,
        id_field: str = "unique_key",
        updated_at_fields: Sequence[str] = DEFAULT_UPDATED_AT_FIELDS,
        created_field: str = DEFAULT_CREATED_FIELD,
    ) -> Dataset:
        if isinstance(records, str | PathLike):
            records = load_records(Path(records))
        dataset = Dataset(
            dataset_id,
            records,
            id_field=id_field,
            updated_at_fields=updated_at_fields,
            created_field=created_field,
        )
        with self._lock:
            self._datasets[dataset_id] = dataset
        return dataset

    def dataset(self, dataset_id: str) -> Dataset:
        return self._datasets[dataset_id]

    def start(self) -> ReplayServer:
        if self._httpd is not None:
            raise RuntimeError("ReplayServer is already started")
        self._httpd = _HTTPServer((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # short, so stop() returns promptly in tests
            name=f"replay-{self._httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        logger.info("replay server listening at %s", self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted."""
        self._httpd = _HTTPServer((self.host, self.port), self)
        logger.info("replay server listening at %s", self.url)
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            logger.info("replay server interrupted")
        finally:
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (runs on handler threads) ------------------------------------

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        logger.debug("%s %s %s", handler.command, split.path, redact(split.query))
        given_token = handler.headers.get("X-App-Token")
        response = self._respond(split.path, params, given_token)
        # Recorded before the bytes go out, so a client that has its answer can rely on
        # seeing its request in `.requests`.
        query = {k: _REDACTED if k.lower() == "$$app_token" else v for k, v in params.items()}
        entry = RecordedRequest(
            method=handler.command,
            path=split.path,
            query=query,
            header_names=tuple(handler.headers.keys()),
            had_app_token=given_token is not None,
            status=response.status,
        )
        with self._lock:
            self._requests.append(entry)
        _send(handler, response)

    def _respond(self, path: str, params: dict[str, str], given_token: str | None) -> _Response:
        match = _RESOURCE.fullmatch(path)
        if match is None:
            return _error(404, "not_found", f"no route for {path}")
        plan = self.faults
        fault = plan.next_fault() if plan is not None else None
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            headers = {}
            if fault.retry_after is not None:
                # Fractions are not standard Retry-After, but they keep fault tests fast.
                headers["Retry-After"] = f"{fault.retry_after:g}"
            code = _FAULT_CODES.get(fault.status, "error")
            return _error(fault.status, code, "injected fault", headers)

        if self._app_token is not None and given_token != self._app_token:
            return _error(403, "permission_denied", "invalid or missing X-App-Token")
        dataset = self._datasets.get(match.group(1))
        if dataset is None:
            return _error(404, "not_found", f"dataset {match.group(1)!r} not found")
        try:
            query = _parse_query(params)
            body, _ = dataset.page(
                where=query.where,
                order=query.order,
                limit=query.limit,
                offset=query.offset,
                system=query.system,
            )
        except (SoqlError, _QueryError) as exc:
            return _error(400, "query.compiler.malformed", str(exc))

        if fault is not None and fault.truncate:
            # Correct Content-Length for the cut body, so only JSON parsing can notice.
            return _Response(200, body[: len(body) // 2])
        self._after_page(dataset)
        return _Response(200, body)

    def _after_page(self, dataset: Dataset) -> None:
        # Applied before the page is written, not after: once the client has the bytes it
        # may ask for the next page, and must already see the change.
        with self._lock:
            self._pages_served += 1
            page = self._pages_served
        plan = self.faults
        if plan is not None:
            inserts, updates = plan.changes_after(page)
            dataset.apply_changes(inserts, updates)


def _parse_query(params: dict[str, str]) -> _Query:
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


def _non_negative(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise _QueryError(f"{name} must be a non-negative integer, got {raw!r}")
    return int(raw)


def redact(text: str) -> str:
    """Hide an app token passed as a query parameter."""
    return _TOKEN_PARAM.sub(r"\1" + _REDACTED, text)


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps({"code": code, "error": True, "message": message}).encode()
    return _Response(status, body, headers or {})


def _send(handler: _Handler, response: _Response) -> None:
    try:
        handler.send_response(response.status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(response.body)
    except (BrokenPipeError, ConnectionResetError):
        # A client that gave up (say, a timeout test) is not a server error.
        handler.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], replay: ReplayServer) -> None:
        self.replay = replay
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # socketserver would print a traceback to stderr (say, a client hanging up); the
        # replay only speaks through logging.
        logger.debug("connection from %s failed", client_address[0], exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: paging clients reuse one connection
    server_version = "civic311-replay"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out as two writes
    timeout = 60  # idle keep-alive connections must not pin threads forever

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        try:
            self.server.replay._handle(self)
        except Exception:
            logger.exception("replay request failed: %s", redact(self.path))
            _send(self, _error(500, "internal_error", "replay server error"))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # _handle() already logged method, path and query; nothing more is wanted.
        return

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # Reached for protocol errors; the text may include the request line, never headers.
        logger.debug("%s", redact(format % args))


def serve_forever(
    datasets: dict[str, Path],
    host: str = "127.0.0.1",
    port: int = 8311,
    faults: FaultPlan | None = None,
) -> None:
    """Blocking server for `civic311 replay`."""
    server = ReplayServer(host=host, port=port, faults=faults)
    for dataset_id, path in datasets.items():
        dataset = server.add_dataset(dataset_id, path)
        logger.info("loaded %d records for %s from %s", len(dataset), dataset_id, path)
    server.serve_forever()
