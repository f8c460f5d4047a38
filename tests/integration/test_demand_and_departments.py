"""The demand-timing and cross-department marts over every real sample, each figure
recomputed here independently (Python or plain SQL over fct_service_requests)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import duckdb
import pytest

from tests.helpers.dbt import dbt_build
from tests.helpers.oracles import poisson_upper_tail
from tests.helpers.samples import SAMPLES_AS_OF
from tests.helpers.warehouse import copy_warehouse, query

pytestmark = pytest.mark.integration

SELECT = "+mart_demand_timing +mart_cross_department +mart_department_handoffs +mart_department_joint_spikes"
AS_OF = SAMPLES_AS_OF
PLACEHOLDER_BEFORE = datetime.fromisoformat("2000-01-01 00:00:00+00:00")


@pytest.fixture(scope="module")
def marts(samples_built):
    """The samples' marts, built as of AS_OF (read-only: copy it before changing anything)."""
    return samples_built


def is_demand(requested_at, is_duplicate, is_information_only) -> bool:
    return not is_duplicate and not is_information_only and requested_at >= PLACEHOLDER_BEFORE


def test_demand_timing_is_a_dense_week_of_demand(marts):
    requests = query(
        marts,
        "select city_id, coalesce(category_id, 'unmapped'), requested_at, requested_at_local, "
        "is_duplicate, coalesce(is_information_only, false) from marts.fct_service_requests",
    )
    groups = {(city, category) for city, category, *_ in requests}
    expected = Counter(
        (city, category, local.weekday() * 24 + local.hour)
        for city, category, at, local, duplicate, info in requests
        if is_demand(at, duplicate, info)
    )
    cells = query(
        marts,
        "select city_id, category_id, hour_of_week, day_of_week, day_name, hour_of_day, requests, "
        "share_of_week from marts.mart_demand_timing",
    )
    assert len(cells) == 168 * len(groups)
    per_group = Counter((city, category) for city, category, *_ in cells)
    assert set(per_group) == groups and set(per_group.values()) == {168}
    counted = {(c, g, h): n for c, g, h, _, _, _, n, _ in cells if n}
    assert counted == dict(expected)
    shares = defaultdict(float)
    for city, category, hour, day, day_name, hour_of_day, _, share in cells:
        shares[(city, category)] += share
        assert (day, hour_of_day) == (hour // 24 + 1, hour % 24)
        assert day_name == (date(2024, 1, 1) + timedelta(days=day - 1)).strftime("%A")  # a Monday
    with_demand = {(city, category) for city, category, _ in expected}
    for group, total in shares.items():
        assert total == pytest.approx(1.0 if group in with_demand else 0.0, abs=1e-9), group
    # LA's 9,999 requests hold 1 information-only request and no duplicate
    la_total = sum(n for city, _, _, _, _, _, n, _ in cells if city == "la")
    assert la_total == 9998 == sum(n for (city, _, _), n in expected.items() if city == "la")


def test_cross_department_matches_plain_sql_over_fct(marts):
    recomputed = query(
        marts,
        """
        select
            city_id, department_id, category_id, requested_month,
            count(*),
            count(*) filter (where is_duplicate),
            coalesce(list(hours_to_close) filter (where exclusion_reason is null and closed_at is not null
                and hours_to_close is not null), [])
        from marts.fct_service_requests
        group by all
        """,
    )
    all_cities = defaultdict(list)
    for _, _, category, month, _, _, hours in recomputed:
        if category is not None:
            all_cities[(category, month)] += hours
    rows = {
        (city, department, category, month): rest
        for city, department, category, month, *rest in query(
            marts,
            "select city_id, department_id, category_id, requested_month, requests, duplicate_requests, "
            "duplicate_rate, median_hours_to_close, category_median_ratio from marts.mart_cross_department",
        )
    }
    for city in ("nyc", "la", "sf"):
        cells = [r for r in recomputed if r[0] == city]
        assert cells and {key for key in rows if key[0] == city} == {tuple(r[:4]) for r in cells}, city
        for _, department, category, month, requests, duplicates, hours in cells:
            got = rows[(city, department, category, month)]
            median = statistics.median(hours) if hours else None
            everywhere = all_cities[(category, month)] if category else []
            typical = statistics.median(everywhere) if everywhere else None
            ratio = median / typical if median is not None and typical else None
            assert got[:3] == [requests, duplicates, pytest.approx(duplicates / requests)]
            assert got[3] == pytest.approx(median), (city, department, category, month)
            assert got[4] == pytest.approx(ratio), (city, department, category, month)
    # every request is in exactly one row, and only Chicago says who took a request
    totals = dict(query(marts, "select city_id, sum(requests) from marts.mart_cross_department group by 1"))
    assert {c: totals[c] for c in ("nyc", "la", "sf")} == {"nyc": 3116, "la": 9999, "sf": 11879}
    chicago = query(
        marts,
        "select department_id, category_id, requested_month, requests, duplicate_rate, "
        "created_elsewhere_requests, created_elsewhere_share, median_hours_to_close "
        "from marts.mart_cross_department where city_id = 'chicago' order by department_id",
    )
    assert chicago == [
        ("chicago.aviation", "noise", date(2024, 11, 1), 1, 0.0, 1, 1.0, None),
        ("chicago.cdot", "street_condition", date(2024, 3, 1), 2, 0.5, 2, 1.0, 54.5),
    ]
    published = query(
        marts,
        "select distinct city_id from marts.mart_cross_department where created_elsewhere_share is not null",
    )
    assert published == [("chicago",)]


def test_joint_spikes_follow_the_hotspot_rule_per_department(marts):
    weekly = query(
        marts,
        """
        select city_id, area_id, coalesce(department_id, city_id || '.unmapped'), requested_week, count(*)
        from marts.fct_service_requests
        where not is_duplicate and not coalesce(is_information_only, false)
            and requested_at >= timestamptz '2000-01-01 00:00:00+00'
        group by all
        """,
    )
    counts = {(city, area, department, week): n for city, area, department, week, n in weekly}
    first_week = {}
    for city, _, _, week, _ in weekly:
        first_week[city] = min(week, first_week.get(city, week))
    spikes = defaultdict(list)
    for (city, area, department, week), n in counts.items():
        before = (week - timedelta(weeks=k) for k in range(1, 9))
        baseline = sum(counts.get((city, area, department, earlier), 0) for earlier in before)
        full = week >= first_week[city] + timedelta(weeks=8)
        if full and n >= 5 and poisson_upper_tail(n, max(baseline / 8, 1 / 8)) < 0.01:
            spikes[(city, area, week)].append((department, n))
    expected = {
        key: (len(found), ",".join(sorted(d for d, _ in found)), sum(n for _, n in found))
        for key, found in spikes.items()
        if len(found) >= 2
    }
    got = {
        (city, area, week): (spiking, departments, requests)
        for city, area, week, spiking, departments, requests in query(
            marts,
            "select city_id, area_id, requested_week, spiking_departments, department_ids, requests "
            "from marts.mart_department_joint_spikes",
        )
    }
    assert got == expected
    # SF's API sample is one week of July 2021 against years of sparse exports: most areas spike there
    assert sum(1 for city, _, week in got if (city, week) == ("sf", date(2021, 7, 5))) >= 10


def test_a_reassignment_reaches_the_handoff_marts(marts, tmp_path):
    """Chicago moves SR24-00000001 from Transportation to Aviation three days after it
    was created; an incremental run over that day finds the hand-off."""
    warehouse = copy_warehouse(marts, tmp_path / "db")
    assert query(warehouse, "select count(*) from marts.mart_department_handoffs") == [(0,)]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update raw_chicago.service_requests set owner_department = 'Aviation', "
            "source_updated_at = timestamptz '2024-03-13 15:00:00+00' where source_id = 'SR24-00000001'"
        )
    dbt_build(warehouse, SELECT, tmp_path, window=("2024-03-13", "2024-03-14"), dbt_vars={"as_of": AS_OF})

    # created 2024-03-10 07:30 UTC, handed off 2024-03-13 15:00 UTC: 79.5 hours with Transportation
    assert query(warehouse, "select * from marts.mart_department_handoffs") == [
        ("chicago", "chicago.cdot", "chicago.aviation", date(2024, 3, 1), 1, 79.5)
    ]
    chicago = query(
        warehouse,
        "select department_id, requests, duplicate_requests, handoffs_out, handoffs_in, "
        "created_elsewhere_requests, median_hours_to_close from marts.mart_cross_department "
        "where city_id = 'chicago' and requested_month = date '2024-03-01' order by department_id",
    )
    assert chicago == [
        ("chicago.aviation", 1, 0, 0, 1, 1, 54.5),
        ("chicago.cdot", 1, 1, 1, 0, 1, None),
    ]
