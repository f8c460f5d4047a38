"""What the portal says it holds: the counts a reconciliation compares with the warehouse.

Socrata counts per UTC day of `:updated_at` (a city's yearly datasets added up,
other datasets it lists the largest of them), and SeeClickFix per window of change
stamps (`metadata.pagination.entries`). The other protocols cannot be asked:

- Open311 GeoReport v2 has no count and no total in its answers;
- CKAN's DataStore filters on equality only, so its `total` counts a whole yearly
  resource, never a window of changes. Its load already reads each resource until
  it has `total` records (ingestion/sources/ckan/client.py).

Replicas behind one portal disagree, a lagging one answering short. So a count is
asked up to three times and the largest answer for each span is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import requests

from ingestion.registry import City

ASKS = 3
# Below this share of the portal's count, a span is short.
REQUIRED_SHARE = 0.98

NOT_COUNTABLE = {
    "open311": "Open311 GeoReport v2 reports no count of requests",
    "ckan": "CKAN's DataStore counts a whole resource (`total`), never a window of changes",
}


@dataclass(frozen=True)
class Span:
    """The portal's count of records changed in [start, end) (naive UTC)."""

    start: datetime
    end: datetime
    count: int


def countable(city: City) -> bool:
    return city.source.protocol not in NOT_COUNTABLE


def source_counts(
    city: City,
    start: datetime,
    end: datetime,
    *,
    held: Callable[[datetime, datetime], int],
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
    asks: int = ASKS,
    required_share: float = REQUIRED_SHARE,
) -> tuple[list[Span], int]:
    """The portal's counts over [start, end) (naive UTC), each span's largest of up to
    `asks` answers, and how many times it was asked.

    It is asked `asks` times unless a span is found short first (civic311 holds, by
    `held(span_start, span_end)`, less than `required_share` of its count): more answers
    can only raise a count, so the verdict stands. An answer that agrees with the
    warehouse is no reason to stop: a replica that lags as the load's did agrees with
    exactly what the load missed.
    """
    ask = _asker(city, start, end, base_url, session, backoff_seconds)
    best: dict[tuple[datetime, datetime], int] = {}
    asked = 0
    while asked < asks:
        asked += 1
        for span in ask():
            key = (span.start, span.end)
            best[key] = max(best.get(key, 0), span.count)
        if any(held(*key) < required_share * count for key, count in best.items()):
            break
    return [Span(s, e, n) for (s, e), n in sorted(best.items())], asked


def _asker(
    city: City,
    start: datetime,
    end: datetime,
    base_url: str | None,
    session: requests.Session | None,
    backoff_seconds: float,
) -> Callable[[], list[Span]]:
    source = city.source
    root = base_url or source.base_url
    if source.protocol == "socrata":
        from ingestion.sources.socrata.client import Window, dataset_clients, socrata_http

        yearly = set(city.datasets_by_year.values())
        http = socrata_http(city, session, backoff_seconds)
        clients = [
            (dataset.id in yearly, client) for dataset, client in dataset_clients(city, http, root, end)
        ]

        def by_day() -> list[Span]:
            # Yearly datasets hold requests of different years: their counts add up. Datasets
            # listed together may hold one request twice (NYC's current dataset and its frozen
            # 2010-2019 copy), so a day counts the largest of them: the fewest requests the
            # portal can hold, never a duplicate the warehouse merged away.
            of_years: Counter = Counter()
            largest: Counter = Counter()
            for is_yearly, client in clients:
                for day, records in client.daily_counts(Window(start, end)).items():
                    if is_yearly:
                        of_years[day] += records
                    else:
                        largest[day] = max(largest[day], records)
            # Every day of the window, the days the portal has no row in counting 0.
            days = []
            day = start.date()
            while datetime.combine(day, time()) < end:
                first = max(datetime.combine(day, time()), start)
                last = min(datetime.combine(day + timedelta(days=1), time()), end)
                days.append(Span(first, last, max(of_years[day], largest[day])))
                day += timedelta(days=1)
            return days

        return by_day
    if source.protocol == "seeclickfix":
        from ingestion.sources.seeclickfix import seeclickfix_client
        from ingestion.sources.seeclickfix.client import SeeClickFixError, Window

        client = seeclickfix_client(city, root, session, backoff_seconds)

        def by_window() -> list[Span]:
            count = client.count(Window(start, end))
            if count is None:
                raise SeeClickFixError(
                    f"{city.id}: {client.issues_url} answered without metadata.pagination.entries, so "
                    "its issues cannot be counted; check source.base_url points at the v2 API"
                )
            return [Span(start, end, count)]

        return by_window
    why = NOT_COUNTABLE.get(source.protocol, source.protocol)
    raise ValueError(f"{city.id}: {why}; it cannot be counted")
