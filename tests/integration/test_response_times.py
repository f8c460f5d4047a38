"""mart_response_times over every real sample, checked against figures computed
independently: NYC's HPD straight from the recorded files, and the Kaplan–Meier
median of San Francisco's most backlogged group by a plain Python estimator."""

from __future__ import annotations

import math
import statistics
from datetime import datetime

import duckdb
import pytest

from tests.helpers.data import SHARED_DATA
from tests.helpers.oracles import LA_EXPORT, kaplan_meier_median
from tests.helpers.samples import SAMPLES_AS_OF

pytestmark = pytest.mark.integration

AS_OF = SAMPLES_AS_OF
NYC = SHARED_DATA / "nyc"
GROUP_FIGURES = (
    "requests",
    "excluded_information_only",
    "excluded_duplicate",
    "excluded_invalid_duration",
    "excluded_closed_on_creation",
    "counted_requests",
    "valid_closed_requests",
    "open_requests",
    "median_hours_to_close",
    "p90_hours_to_close",
)

# One NYC agency's response times from the three recorded files, with the documented
# exclusions applied here rather than read from fct: the category from the seed (by
# subtype, else by name), a resolution saying "duplicate of", dates before 2000, after
# as-of or closed before opened, closed within 60 s of creation (NYC declares no staff
# channel). Dates are New York wall-clock times: each becomes a UTC instant before
# durations are taken, so a DST change in between counts.
AGENCY_FROM_RAW_FILES = f"""
with

soda as (
    select
        cast(unique_key as varchar) as request_id, agency, complaint_type, descriptor, resolution_description,
        cast(created_date as timestamp) as created_local,
        cast(closed_date as timestamp) as closed_local
    from read_json_auto('{NYC / "nyc311_soda_fhrw-4uyv_sample.json"}')
),

exports as (
    select
        "Unique Key" as request_id,
        "Agency" as agency,
        "Complaint Type" as complaint_type,
        "Descriptor" as descriptor,
        "Resolution Description" as resolution_description,
        strptime("Created Date", '%m/%d/%Y %I:%M:%S %p') as created_local,
        strptime("Closed Date", '%m/%d/%Y %I:%M:%S %p') as closed_local
    from read_csv(
        ['{NYC / "nyc311_mixed_2010_2020_sample.csv"}', '{NYC / "nyc311_export_2016_jun_bk_cb06_noise.csv"}'],
        all_varchar = true, union_by_name = true
    )
),

raw_requests as (
    select * from soda
    union all
    select * from exports
),

categorised as (
    select
        raw_requests.*,
        coalesce(by_subtype.category_id, by_name.category_id) as category_id,
        timezone('America/New_York', created_local) as created_at,
        timezone('America/New_York', closed_local) as closed_at
    from raw_requests
    left join reference.service_type_categories as by_subtype
        on by_subtype.city_id = 'nyc' and by_subtype.service_name = complaint_type
        and by_subtype.service_subtype = descriptor
    left join reference.service_type_categories as by_name
        on by_name.city_id = 'nyc' and by_name.service_name = complaint_type
        and by_name.service_subtype is null
    where agency = $agency
),

judged as (
    select
        *,
        case
            when category_id = 'information_only' then 'information_only'
            when regexp_matches(lower(resolution_description), '\\bduplicate of\\b') then 'duplicate'
            when created_at < timestamptz '2000-01-01 00:00:00+00'
                or closed_at < timestamptz '2000-01-01 00:00:00+00'
                or created_at > timestamptz '{AS_OF}' or closed_at > timestamptz '{AS_OF}'
                or closed_at < created_at
                then 'invalid_duration'
            when epoch(closed_at) - epoch(created_at) <= 60 then 'closed_on_creation'
        end as exclusion
    from categorised
),

measured as (
    select
        *,
        case when exclusion is null then (epoch(closed_at) - epoch(created_at)) / 3600 end as hours,
        (epoch(closed_local) - epoch(created_local)) / 3600 as wall_clock_hours
    from judged
)

select
    category_id,
    cast(date_trunc('month', created_local) as date) as requested_month,
    count(*) as requests,
    count(*) filter (where exclusion = 'information_only') as excluded_information_only,
    count(*) filter (where exclusion = 'duplicate') as excluded_duplicate,
    count(*) filter (where exclusion = 'invalid_duration') as excluded_invalid_duration,
    count(*) filter (where exclusion = 'closed_on_creation') as excluded_closed_on_creation,
    count(*) filter (where exclusion is null) as counted_requests,
    count(hours) as valid_closed_requests,
    count(*) filter (where exclusion is null and closed_at is null) as open_requests,
    quantile_cont(hours, 0.5) as median_hours_to_close,
    quantile_cont(hours, 0.9) as p90_hours_to_close,
    count(*) filter (where hours <> wall_clock_hours) as dst_crossings
from measured
group by all
"""


@pytest.fixture(scope="module")
def warehouse(samples_built):
    """The samples' marts, built as of AS_OF (read-only)."""
    return samples_built


def same_figures(expected: tuple, actual: tuple) -> bool:
    return all(
        math.isclose(e, a, rel_tol=1e-12) if isinstance(e, float) and a is not None else e == a
        for e, a in zip(expected, actual, strict=True)
    )


def test_every_request_lands_in_one_group(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        per_city = dict(
            con.execute("select city_id, sum(requests) from marts.mart_response_times group by 1").fetchall()
        )
        in_fct = dict(
            con.execute("select city_id, count(*) from marts.fct_service_requests group by 1").fetchall()
        )
        parts_add_up = con.execute(
            "select bool_and(counted_requests = requests - excluded_information_only - excluded_duplicate"
            " - excluded_invalid_duration - excluded_staff_initiated - excluded_closed_on_creation"
            " and open_requests = open_0_1_days + open_1_3_days"
            " + open_3_7_days + open_7_30_days + open_30_plus_days) from marts.mart_response_times"
        ).fetchone()[0]
    # NYC: 1,000 SODA rows + 1,999 + 117 export rows; SF: 1,771 + 10,000 + 108.
    assert {city: per_city[city] for city in ("nyc", "la", "sf")} == {"nyc": 3116, "la": 9999, "sf": 11879}
    assert per_city == in_fct
    assert parts_add_up


def test_nyc_hpd_matches_the_recorded_files(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        from_files = con.execute(AGENCY_FROM_RAW_FILES, {"agency": "HPD"}).fetchall()
        from_mart = con.execute(
            f"select category_id, requested_month, {', '.join(GROUP_FIGURES)} "
            "from marts.mart_response_times as mart "
            "join reference.departments as departments using (city_id, department_id) "
            "where city_id = 'nyc' and departments.source_department = 'HPD'"
        ).fetchall()
    expected = {(row[0], row[1]): row[2:-1] for row in from_files}
    actual = {(row[0], row[1]): row[2:] for row in from_mart}

    assert expected.keys() == actual.keys()
    pairs = {key: (figures, actual[key]) for key, figures in expected.items()}
    assert {key: pair for key, pair in pairs.items() if not same_figures(*pair)} == {}
    totals = [sum(figures[i] for figures in expected.values()) for i in range(8)]
    # requests, information-only, duplicate, invalid duration, closed on creation, counted,
    # valid closed, open
    assert totals == [1003, 2, 46, 0, 17, 938, 933, 5]
    # Closed across a DST change: their hours differ from the wall-clock difference.
    assert sum(row[-1] for row in from_files) == 45
    # The largest group: November 2012 housing conditions, 285 closed, 9 of them across
    # the end of daylight time on 4 November.
    largest = max(from_files, key=lambda row: row[2])
    assert (largest[0], str(largest[1])) == ("housing_conditions", "2012-11-01")
    assert (largest[2], largest[-1]) == (285, 9)
    assert actual[(largest[0], largest[1])][-2:] == (264.0, 648.0)


def test_kaplan_meier_median_counts_the_long_open_requests(warehouse):
    as_of = datetime.fromisoformat(AS_OF)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        group = con.execute(
            "select department_id, category_id, requested_month, open_requests, median_hours_to_close,"
            " km_median_hours_to_close from marts.mart_response_times where city_id = 'sf'"
            " order by open_requests desc limit 1"
        ).fetchone()
        requests = con.execute(
            "select hours_to_close, requested_at from marts.fct_service_requests where city_id = 'sf'"
            " and department_id = ? and category_id = ? and requested_month = ? and exclusion_reason is null",
            list(group[:3]),
        ).fetchall()
    department_id, category_id, month, open_requests, median, km_median = group
    durations = [
        (hours, True) if hours is not None else ((as_of - requested_at).total_seconds() / 3600, False)
        for hours, requested_at in requests
    ]

    # San Francisco's July 2021 recording holds the freshest requests, many still open.
    assert (department_id, category_id) == ("sf.public_works", "street_and_sidewalk_cleaning")
    assert str(month) == "2021-07-01"
    assert open_requests == sum(1 for _, closed in durations if not closed) == 144
    assert median == pytest.approx(statistics.median(hours for hours, closed in durations if closed))
    assert km_median == pytest.approx(kaplan_meier_median(durations))
    # Closed-only, half closed within a day; counting the 144 still open, it takes twice that.
    assert (median, km_median) == (pytest.approx(23.1), pytest.approx(46.75))


# LA's export judged by the documented rules: a crew's own entry (RequestSource "Driver
# Self Report", the registry's staff channel) and a request closed within 60 s of
# creation are excluded; the rest are timed in UTC (the export is Los Angeles
# wall-clock time). No LA request is information-only or a duplicate in these types.
LA_JUDGED = f"""
{LA_EXPORT},

judged as (
    select
        *,
        case
            when closed_at < created_at or closed_at > timestamptz '{AS_OF}' then 'invalid_duration'
            when channel = 'Driver Self Report' then 'staff_initiated'
            when date_diff('second', created_at, closed_at) <= 60 then 'closed_on_creation'
        end as exclusion,
        date_diff('second', created_at, closed_at) / 3600 as hours
    from la_export
)
"""

# LA graffiti straight from the export.
LA_GRAFFITI_FROM_FILE = f"""
with {LA_JUDGED}

select
    count(*),
    count(*) filter (where exclusion = 'staff_initiated'),
    count(*) filter (where exclusion = 'closed_on_creation'),
    count(*) filter (where exclusion is null),
    quantile_cont(hours, 0.5) filter (where exclusion is null),
    quantile_cont(hours, 0.5)
from judged
where service_name = 'Graffiti Removal' and owner = 'OCB'
"""


def test_la_graffiti_times_the_response_not_the_crews_own_entries(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.execute(LA_GRAFFITI_FROM_FILE).fetchone()
        mart = con.execute(
            "select requests, excluded_staff_initiated, excluded_closed_on_creation, counted_requests,"
            " median_hours_to_close from marts.mart_response_times"
            " where city_id = 'la' and department_id = 'la.ocb' and category_id = 'graffiti'"
        ).fetchall()
        staff_rows = con.execute(
            "select count(*), bool_and(is_staff_initiated) from marts.fct_service_requests"
            " where city_id = 'la' and exclusion_reason = 'staff_initiated'"
        ).fetchone()

    requests, staff, closed_on_creation, counted, median, median_timing_everything = expected
    # The sample's graffiti is all from December 2017: one mart row.
    assert mart == [(requests, staff, closed_on_creation, counted, pytest.approx(median))]
    # 1,761 of 2,863 are crews' own entries; timed with them, the median was 0 hours.
    assert (requests, staff) == (2863, 1761)
    assert median_timing_everything == 0
    assert median == pytest.approx(64.4, abs=0.05)
    # Every crew entry of the city, whatever its type, is flagged in the facts.
    assert staff_rows == (2019, True)


# Los Angeles sanitation's bulky-item types straight from the export, each on its own:
# the spread of the closing times and Tukey's outliers (beyond 1.5 interquartile ranges
# from the quartiles).
LA_BULKY_TYPES_FROM_FILE = f"""
with {LA_JUDGED},

bulky as (
    select * from judged
    where owner = 'BOS' and service_name in (
        'Bulky Items', 'Illegal Dumping Pickup', 'Metal/Household Appliances', 'Electronic Waste'
    )
),

counted as (
    select service_name, hours from bulky where exclusion is null
),

spread as (
    select
        service_name,
        count(*) as counted_requests,
        count(hours) as valid_closed_requests,
        quantile_cont(hours, 0.25) as q1,
        quantile_cont(hours, 0.5) as median,
        quantile_cont(hours, 0.75) as q3,
        quantile_cont(hours, 0.9) as p90,
        min(hours) as shortest,
        max(hours) as longest
    from counted
    group by service_name
)

select
    spread.service_name,
    (select count(*) from bulky where bulky.service_name = spread.service_name),
    (select count(*) from bulky where bulky.service_name = spread.service_name
        and exclusion = 'staff_initiated'),
    counted_requests, valid_closed_requests, q1, median, q3, p90, shortest, longest,
    (select count(*) from counted where counted.service_name = spread.service_name
        and (hours < q1 - 1.5 * (q3 - q1) or hours > q3 + 1.5 * (q3 - q1)))
from spread
order by 1
"""


def test_la_bulky_item_types_each_have_their_own_spread(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.execute(LA_BULKY_TYPES_FROM_FILE).fetchall()
        mart = con.execute(
            "select service_name, requests, excluded_staff_initiated, counted_requests,"
            " valid_closed_requests, q1_hours_to_close, median_hours_to_close, q3_hours_to_close,"
            " p90_hours_to_close, min_hours_to_close, max_hours_to_close, outlier_requests"
            " from marts.mart_response_times_by_type where city_id = 'la'"
            " and department_id = 'la.sanitation' and service_name = any(?) order by 1",
            [[row[0] for row in expected]],
        ).fetchall()
        categories = dict(
            con.execute(
                "select service_name, category_id from marts.mart_response_times_by_type"
                " where city_id = 'la' and service_name = any(?)",
                [[row[0] for row in expected]],
            ).fetchall()
        )
        pooled = con.execute(
            "select requests from marts.mart_response_times"
            " where city_id = 'la' and department_id = 'la.sanitation' and category_id = 'bulky_items'"
        ).fetchall()

    assert [row[0] for row in expected] == [
        "Bulky Items",
        "Electronic Waste",
        "Illegal Dumping Pickup",
        "Metal/Household Appliances",
    ]
    # Three of them are pooled in mart_response_times as bulky_items.
    bulky = [row for row in expected if categories[row[0]] == "bulky_items"]
    assert [row[0] for row in bulky] == ["Bulky Items", "Electronic Waste", "Metal/Household Appliances"]
    assert pooled == [(sum(row[1] for row in bulky),)]
    assert len(mart) == len(expected)
    for want, got in zip(expected, mart, strict=True):
        assert same_figures(want, got), (want, got)
    # How long do e-waste pickups take? Half within 5.3 days, a quarter beyond 6.1.
    e_waste = dict((row[0], row) for row in mart)["Electronic Waste"]
    assert (round(e_waste[6] / 24, 1), round(e_waste[7] / 24, 1)) == (5.3, 6.1)
