"""A local stand-in for the city APIs, with scriptable failures.

Each protocol's emulation (`SocrataApi`, `Open311Api`, ...) is mounted under a
path prefix, one per city: `/<city_id>/resource/<dataset>.json`,
`/<city_id>/requests.json`, ... The server adds what is common to every
protocol: the fault plan (errors, delays, truncated or empty pages, lagging
replicas, records changed between pages), an optional rate limit, and a request log that never
holds a credential.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ingestion.redact import get_logger, redact
from tooling.replay.api import Api, Response
from tooling.replay.dataset import Dataset
from tooling.replay.records import DEFAULT_CREATED_FIELD, DEFAULT_UPDATED_AT_FIELDS
from tooling.replay.socrata import MAX_LIMIT, SocrataApi

logger = get_logger("civic311.replay")

__all__ = ["MAX_LIMIT", "Fault", "FaultPlan", "RateLimit", "RecordedRequest", "ReplayServer"]

# Credentials some clients pass as query parameters; they must never reach a log line.
_SECRET_PARAMS = ("$$app_token", "api_key", "apikey", "key", "token")
_SECRET_HEADERS = ("x-app-token", "authorization", "x-api-key")
_REDACTED = "[redacted]"


@dataclass
class Fault:
    """One scripted misbehaviour, used up by a single data request."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    truncate: bool = False
    # A well-formed page with no records, as a flaky server sometimes answers.
    empty: bool = False
    # An answer from a replica `lagging` changes behind: of the rows the request matches,
    # it lacks the `lagging` that changed last. A page misses them, a count leaves them
    # out. Socrata's replicas disagree like this.
    lagging: int = 0


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
    had_credential: bool
    status: int


@dataclass
class RateLimit:
    """At most `requests` data requests per `per_seconds`; more get 429 with Retry-After."""

    requests: int
    per_seconds: float = 60.0
    _times: deque = field(default_factory=deque, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def wait_needed(self) -> float | None:
        """None when the request may go ahead (and is counted), else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            while self._times and now - self._times[0] >= self.per_seconds:
                self._times.popleft()
            if len(self._times) >= self.requests:
                return self.per_seconds - (now - self._times[0])
            self._times.append(now)
            return None


class ReplayServer:
    """Serves mounted protocol APIs over HTTP on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        app_token: str | None = None,
        rate_limit: RateLimit | None = None,
        echo_rejected_token: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.faults = faults
        self.rate_limit = rate_limit
        self._app_token = app_token
        self._echo_rejected_token = echo_rejected_token
        self._mounts: dict[str, Api] = {}
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

    def mount(self, prefix: str, api: Api) -> Api:
        """Serve `api` under `prefix` (e.g. "/chicago"; "" for the root)."""
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        with self._lock:
            self._mounts[prefix] = api
        return api

    def mounted(self, prefix: str) -> Api | None:
        return self._mounts.get("/" + prefix.strip("/") if prefix.strip("/") else "")

    def add_dataset(
        self,
        dataset_id: str,
        records: Iterable[dict] | Path,
        id_field: str = "unique_key",
        updated_at_fields: Sequence[str] = DEFAULT_UPDATED_AT_FIELDS,
        created_field: str = DEFAULT_CREATED_FIELD,
        prefix: str = "",
        name: str | None = None,
    ) -> Dataset:
        """Serve a SODA dataset at `{prefix}/resource/{dataset_id}.json`, listed in the
        catalog at `{prefix}/api/catalog/v1` as `name`."""
        api = self.mounted(prefix)
        if api is None:
            api = self.mount(prefix, SocrataApi(self._app_token, self._echo_rejected_token))
        if not isinstance(api, SocrataApi):
            raise ValueError(f"{prefix or '/'} already serves {type(api).__name__}, not Socrata")
        return api.add_dataset(dataset_id, records, id_field, updated_at_fields, created_field, name)

    def dataset(self, dataset_id: str, prefix: str = "") -> Dataset:
        api = self.mounted(prefix)
        if not isinstance(api, SocrataApi):
            raise KeyError(dataset_id)
        return api.dataset(dataset_id)

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

    def serve_forever(self, ready: Callable[[], None] | None = None) -> None:
        """Serve on the calling thread until interrupted. `ready` runs once the socket
        listens, so whatever it announces can be connected to at once."""
        self._httpd = _HTTPServer((self.host, self.port), self)
        logger.info("replay server listening at %s", self.url)
        if ready is not None:
            ready()
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
        headers = {name: handler.headers[name] for name in handler.headers.keys()}
        response = self._respond(split.path, params, headers)
        # Recorded before the bytes go out, so a client that has its answer can rely on
        # seeing its request in `.requests`.
        query = {k: _REDACTED if k.lower() in _SECRET_PARAMS else v for k, v in params.items()}
        lowered = {name.lower() for name in headers}
        entry = RecordedRequest(
            method=handler.command,
            path=split.path,
            query=query,
            header_names=tuple(headers),
            had_app_token="x-app-token" in lowered,
            had_credential=bool(lowered & set(_SECRET_HEADERS))
            or any(k.lower() in _SECRET_PARAMS for k in params),
            status=response.status,
        )
        with self._lock:
            self._requests.append(entry)
        _send(handler, response)

    def _route(self, path: str) -> tuple[Api, str] | None:
        for prefix in sorted(self._mounts, key=len, reverse=True):
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                return self._mounts[prefix], path[len(prefix) :] or "/"
        return None

    def _respond(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Response:
        routed = self._route(path)
        if routed is None:
            return Response(404, b'{"error":true,"message":"no route"}')
        api, relative = routed
        if not api.is_data_request(relative):
            return api.respond(relative, params, headers)
        if self.rate_limit is not None and (wait := self.rate_limit.wait_needed()) is not None:
            return api.error(429, "rate limit exceeded", {"Retry-After": f"{max(wait, 0.01):.2f}"})
        plan = self.faults
        fault = plan.next_fault() if plan is not None else None
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            # Fractions are not standard Retry-After, but they keep fault tests fast.
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return api.error(fault.status, "injected fault", extra)
        if fault is not None and fault.empty:
            return api.empty_page(relative, params)
        if fault is not None and fault.lagging:
            if not isinstance(api, SocrataApi):
                name = type(api).__name__
                return api.error(501, f"the replay has lagging replicas for Socrata only, not {name}")
            response = api.respond_lagging(relative, params, headers, fault.lagging)
        else:
            response = api.respond(relative, params, headers)
        if response.status != 200:
            return response
        if fault is not None and fault.truncate:
            # Correct Content-Length for the cut body, so only parsing can notice.
            return Response(
                200, response.body[: len(response.body) // 2], response.headers, response.content_type
            )
        self._after_page(api)
        return response

    def _after_page(self, api: Api) -> None:
        # Applied before the page is written, not after: once the client has the bytes it
        # may ask for the next page, and must already see the change.
        with self._lock:
            self._pages_served += 1
            page = self._pages_served
        plan = self.faults
        if plan is not None:
            inserts, updates = plan.changes_after(page)
            if inserts or updates:
                api.apply_changes(inserts, updates)


def _send(handler: _Handler, response: Response) -> None:
    try:
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
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
            _send(self, Response(500, b'{"error":true,"message":"replay server error"}'))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # _handle() already logged method, path and query; nothing more is wanted.
        return

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # Reached for protocol errors; the text may include the request line, never headers.
        logger.debug("%s", redact(format % args))
