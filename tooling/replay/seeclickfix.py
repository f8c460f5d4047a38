"""The SeeClickFix v2 emulation: `/issues` of a place (and `/issues/<id>`) over recorded issues.

It answers the way the live API does where civic311 depends on it: `per_page`
defaults to 20 and is clamped to 100, pages count from 1, `metadata.pagination`
describes the filtered set, archived issues are only served when `status`
names them, and `updated_at_after` / `updated_at_before` are both exclusive
(the client's reading, documented in ingestion/sources/seeclickfix/client.py).
Issues recorded without `updated_at` (a reduced field set) are filtered and
sorted on the stamp the client derives for them.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from ingestion.sources.seeclickfix.client import issue_updated_at
from ingestion.sources.timestamps import parse_instant
from tooling.replay.api import Response, json_response

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
DEFAULT_STATUSES = ("open", "acknowledged", "closed")
STATUSES = (*DEFAULT_STATUSES, "archived")
LINKS_BASE = "https://seeclickfix.com/api/v2"
_SORTS = ("updated_at", "created_at")
_NO_STAMP = datetime(1970, 1, 1, tzinfo=UTC)


def load_scf_issues(path: Path | str) -> list[dict]:
    """Issues from a recorded file: a bare array, or an envelope {"issues": [...], ...}."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    issues = data.get("issues") if isinstance(data, dict) else data
    if not isinstance(issues, list) or not all(isinstance(issue, dict) for issue in issues):
        raise ValueError(f"{path}: expected a JSON array of issues or an envelope with an 'issues' array")
    return issues


class _BadQuery(ValueError):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class _Query:
    place_url: str | None
    page: int
    per_page: int
    statuses: frozenset[str]
    after: datetime | None
    before: datetime | None
    sort: str
    descending: bool


class SeeClickFixApi:
    """Issues by place slug, served at /issues?place_url=<slug>; safe across handler threads."""

    def __init__(
        self,
        issues_by_place: Mapping[str, Sequence[dict]],
        max_per_page: int = MAX_PER_PAGE,
        base_url_for_links: str = LINKS_BASE,
    ) -> None:
        self.max_per_page = max_per_page
        self.base_url_for_links = base_url_for_links.rstrip("/")
        self._lock = threading.Lock()
        self._places: dict[str, dict[str, dict]] = {}
        self._stamps: dict[str, dict[str, datetime]] = {}
        self._last_place: str | None = None
        for place, issues in issues_by_place.items():
            self.add_place(place, issues)

    def add_place(self, place_url: str, issues: Sequence[dict]) -> None:
        by_key: dict[str, dict] = {}
        stamps: dict[str, datetime] = {}
        for position, issue in enumerate(issues):
            key = _key(issue, position)
            stamp = issue_updated_at(issue) or _NO_STAMP
            # Recorded pages overlap (an issue read twice while the feed moved on): the
            # live service holds one version per id, the newest.
            if key not in stamps or stamp >= stamps[key]:
                by_key[key], stamps[key] = dict(issue), stamp
        with self._lock:
            self._places[place_url] = by_key
            self._stamps[place_url] = stamps

    def issues(self, place_url: str) -> list[dict]:
        """The place's current issues, one per id."""
        with self._lock:
            return [dict(issue) for issue in self._places[place_url].values()]

    # -- the Api protocol ------------------------------------------------------------

    def is_data_request(self, path: str) -> bool:
        return path.rstrip("/") == "/issues"

    def respond(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        path = path.rstrip("/")
        if path == "/issues":
            return self._page(params, empty=False)
        if path.startswith("/issues/") and path.count("/") == 2:
            return self._issue(path.removeprefix("/issues/"))
        return self.error(404, f"no route for {path}")

    def empty_page(self, path: str, params: Mapping[str, str]) -> Response:
        # A flaky server: the pagination still counts the issues, the page holds none.
        response = self._page(params, empty=True)
        if response.status == 200:
            return response
        return json_response({"issues": [], "metadata": {"pagination": {}}, "errors": {}})

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return json_response({"errors": {"base": [message]}}, status, headers)

    def apply_changes(self, inserts: Sequence[dict], updates: Sequence[dict]) -> None:
        """Insert and update issues of the place last served, stamped newer than any issue."""
        if not inserts and not updates:
            return
        with self._lock:
            place = self._last_place or next(iter(self._places))
            issues, stamps = self._places[place], self._stamps[place]
            # One stamp for the batch: the service stamps a change with "now".
            moment = max(stamps.values(), default=_NO_STAMP).replace(microsecond=0) + timedelta(seconds=1)
            text = moment.isoformat()
            for record in inserts:
                key = _key(record, len(issues))
                issues[key], stamps[key] = {**record, "updated_at": text}, moment
            for record in updates:
                key = str(record["id"])
                if key not in issues:
                    raise KeyError(f"update for issue {key} of {place}, which the replay does not hold")
                issues[key], stamps[key] = {**issues[key], **record, "updated_at": text}, moment

    # -- answers -----------------------------------------------------------------------

    def _page(self, params: Mapping[str, str], empty: bool) -> Response:
        try:
            query = _parse_query(params, self.max_per_page)
        except _BadQuery as exc:
            return json_response({"errors": {exc.param: [str(exc)]}}, 422)
        with self._lock:
            if query.place_url is not None and query.place_url not in self._places:
                return json_response({"errors": {"place_url": [f"no place {query.place_url!r}"]}}, 404)
            places = [query.place_url] if query.place_url else list(self._places)
            if query.place_url and not empty:
                self._last_place = query.place_url
            matched = [
                (self._sort_key(place, key, query.sort), issue)
                for place in places
                for key, issue in self._places[place].items()
                if _matches(issue, self._stamps[place][key], query)
            ]
        matched.sort(key=lambda pair: pair[0], reverse=query.descending)
        start = (query.page - 1) * query.per_page
        chunk = [] if empty else [issue for _, issue in matched[start : start + query.per_page]]
        pagination = self._pagination(params, query, len(matched))
        return json_response({"issues": chunk, "metadata": {"pagination": pagination}, "errors": {}})

    def _sort_key(self, place: str, key: str, sort: str) -> tuple:
        issue = self._places[place][key]
        moment = self._stamps[place][key] if sort == "updated_at" else parse_instant(issue.get("created_at"))
        issue_id = issue.get("id")
        tie = (0, issue_id, "") if isinstance(issue_id, int) else (1, 0, str(issue_id))
        return (moment or _NO_STAMP, tie)

    def _pagination(self, params: Mapping[str, str], query: _Query, entries: int) -> dict:
        pages = math.ceil(entries / query.per_page)
        next_page = query.page + 1 if query.page < pages else None
        previous_page = query.page - 1 if query.page > 1 else None
        return {
            "entries": entries,
            "page": query.page,
            "per_page": query.per_page,
            "pages": pages,
            "next_page": next_page,
            "next_page_url": self._link(params, next_page),
            "previous_page": previous_page,
            "previous_page_url": self._link(params, previous_page),
        }

    def _link(self, params: Mapping[str, str], page: int | None) -> str | None:
        if page is None:
            return None
        query = sorted({**params, "page": str(page)}.items())
        return f"{self.base_url_for_links}/issues?{urlencode(query)}"

    def _issue(self, issue_id: str) -> Response:
        with self._lock:
            for issues in self._places.values():
                if issue_id in issues:
                    return json_response(issues[issue_id])
        return json_response({"errors": {"id": [f"no issue {issue_id}"]}}, 404)


def _key(issue: Mapping[str, object], position: int) -> str:
    issue_id = issue.get("id")
    # An issue without an id is kept (the client quarantines it) under a key no id can take.
    return str(issue_id) if issue_id is not None else f":row{position}"


def _matches(issue: Mapping[str, object], stamp: datetime, query: _Query) -> bool:
    status = issue.get("status")
    if not isinstance(status, str) or status.lower() not in query.statuses:
        return False
    if query.after is not None and not stamp > query.after:
        return False
    return query.before is None or stamp < query.before


def _parse_query(params: Mapping[str, str], max_per_page: int) -> _Query:
    per_page = _positive(params, "per_page", DEFAULT_PER_PAGE)
    statuses = frozenset(
        s.strip().lower() for s in params.get("status", ",".join(DEFAULT_STATUSES)).split(",")
    )
    unknown = sorted(statuses - set(STATUSES) - {""})
    if unknown:
        raise _BadQuery("status", f"unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}")
    sort = params.get("sort", "created_at")
    if sort not in _SORTS:
        raise _BadQuery("sort", f"the replay sorts by {' or '.join(_SORTS)}, not {sort!r}")
    direction = params.get("sort_direction", "DESC").upper()
    if direction not in ("ASC", "DESC"):
        raise _BadQuery("sort_direction", f"use ASC or DESC, not {direction!r}")
    return _Query(
        place_url=params.get("place_url") or None,
        page=_positive(params, "page", 1),
        per_page=min(per_page, max_per_page),
        statuses=statuses - {""},
        after=_instant(params, "updated_at_after"),
        before=_instant(params, "updated_at_before"),
        sort=sort,
        descending=direction == "DESC",
    )


def _positive(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise _BadQuery(name, f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def _instant(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    moment = parse_instant(raw)
    if moment is None:
        raise _BadQuery(name, f"{name} must be an ISO 8601 time, got {raw!r}")
    return moment
