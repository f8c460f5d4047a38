"""HTTP side of the SeeClickFix v2 source: `GET /issues` of one place, seeking on updated_at.

Pages are read in `updated_at` order, and after each page the read restarts at
page 1 from the last change stamp read rather than asking for the next page
number. A page number is an offset: when an issue already read is updated
between two pages it moves to the end of the order, every later issue shifts
one place left and the one at the page boundary would be skipped. Seeking on
the stamp cannot skip, and an issue updated mid-run is simply read again in its
new version (the merge on its id keeps the newest).

`updated_at_after` is taken as exclusive ("after", strictly), and SeeClickFix
stamps carry whole seconds, so each seek starts one second before the last
stamp read, and issues already read with an unchanged stamp are dropped from
the overlap. Were the live API inclusive, the overlap would only be a second
wider; nothing is skipped either way. When a whole page shares one stamp,
seeking would ask for the same page again, so the read advances `page` instead.

The replay (tooling/replay/seeclickfix.py) treats both bounds the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingestion.redact import get_logger
from ingestion.sources.http import HttpClient, Retryable, SourceError, json_body
from ingestion.sources.timestamps import parse_instant

log = get_logger("civic311.seeclickfix")

# When an issue comes without `updated_at` (a reduced field set, as the recorded
# Jersey City page asked for), the latest of these stands in for it. It is a lower
# bound: SeeClickFix also moves updated_at on comments and edits.
STAMP_FIELDS = ("created_at", "acknowledged_at", "closed_at", "reopened_at")
SEEK_OVERLAP = timedelta(seconds=1)


class SeeClickFixError(SourceError):
    """A SeeClickFix request failed for good; the message names the city and what to do."""


def issue_updated_at(issue: Mapping[str, object]) -> datetime | None:
    """The issue's change stamp in UTC: `updated_at`, else the latest of STAMP_FIELDS."""
    stamp = parse_instant(issue.get("updated_at"))
    if stamp is not None:
        return stamp
    found = [m for m in (parse_instant(issue.get(name)) for name in STAMP_FIELDS) if m is not None]
    return max(found, default=None)


def api_timestamp(moment: datetime) -> str:
    """A UTC instant as the API's query parameters take it, to the second."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def advice(status: int) -> str:
    if status == 404:
        return "Check source.place_url (the slug in the city's seeclickfix.com URL) and source.base_url."
    if status in (401, 403):
        return "Public issues need no credential; check source.base_url points at the v2 API."
    return "Check the city's seeclickfix entry in the registry (place_url, per_page, statuses)."


@dataclass(frozen=True)
class Window:
    """The change-stamp range a run reads (naive UTC): start inclusive, end exclusive."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Page:
    issues: list[dict]
    has_next: bool


@dataclass
class SeeClickFixClient:
    """Reads the issues of one place, page by page."""

    http: HttpClient
    issues_url: str
    place_url: str
    per_page: int = 100
    statuses: tuple[str, ...] = ("open", "acknowledged", "closed", "archived")

    def pages(self, window: Window) -> Iterator[list[dict]]:
        """Yield pages of issues in updated_at order, each issue version once."""
        # Exclusive bound: one second before the window's first whole second.
        after = window.start.replace(microsecond=0) - SEEK_OVERLAP if window.start else None
        page = 1
        # Issues read with a stamp later than `after`: the only ones a seek can serve again.
        read: dict[str, datetime] = {}
        requests_made = 0
        while True:
            requests_made += 1
            what = f"page {requests_made} of issues in {self.place_url}"
            result = self.http.get(
                self.issues_url,
                self._params(after, window.end, page),
                what,
                self._parse,
                confirm_empty=lambda result: not result.issues,
            )
            if not result.issues:
                return
            fresh = [issue for issue in result.issues if not _already_read(issue, read)]
            log.info(
                "%s: %s: %d issues, %d not read before",
                self.http.city_id,
                what,
                len(result.issues),
                len(fresh),
            )
            if fresh:
                yield fresh
            if not result.has_next:
                return
            stamps = [s for s in map(issue_updated_at, result.issues) if s is not None]
            seek = max(stamps).replace(microsecond=0, tzinfo=None) - SEEK_OVERLAP if stamps else None
            if seek is not None and (after is None or seek > after):
                after, page = seek, 1
                read = {key: stamp for key, stamp in read.items() if stamp > after}
            else:
                # The whole page shares one stamp: seeking would fetch this page again.
                page += 1

    def count(self, window: Window) -> int | None:
        """How many issues the place holds with a change stamp in `window`, asked with the
        parameters `pages` reads it with (`metadata.pagination.entries` of a one-issue
        page); None when the API does not say."""
        after = window.start.replace(microsecond=0) - SEEK_OVERLAP if window.start else None
        params = {**self._params(after, window.end, 1), "per_page": "1"}
        what = f"the count of issues in {self.place_url}"
        envelope = self.http.get(self.issues_url, params, what, _envelope)
        pagination = (envelope.get("metadata") or {}).get("pagination") or {}
        return _count(pagination.get("entries"))

    def _params(self, after: datetime | None, before: datetime | None, page: int) -> dict[str, str]:
        params = {
            "place_url": self.place_url,
            "per_page": str(self.per_page),
            "page": str(page),
            # Archived issues are only served when asked for by name.
            "status": ",".join(self.statuses),
            "sort": "updated_at",
            "sort_direction": "ASC",
        }
        if after is not None:
            params["updated_at_after"] = api_timestamp(after)
        if before is not None:
            params["updated_at_before"] = api_timestamp(before)
        return params

    def _parse(self, body: bytes) -> Page:
        envelope = _envelope(body)
        issues = envelope.get("issues")
        if not isinstance(issues, list):
            raise SeeClickFixError(
                f"{self.http.city_id}: {self.issues_url} did not answer with a SeeClickFix issues "
                "envelope ({'issues': [...], 'metadata': ...}); check source.base_url points at the v2 API"
            )
        pagination = (envelope.get("metadata") or {}).get("pagination") or {}
        entries = _count(pagination.get("entries"))
        page, pages = _count(pagination.get("page")), _count(pagination.get("pages"))
        if not issues and entries and page is not None and pages is not None and page <= pages:
            raise Retryable(f"empty page {page} of {pages} while pagination counts {entries} issues")
        if "next_page" in pagination:
            has_next = pagination["next_page"] is not None
        elif page is not None and pages is not None:
            has_next = page < pages
        else:  # no pagination at all: only a short page is known to be the last
            has_next = len(issues) >= self.per_page
        return Page(issues, has_next)


def _envelope(body: bytes) -> dict:
    envelope = json_body(body)
    return envelope if isinstance(envelope, dict) else {}


def _already_read(issue: Mapping[str, object], read: dict[str, datetime]) -> bool:
    """Whether this version of the issue was yielded before; records it if not."""
    stamp = issue_updated_at(issue)
    if issue.get("id") is None or stamp is None:
        return False  # unkeyed issues are quarantined, where their content hash dedupes them
    key, stamp = str(issue["id"]), stamp.replace(tzinfo=None)
    if read.get(key) == stamp:
        return True
    read[key] = stamp
    return False


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return int(value)
