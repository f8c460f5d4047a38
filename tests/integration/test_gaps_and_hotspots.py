"""mart_service_gaps and mart_hotspots over every real sample, checked against
figures recomputed here from fct_service_requests with plain SQL and Python:
counts, baselines, Poisson tails, medians, Kaplan–Meier medians and the chronic
flag, each by its documented definition rather than by the models' SQL."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from tests.helpers.dbt import dbt_build
from tests.helpers.oracles import kaplan_meier_median, poisson_upper_tail
from tests.helpers.warehouse import copy_warehouse, query

pytestmark = pytest.mark.integration

AS_OF = "2026-11-01 00:00:00+00"

# Demand requests (hotspots) by their definition: neither information-only nor a
# duplicate nor dated before 2000; invalid durations still count.
DEMAND = (
    "not coalesce(is_information_only, false) and not is_duplicate"
    " and requested_at >= timestamptz '2000-01-01 00:00:00+00'"
)


@pytest.fixture(scope="module")
def warehouse(samples_raw, tmp_path_factory):
    work = tmp_path_factory.mktemp("gaps_and_hotspots")
    path = copy_warehouse(samples_raw, work / "db")
    dbt_build(path, "+mart_service_gaps +mart_hotspots", work, dbt_vars={"as_of": AS_OF})
    return path


def test_every_request_lands_in_one_row_per_layer(warehouse):
    """Without boundary files each city has the built-in layers zip and h3; each
    counts every request once."""
    gaps = dict(
        query(
            warehouse,
            "select city_id, sum(requests) from marts.mart_service_gaps where layer = 'zip' group by 1",
        )
    )
    in_fct = dict(query(warehouse, "select city_id, count(*) from marts.fct_service_requests group by 1"))
    hotspots = dict(
        query(
            warehouse, "select city_id, sum(requests) from marts.mart_hotspots where layer = 'zip' group by 1"
        )
    )
    per_layer = {
        table: query(
            warehouse,
            f"select city_id, layer, sum(requests) from marts.{table} group by all",  # noqa: S608
        )
        for table in ("mart_service_gaps", "mart_hotspots")
    }
    demand = dict(
        query(
            warehouse, f"select city_id, count(*) from marts.fct_service_requests where {DEMAND} group by all"
        )
    )
    rows = {
        table: dict(
            query(warehouse, f"select city_id, count(*) from marts.{table} where layer = 'zip' group by 1")  # noqa: S608
        )
        for table in ("mart_service_gaps", "mart_hotspots")
    }

    assert gaps == in_fct
    assert hotspots == demand
    assert {layer for _, layer, _ in per_layer["mart_service_gaps"]} == {"zip", "h3"}
    assert {(city, n) for city, _, n in per_layer["mart_service_gaps"]} == set(in_fct.items())
    assert {(city, n) for city, _, n in per_layer["mart_hotspots"]} == set(demand.items())
    assert {city: gaps[city] for city in ("nyc", "la", "sf")} == {"nyc": 3116, "la": 9999, "sf": 11879}
    # Demand leaves out information-only requests and duplicates (NYC 12 + 98, SF 163 + 259).
    assert {city: hotspots[city] for city in ("nyc", "la", "sf")} == {"nyc": 3006, "la": 9998, "sf": 11457}
    assert {city: rows["mart_service_gaps"][city] for city in ("nyc", "la", "sf")} == {
        "nyc": 2553,
        "la": 616,
        "sf": 5579,
    }
    assert {city: rows["mart_hotspots"][city] for city in ("nyc", "la", "sf")} == {
        "nyc": 2480,
        "la": 615,
        "sf": 7571,
    }


def test_a_noise_cluster_in_brooklyn_from_fct(warehouse):
    """NYC's Brooklyn CB06 noise export: ZIP 11231 in June-July 2016."""
    found = {}
    for week in (date(2016, 6, 20), date(2016, 6, 27), date(2016, 7, 4)):
        (requests,) = query(
            warehouse,
            f"select count(*) from marts.fct_service_requests where {DEMAND} and city_id = 'nyc'"
            " and area_id = '11231' and category_id = 'noise'"
            " and requested_at_local >= ? and requested_at_local < ?",
            [week, week + timedelta(days=7)],
        )[0]
        (baseline,) = query(
            warehouse,
            f"select count(*) from marts.fct_service_requests where {DEMAND} and city_id = 'nyc'"
            " and area_id = '11231' and category_id = 'noise'"
            " and requested_at_local >= ? and requested_at_local < ?",
            [week - timedelta(weeks=8), week],
        )[0]
        row = query(
            warehouse,
            "select requests, baseline_requests, baseline_mean, has_full_baseline, poisson_p, is_emerging"
            " from marts.mart_hotspots where city_id = 'nyc' and layer = 'zip' and area_id = '11231'"
            " and category_id = 'noise' and requested_week = ?",
            [week],
        )[0]
        found[week] = (requests, baseline, row)

    assert {week: (n, base) for week, (n, base, _) in found.items()} == {
        date(2016, 6, 20): (39, 0),
        date(2016, 6, 27): (33, 39),
        date(2016, 7, 4): (24, 72),
    }
    for requests, baseline, row in found.values():
        lam = max(baseline / 8, 1 / 8)
        assert row[:4] == (requests, baseline, baseline / 8, True)
        assert row[4] == pytest.approx(poisson_upper_tail(requests, lam), rel=1e-9)
        assert row[5] is True
    # 24 requests against 9 a week: P = 2.45e-5, still far below 0.01.
    assert found[date(2016, 7, 4)][2][4] == pytest.approx(2.4519e-5, rel=1e-4)


def area_durations(
    warehouse, city_id: str, category_id: str, month: date, area_id: str | None, layer: str = "zip"
):
    """Counted requests as (hours, closed): closed ones at hours_to_close, open ones
    censored at their age at the as-of time. The area is the reported ZIP, or the
    request's area in another layer of int_request_areas; None is the whole city."""
    as_of = datetime.fromisoformat(AS_OF)
    next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    rows = query(
        warehouse,
        "select hours_to_close, requested_at from marts.fct_service_requests as facts"
        " left join intermediate.int_request_areas as areas"
        " on areas.city_id = facts.city_id and areas.request_id = facts.request_id and areas.layer = ?"
        " where exclusion_reason is null and facts.city_id = ? and category_id = ?"
        " and requested_at_local >= ? and requested_at_local < ?"
        " and (? is null or coalesce(areas.area_id, facts.area_id) = ?)",
        [layer, city_id, category_id, month, next_month, area_id, area_id],
    )
    return [
        (hours, True) if hours is not None else ((as_of - requested_at).total_seconds() / 3600, False)
        for hours, requested_at in rows
    ]


def test_a_parking_gap_only_kaplan_meier_sees(warehouse):
    """Boston's parking requests in one H3 cell, December 2019 (Open311 feed): the
    closed ones went as fast as the city's, but the ones still open keep the cell's
    Kaplan–Meier median far above the city's. (San Francisco graffiti in 94117 was the
    example here until its open request from "Integrated Agency", another department's
    system, became staff_initiated and left the count.)"""
    month, cell = date(2019, 12, 1), "882a306685fffff"
    area = area_durations(warehouse, "boston_open311", "parking", month, cell, layer="h3")
    city = area_durations(warehouse, "boston_open311", "parking", month, None)
    row = query(
        warehouse,
        "select counted_requests, open_requests, median_hours_to_close, km_median_hours_to_close,"
        " city_median_hours_to_close, city_km_median_hours_to_close, median_ratio, gap_index, is_gap"
        " from marts.mart_service_gaps where city_id = 'boston_open311' and layer = 'h3' and area_id = ?"
        " and category_id = 'parking' and requested_month = ?",
        [cell, month],
    )[0]
    median = statistics.median(hours for hours, closed in area if closed)
    city_median = statistics.median(hours for hours, closed in city if closed)
    km, city_km = kaplan_meier_median(area), kaplan_meier_median(city)

    assert row[:2] == (len(area), sum(1 for _, closed in area if not closed)) == (22, 6)
    assert row[2:6] == pytest.approx((median, km, city_median, city_km))
    assert row[6] == pytest.approx(median / city_median)
    assert row[7] == pytest.approx(km / city_km)
    assert row[8] is True
    # Closed-only, the cell looks as fast as the city; counting the open requests, it
    # takes 1.88 times as long.
    assert (round(row[6], 2), round(row[7], 2)) == (0.96, 1.88)


def test_the_city_median_is_the_same_for_every_area(warehouse):
    """NYC housing conditions in November 2012 (17 areas): one city-wide figure, the
    median of every counted request of the month, whatever its area."""
    month = date(2012, 11, 1)
    city = area_durations(warehouse, "nyc", "housing_conditions", month, None)
    rows = query(
        warehouse,
        "select area_id, counted_requests, city_median_hours_to_close, city_km_median_hours_to_close,"
        " gap_index"
        " from marts.mart_service_gaps where city_id = 'nyc' and layer = 'zip'"
        " and category_id = 'housing_conditions' and requested_month = ?",
        [month],
    )
    every_layer = query(
        warehouse,
        "select distinct layer, city_median_hours_to_close, city_km_median_hours_to_close"
        " from marts.mart_service_gaps where city_id = 'nyc' and category_id = 'housing_conditions'"
        " and requested_month = ?",
        [month],
    )
    expected_median = statistics.median(hours for hours, closed in city if closed)

    assert sum(row[1] for row in rows) == len(city)
    city_figures = {(row[2], row[3]) for row in rows}
    assert city_figures == {(expected_median, kaplan_meier_median(city))} == {(264.0, 264.0)}
    # The city-wide figure counts each request once, so every layer has the same one.
    assert set(every_layer) == {("zip", 264.0, 264.0), ("h3", 264.0, 264.0)}
    # ZIP 11691 (Far Rockaway): 7 requests, median 2,184 hours against the city's 264.
    assert {row[0]: row[4] for row in rows}["11691"] == pytest.approx(2184 / 264)


def test_chronic_flag_counts_gap_months(warehouse):
    rows = query(
        warehouse,
        "select city_id, layer, area_id, category_id, requested_month, is_gap, gap_months_in_last_4,"
        " chronically_underserved from marts.mart_service_gaps",
    )
    gap_months = defaultdict(set)
    for city_id, layer, area_id, category_id, month, is_gap, *_ in rows:
        if is_gap:
            gap_months[city_id, layer, area_id, category_id].add(month.year * 12 + month.month)
    recomputed = {
        row[:5]: len({row[4].year * 12 + row[4].month - back for back in range(4)} & gap_months[row[:4]])
        for row in rows
    }
    in_zips = {key: n for key, n in recomputed.items() if key[1] == "zip"}

    assert {row[:5]: row[6] for row in rows} == recomputed
    assert all(row[7] == (row[6] >= 3) for row in rows)
    # The samples' ZIPs hold at most 2 gap months in any 4 (SF graffiti in ZIP 94110).
    assert max(in_zips.values()) == 2
    # 56 ZIP gap months (47 while staff-logged and instantly closed requests were timed).
    assert sum(1 for row in rows if row[5] and row[1] == "zip") == 56
