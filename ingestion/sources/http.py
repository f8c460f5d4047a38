"""The HTTP side every adapter shares: retries, pacing, and errors that say what to do.

A request is retried on 429, 5xx, timeouts, dropped connections and bodies that
do not parse (a truncated page): the page is fetched again whole, so a partial
body never becomes partial rows. Retry-After is honoured; otherwise the wait
backs off exponentially with jitter. Credentials travel only in headers, which
are never logged, and never appear in an error message.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from xml.etree import ElementTree

import orjson
import requests

from ingestion.redact import RedactedError, get_logger
from ingestion.registry import City

log = get_logger("civic311.http")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 300.0
T = TypeVar("T")


class SourceError(RedactedError, RuntimeError):
    """A request failed for good; the message names the city and what to do."""


class Retryable(Exception):
    """A failure worth another try; `wait` is what the server asked for, if anything."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


@dataclass
class HttpClient:
    """GETs for one city's feed, with one connection pool for the whole run."""

    city_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 60.0
    max_retries: int = 6
    backoff_seconds: float = 1.0
    requests_per_minute: float | None = None
    session: requests.Session | None = None
    # What to tell the user on a non-retryable HTTP status: status -> advice.
    advice: Callable[[int], str] = lambda status: "Check the city's registry entry."
    _last_request: float = field(default=0.0, init=False, repr=False)
    _pace_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def for_city(
        cls,
        city: City,
        accept: str,
        credential_header: str | None = None,
        session: requests.Session | None = None,
        backoff_seconds: float = 1.0,
        advice: Callable[[int], str] | None = None,
    ) -> HttpClient:
        """The client for a city's source: its timeouts, retries and pacing from the
        registry, and its credential (if the environment has one) in `credential_header`."""
        source = city.source
        headers = {"Accept": accept}
        if credential_header and (secret := source.secret()):
            headers[credential_header] = secret
        return cls(
            city_id=city.id,
            headers=headers,
            timeout_seconds=source.timeout_seconds,
            max_retries=source.max_retries,
            backoff_seconds=backoff_seconds,
            requests_per_minute=source.requests_per_minute,
            session=session,
            **({"advice": advice} if advice else {}),
        )

    def __repr__(self) -> str:  # headers may hold a credential
        return f"HttpClient(city_id={self.city_id!r})"

    def get(
        self,
        url: str,
        params: Mapping[str, str],
        what: str,
        parse: Callable[[bytes], T],
        confirm_empty: Callable[[T], bool] | None = None,
    ) -> T:
        """GET `url` and parse the body; `what` names the request in logs and errors
        (e.g. "page 3 of requests.json"). `parse` raises Retryable for a bad body.

        With `confirm_empty`, an answer it calls empty is asked for once more, after a
        backoff, before it is believed: an empty page ends a read, and a flaky server
        sometimes answers one mid-stream.
        """
        answer = self._get(url, params, what, parse)
        if confirm_empty is not None and confirm_empty(answer):
            time.sleep(self.backoff(1))
            answer = self._get(url, params, what, parse)
        return answer

    def _get(self, url: str, params: Mapping[str, str], what: str, parse: Callable[[bytes], T]) -> T:
        attempt = 0
        while True:
            try:
                return parse(self._fetch(url, params, what))
            except Retryable as problem:
                attempt += 1
                if attempt > self.max_retries:
                    raise SourceError(
                        f"{self.city_id}: {what} from {url} failed after {self.max_retries} retries: "
                        f"{problem}. Check the portal's status, or raise source.max_retries in the "
                        "city registry."
                    ) from None
                delay = problem.wait if problem.wait is not None else self.backoff(attempt)
                log.warning(
                    "%s: %s: %s; retry %d/%d in %.1fs",
                    self.city_id,
                    what,
                    problem,
                    attempt,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)

    def backoff(self, attempt: int) -> float:
        base = self.backoff_seconds * 2 ** (attempt - 1)
        return min(60.0, base) * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto

    def _pace(self) -> None:
        if not self.requests_per_minute:
            return
        interval = 60.0 / self.requests_per_minute
        with self._pace_lock:
            wait = self._last_request + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_request = time.monotonic()

    def _fetch(self, url: str, params: Mapping[str, str], what: str) -> bytes:
        self._pace()
        # Opened on the first request, not when the client is built (the Dagster
        # definitions build every city's source at import), then reused all run.
        self.session = self.session or requests.Session()
        try:
            response = self.session.get(
                url, params=dict(params), headers=dict(self.headers), timeout=self.timeout_seconds
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Retryable(type(exc).__name__) from None
        if response.status_code in RETRYABLE_STATUS:
            raise Retryable(f"HTTP {response.status_code}", retry_after(response))
        if response.status_code != 200:
            raise SourceError(
                f"{self.city_id}: {url} answered HTTP {response.status_code} to {what}: "
                f"{_message(response)}. {self.advice(response.status_code)}"
            )
        return response.content


def json_body(body: bytes) -> object:
    """The body parsed as JSON. A body that does not parse is a transport fault (a
    truncated page): Retryable, so the whole page is fetched again."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Retryable(f"invalid JSON body ({exc.msg} at byte {exc.pos})") from None


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(value)))
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _xml_message(response.text) or response.text[:200].strip() or "empty body"
    if isinstance(body, dict):
        for key in ("message", "error", "errors", "description"):
            if body.get(key):
                return str(body[key])[:300]
    if isinstance(body, list) and body and isinstance(body[0], dict) and body[0].get("description"):
        return str(body[0]["description"])[:300]  # GeoReport v2 error list
    return str(body)[:200]


def _xml_message(text: str) -> str | None:
    """The descriptions of a GeoReport XML error list (<errors><error><description>)."""
    if "<errors" not in text or "<!DOCTYPE" in text:
        return None
    try:
        root = ElementTree.fromstring(text.encode())  # noqa: S314 - DTDs (entity expansion) refused above
    except ElementTree.ParseError:
        return None
    found = [d.text.strip() for d in root.iter("description") if d.text and d.text.strip()]
    return "; ".join(found)[:300] or None
