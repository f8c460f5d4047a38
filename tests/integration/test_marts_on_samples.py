"""The acceptance view of the marts over every real sample: each of the five marts
answers for New York, Los Angeles and San Francisco, and the facts hold every
request once."""

from __future__ import annotations

import duckdb
import pytest

pytestmark = pytest.mark.integration

MARTS = [
    "mart_response_times",
    "mart_service_gaps",
    "mart_hotspots",
    "mart_demand_timing",
    "mart_cross_department",
]
CITIES = ["nyc", "la", "sf"]


@pytest.mark.parametrize("mart", MARTS)
def test_each_mart_answers_for_nyc_la_and_sf(samples_built, mart):
    with duckdb.connect(str(samples_built), read_only=True) as con:
        rows = dict(
            con.execute(
                f"select city_id, count(*) from marts.{mart} where city_id in ('nyc', 'la', 'sf') group by 1"  # noqa: S608
            ).fetchall()
        )
    assert {city: rows.get(city, 0) > 0 for city in CITIES} == dict.fromkeys(CITIES, True), rows


def test_facts_hold_every_request_once(samples_built):
    with duckdb.connect(str(samples_built), read_only=True) as con:
        requests, keys, unmapped, canonical = con.execute(
            """
            select count(*), count(distinct (city_id, request_id)),
                   count(*) filter (where category_id is null or department_id is null),
                   (select count(*) from intermediate.int_service_requests)
            from marts.fct_service_requests
            """
        ).fetchone()
        created = con.execute(
            "select count(*) from marts.fct_request_events where event_type = 'created'"
        ).fetchone()[0]
    assert requests == keys == canonical == created
    assert unmapped == 0
