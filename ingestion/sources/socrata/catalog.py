"""Dataset rollover: a city that publishes one Socrata dataset per year (Los Angeles)
goes stale on 1 January unless its registry maps the new year's dataset.

`rollover(city, today)` asks the portal's catalog (the Discovery API,
`/api/catalog/v1`) for the current year's dataset when the year has begun in the
city's timezone and `source.datasets_by_year` does not map it. The candidate is the
dataset named like the newest mapped one with the year changed: "MyLA311 Service
Request Data 2026" becomes "MyLA311 Service Request Data 2027". A name without its
year gives no candidate, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlsplit

import requests

from ingestion.registry import City
from ingestion.sources.http import HttpClient, json_body
from ingestion.sources.socrata.client import SocrataError, socrata_http

CATALOG_PATH = "/api/catalog/v1"


@dataclass(frozen=True)
class Rollover:
    """The current `year` has begun and the registry maps no dataset for it."""

    city_id: str
    year: int
    mapped_year: int
    mapped_id: str
    mapped_name: str | None
    # (id, name) of the catalog's datasets named for `year` like the mapped one.
    candidates: tuple[tuple[str, str], ...]

    @property
    def expected_name(self) -> str | None:
        if self.mapped_name is None or str(self.mapped_year) not in self.mapped_name:
            return None
        return self.mapped_name.replace(str(self.mapped_year), str(self.year))


def rollover(
    city: City,
    today: date,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> Rollover | None:
    """What the catalog offers for `today`'s year (in the city's timezone), or None when
    the city maps no years or already maps this one."""
    source = city.source
    by_year = city.datasets_by_year
    if not by_year or today.year in by_year or today.year < min(by_year):
        return None
    http = socrata_http(city, session, backoff_seconds)
    url = f"{(base_url or source.base_url).rstrip('/')}{CATALOG_PATH}"
    # The live catalog serves many domains; the registry's host names the city's.
    domain = urlsplit(source.base_url).hostname or ""
    mapped_year = max(by_year)
    mapped_id = by_year[mapped_year]
    mapped = _search(http, url, {"ids": mapped_id, "domains": domain}, f"the catalog entry of {mapped_id}")
    found = Rollover(city.id, today.year, mapped_year, mapped_id, mapped[0][1] if mapped else None, ())
    expected = found.expected_name
    if expected is None:
        return found
    results = _search(
        http, url, {"q": expected, "only": "dataset", "domains": domain, "limit": "100"}, "a catalog search"
    )
    candidates = tuple((i, n) for i, n in results if n.casefold() == expected.casefold() and i != mapped_id)
    return replace(found, candidates=candidates)


def _search(http: HttpClient, url: str, params: dict[str, str], what: str) -> list[tuple[str, str]]:
    def parse(body: bytes) -> list[tuple[str, str]]:
        answer = json_body(body)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise SocrataError(
                f"{http.city_id}: {url} answered without a list of results; "
                "source.base_url must point at a Socrata portal with its catalog"
            )
        found = []
        for result in results:
            resource = result.get("resource") if isinstance(result, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                found.append((resource["id"], str(resource.get("name") or "")))
        return found

    return http.get(url, params, what, parse)
