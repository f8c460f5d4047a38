"""What a portal says it holds, asked through the replay over real recorded data:
Socrata's count by day of `:updated_at` (the replay's aggregate path), a replica that
lags behind, the largest of up to three answers kept, SeeClickFix's
`pagination.entries`, and the protocols that cannot be counted."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests

from ingestion.registry import load_registry
from ingestion.sources.counts import Span, countable, source_counts
from ingestion.sources.seeclickfix import seeclickfix_client
from ingestion.sources.seeclickfix.client import Window
from tests.helpers.data import NYC_SODA_SAMPLE
from tests.helpers.samples import FEEDS
from tooling.replay import Fault, FaultPlan, ReplayServer, load_records
from tooling.replay.catalog import mount_city
from tooling.replay.records import parse_timestamp

COUNT = {
    "$select": "date_trunc_ymd(:updated_at) AS day, count(*) AS records",
    "$group": "day",
    "$order": "day",
}
FIRST, LAST = datetime(2012, 11, 15), datetime(2012, 12, 1)
WINDOW = f":updated_at >= '{FIRST:%Y-%m-%dT%H:%M:%S}.000' AND :updated_at < '{LAST:%Y-%m-%dT%H:%M:%S}.000'"


@pytest.fixture
def nyc():
    """NYC's registry entry, its real sample served as its current dataset."""
    city = load_registry().city("nyc")
    plan = FaultPlan()
    with ReplayServer(faults=plan) as server:
        mount_city(server, city, [NYC_SODA_SAMPLE])
        yield city, server, plan


def url(city, server) -> str:
    return city.source.resource_url_at(city.base_url(server.url), city.source.all_datasets[0].id)


def expected_by_day(server, city) -> Counter:
    rows = server.dataset(city.source.all_datasets[0].id, prefix="/nyc").snapshot()
    stamps = [parse_timestamp(r[":updated_at"]) for r in rows]
    return Counter(s.date() for s in stamps if FIRST <= s < LAST)


def test_the_replay_counts_by_day_as_soda_groups_them(nyc):
    city, server, _ = nyc
    expected = expected_by_day(server, city)
    assert sum(expected.values()) > 100  # the window holds a real share of the sample
    answer = requests.get(url(city, server), {**COUNT, "$where": WINDOW}, timeout=10).json()
    assert answer == [{"day": f"{d}T00:00:00.000", "records": str(n)} for d, n in sorted(expected.items())]
    # SODA's own column names without aliases, newest day first, and $limit applies.
    plain = {
        "$select": "date_trunc_ymd(:updated_at), count(*)",
        "$group": "date_trunc_ymd(:updated_at)",
        "$where": WINDOW,
        "$limit": "2",
    }
    answer = requests.get(url(city, server), plain, timeout=10).json()
    assert [row["count"] for row in answer] == [str(n) for _, n in sorted(expected.items())[:2]]
    assert set(answer[0]) == {"date_trunc_ymd_updated_at", "count"}
    newest = requests.get(url(city, server), {**COUNT, "$order": "day DESC"}, timeout=10).json()
    assert newest[0]["day"] > newest[-1]["day"]


@pytest.mark.parametrize(
    ("select", "group", "message"),
    [
        ("max(:updated_at) AS day, count(*) AS records", "day", "answers only date_trunc_ymd"),
        (
            "date_trunc_ymd(:updated_at) AS day, count(*) AS records",
            "status",
            "does not group by the selected 'day'",
        ),
        ("date_trunc_ymd(:updated_at) AS day", "day", "one aggregate"),
        ("date_trunc_ymd(:updated_at AS day, count(*)", "day", "expected ')'"),
    ],
)
def test_the_replay_refuses_an_aggregate_it_does_not_answer(nyc, select, group, message):
    city, server, _ = nyc
    answer = requests.get(url(city, server), {"$select": select, "$group": group}, timeout=10)
    assert answer.status_code == 400 and message in answer.json()["message"]


def test_a_lagging_replica_lacks_the_changes_it_has_not_seen(nyc):
    city, server, plan = nyc
    expected = expected_by_day(server, city)
    newest_day = max(expected)
    plan.queue += [Fault(lagging=3), Fault(lagging=3)]
    counted = requests.get(url(city, server), {**COUNT, "$where": WINDOW}, timeout=10).json()
    assert {row["day"][:10]: int(row["records"]) for row in counted}[newest_day.isoformat()] == expected[
        newest_day
    ] - 3
    page = requests.get(
        url(city, server), {"$select": ":*, *", "$where": WINDOW, "$limit": "50000"}, timeout=10
    ).json()
    assert len(page) == sum(expected.values()) - 3
    served = {row[":id"] for row in page}
    everything = requests.get(
        url(city, server), {"$select": ":*, *", "$where": WINDOW, "$limit": "50000"}, timeout=10
    ).json()
    missed = [row for row in everything if row[":id"] not in served]
    # The three it lacks are the window's last changes.
    assert sorted(r[":updated_at"] for r in missed) == sorted(r[":updated_at"] for r in everything)[-3:]


def test_the_largest_of_three_answers_is_kept(nyc):
    """Each ask reads NYC's two datasets: the sample's, then the empty historical copy.
    Lagging answers that agree with a warehouse missing the same rows are asked again;
    the up-to-date third answer finds the shortfall."""
    city, server, plan = nyc
    expected = expected_by_day(server, city)
    newest = max(expected)

    def missing_four(start, end):  # what a load from a replica four changes behind holds
        return expected.get(start.date(), 0) - (4 if start.date() == newest else 0)

    plan.queue += [Fault(lagging=4), Fault(), Fault(lagging=4), Fault()]
    spans, asked = source_counts(city, FIRST, LAST, held=missing_four, base_url=city.base_url(server.url))
    assert asked == 3 and plan.queue == []
    assert {s.start.date(): s.count for s in spans if s.count} == dict(expected)
    assert len(spans) == (LAST - FIRST).days  # every day, those without a change at 0

    # Short at the first answer: more answers cannot change that.
    before = len(server.requests)
    spans, asked = source_counts(city, FIRST, LAST, held=missing_four, base_url=city.base_url(server.url))
    assert asked == 1 and len(server.requests) - before == 2

    # Nothing short: asked three times all the same.
    spans, asked = source_counts(
        city, FIRST, LAST, held=lambda s, e: expected.get(s.date(), 0), base_url=city.base_url(server.url)
    )
    assert asked == 3 and sum(s.count for s in spans) == sum(expected.values())


def test_seeclickfix_counts_what_its_read_returns():
    """Jersey City's recorded page: `pagination.entries` of the window's query is the
    number of issues the same window's read yields."""
    city = load_registry().city("jersey_city")
    files, _ = FEEDS["jersey_city"]
    with ReplayServer() as server:
        mount_city(server, city, files)
        base = city.base_url(server.url)
        client = seeclickfix_client(city, base, backoff_seconds=0.01)
        whole = Window(datetime(2000, 1, 1), datetime(2030, 1, 1))
        issues = [issue for page in client.pages(whole) for issue in page]
        spans, asked = source_counts(
            city, whole.start, whole.end, held=lambda s, e: len(issues), base_url=base
        )
    assert [(s.start, s.end, s.count) for s in spans] == [(whole.start, whole.end, len(issues))]
    assert asked == 3 and len(issues) == 20


@pytest.mark.parametrize("city_id", ["boston", "boston_open311", "toronto"])
def test_open311_and_ckan_cannot_be_counted_and_say_why(city_id):
    city = load_registry().city(city_id)
    assert not countable(city)
    with pytest.raises(ValueError, match=f"{city_id}: .* it cannot be counted"):
        source_counts(city, FIRST, LAST, held=lambda s, e: 0)


def test_a_short_day_blocks_only_once_the_lookback_has_passed():
    """Within the lookback the next load reads the day again: a warning. After it, the
    check blocks, and names the days to load again."""
    from dagster import AssetCheckSeverity

    from orchestration.checks.reconcile import _result

    city = load_registry().city("nyc")  # lookback 72 h
    today = datetime.combine(datetime.now(UTC).date(), datetime.min.time())

    def day(start: datetime, count: int) -> Span:
        return Span(start, start + timedelta(days=1), count)

    def held(start, end):
        return 97 if start.day % 2 else 100  # every other day holds 97 of 100

    old = [day(datetime(2024, 3, 1) + timedelta(days=n), 100) for n in range(4)]
    blocking = _result(city, old, 1, held, timedelta(hours=72))
    assert (blocking.passed, blocking.severity) == (False, AssetCheckSeverity.ERROR)
    assert blocking.metadata["spans_short"].value == 2 and blocking.metadata["share"].value == 0.985
    assert "--from 2024-03-01 --to 2024-03-03" in blocking.description

    recent = [day(today - timedelta(days=2), 100)]
    warning = _result(city, recent, 1, lambda s, e: 97, timedelta(hours=72))
    assert (warning.passed, warning.severity) == (False, AssetCheckSeverity.WARN)
    assert "a warning until then" in warning.description

    enough = _result(city, old, 3, lambda s, e: 98, timedelta(hours=72))
    assert enough.passed and enough.description is None


def test_overlapping_datasets_count_their_largest_and_yearly_ones_add_up():
    """NYC's current dataset and its frozen copy may hold one request twice: a day counts
    the larger. LA's yearly datasets hold different requests: they add up."""
    records = load_records(NYC_SODA_SAMPLE)
    nyc, la = load_registry().city("nyc"), load_registry().city("la")
    by_year = la.source.datasets_by_year
    with ReplayServer() as server:
        for dataset in nyc.source.all_datasets:  # the same records in both
            server.add_dataset(dataset.id, records, updated_at_fields=("created_date",), prefix="/nyc")
        halves = (records[::2], records[1::2])
        for dataset, half in zip((by_year[2015], by_year[2016]), halves, strict=True):
            server.add_dataset(dataset, half, updated_at_fields=("created_date",), prefix="/la")
        for year in set(by_year) - {2015, 2016}:
            server.add_dataset(by_year[year], [], prefix="/la")
        made = Counter(parse_timestamp(r["created_date"]).date() for r in records)
        # LA's window reaches into 2016, so that its 2015 and 2016 datasets are read.
        for city, end in ((nyc, LAST), (la, datetime(2017, 1, 1))):
            spans, _ = source_counts(
                city, FIRST, end, held=lambda s, e: 10**6, base_url=city.base_url(server.url)
            )
            expected = {d: n for d, n in made.items() if FIRST.date() <= d < end.date()}
            assert {s.start.date(): s.count for s in spans if s.count} == expected, city.id
