"""The harmonised taxonomy seeds over every real sample: each loaded service type and
department is mapped, the mappings say what the records mean, NYC's SLA figures are
the ones its own due dates show, and an unmapped type fails the build by name."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from tests.conftest import dbt_build, query, run_dbt
from tests.integration.conftest import copy_warehouse

pytestmark = pytest.mark.integration

SEEDS = "service_categories service_type_categories departments service_level_agreements"
MAPPED_TESTS = "assert_every_service_type_is_mapped assert_every_department_is_mapped"
REQUIRED_CATEGORIES = {
    "noise", "street_condition", "street_lights_and_signals", "missed_collection", "illegal_dumping",
    "graffiti", "abandoned_vehicle", "parking", "water_and_sewer", "rodents_and_pests", "trees",
    "sidewalks", "heat_and_hot_water", "housing_conditions", "needles_and_syringes",
    "homeless_encampment", "animal", "information_only", "other",
}  # fmt: skip
# Each request's category: its exact subtype's row, else its type's any-subtype row.
CATEGORISED = """
    select r.city_id, r.service_name, r.service_subtype,
        coalesce(exact.category_id, any_subtype.category_id) as category_id
    from intermediate.int_service_requests as r
    left join reference.service_type_categories as exact
        on exact.city_id = r.city_id and exact.service_name = r.service_name
        and exact.service_subtype = r.service_subtype
    left join reference.service_type_categories as any_subtype
        on any_subtype.city_id = r.city_id and any_subtype.service_name = r.service_name
        and any_subtype.service_subtype is null
"""
NYC_SLA_MODES = """
    with due as (
        select service_name, cast(round(epoch(due_at - requested_at) / 3600) as integer) as hours
        from intermediate.int_service_requests where city_id = 'nyc' and due_at is not null
    ), counted as (
        select service_name, hours, count(*) as n,
            sum(count(*)) over (partition by service_name) as with_due_date
        from due group by service_name, hours
    )
    select service_name, hours from counted where with_due_date >= 3
    qualify row_number() over (partition by service_name order by n desc, hours) = 1
"""


@pytest.fixture(scope="module")
def built(samples_raw, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("taxonomy")
    warehouse = copy_warehouse(samples_raw, work / "db")
    dbt_build(warehouse, f"+int_service_requests {SEEDS} {MAPPED_TESTS}", work)
    return warehouse


def test_categories_are_the_harmonised_set(built):
    warehouse = built
    ids = {r[0] for r in query(warehouse, "select category_id from reference.service_categories")}
    mapped = {
        r[0] for r in query(warehouse, "select distinct category_id from reference.service_type_categories")
    }
    assert REQUIRED_CATEGORIES <= ids
    assert 22 <= len(ids) <= 27
    assert mapped <= ids
    # Every category is used by some real request type.
    assert mapped == ids


def test_every_loaded_service_type_has_an_any_subtype_row(built):
    warehouse = built
    seeded = set(
        query(
            warehouse,
            "select city_id, service_name from reference.service_type_categories "
            "where service_subtype is null",
        )
    )
    loaded = set(
        query(warehouse, "select distinct city_id, service_name from intermediate.int_service_requests")
    )
    # The seed may map more (the synthetic demo's NYC types); it must map every loaded type.
    assert loaded - seeded == set()
    per_city = Counter(city for city, _ in loaded)
    assert (
        per_city["nyc"] == 140 and per_city["sf"] == 44 and per_city["la"] == 12 and per_city["boston"] == 36
    )
    assert len(loaded) == 281
    unmapped = query(warehouse, f"select * from ({CATEGORISED}) where category_id is null")
    assert unmapped == []


def test_real_types_land_in_the_categories_they_mean(built):
    warehouse = built
    counts = {
        (city, name, category): n
        for city, name, category, n in query(
            warehouse,
            f"select city_id, service_name, category_id, count(*) from ({CATEGORISED}) group by all",
        )
    }
    assert counts[("nyc", "HEAT/HOT WATER", "heat_and_hot_water")] == 129
    assert counts[("nyc", "HEATING", "heat_and_hot_water")] == 206
    assert counts[("nyc", "Derelict Vehicles", "abandoned_vehicle")] == 27
    assert counts[("nyc", "Noise - Residential", "noise")] == 273
    assert counts[("la", "Bulky Items", "bulky_items")] == 4432
    assert counts[("la", "Dead Animal Removal", "animal")] == 229
    assert counts[("chicago_open311", "Abandoned Vehicle", "abandoned_vehicle")] == 1
    assert counts[("boston", "Needle Pickup", "needles_and_syringes")] == 2
    assert counts[("jersey_city", "Ask a Question", "information_only")] == 1
    # SF street cleaning: the subtype decides for needles and bulky items, the type for the rest.
    assert counts[("sf", "Street and Sidewalk Cleaning", "needles_and_syringes")] == 21
    assert counts[("sf", "Street and Sidewalk Cleaning", "bulky_items")] == 944
    assert counts[("sf", "Street and Sidewalk Cleaning", "illegal_dumping")] == 616  # dumping + hazardous
    assert counts[("sf", "Street and Sidewalk Cleaning", "street_and_sidewalk_cleaning")] == 2705
    # NYC's sanitation complaint type is generic: dead animals and dump-outs are told apart by descriptor.
    assert counts[("nyc", "Sanitation Condition", "animal")] == 12
    assert counts[("nyc", "Sanitation Condition", "illegal_dumping")] == 22
    # Pre-2017 SF general requests: call-backs ask for information, the rest go by department.
    assert counts[("sf", "General Requests", "information_only")] == 157
    assert counts[("sf", "General Requests", "water_and_sewer")] == 56
    noise = query(
        warehouse, f"select count(*) from ({CATEGORISED}) where city_id = 'nyc' and category_id = 'noise'"
    )
    assert noise == [(527,)]  # 523 "Noise*" requests and 4 Illegal Fireworks


def test_departments_collapse_queues_into_canonical_departments(built):
    warehouse = built
    rows = query(
        warehouse,
        "select city_id, source_department, department_id, department_name from reference.departments",
    )
    mapping = {(city, source): (dept, name) for city, source, dept, name in rows}
    # SF's four sign-shop queues named after technicians arrive as one (staging drops the names).
    assert len(rows) == 216
    assert all(dept.startswith(f"{city}.") for city, _, dept, _ in rows)
    # One name per canonical department.
    assert len({dept for _, _, dept, _ in rows}) == len({(dept, name) for _, _, dept, name in rows})
    assert mapping[("nyc", "HPD")] == ("nyc.hpd", "Housing Preservation and Development")
    assert mapping[("nyc", "MAYOR\u00e2\u0080\u0099S OFFICE OF SPECIAL ENFORCEMENT")][0] == "nyc.ose"
    assert mapping[("la", "BOS")] == ("la.sanitation", "Bureau of Sanitation")
    assert mapping[("la", "OCB")] == ("la.ocb", "Office of Community Beautification")
    assert mapping[("la", "LADWP")] == ("la.ladwp", "Department of Water and Power")
    for queue in ("DPW Ops Queue", "DPW BSM Queue", "DPW - Bureau of Street Environmental Services - G"):
        assert mapping[("sf", queue)] == ("sf.public_works", "Public Works")
    sf_public_works = [s for (city, s), (dept, _) in mapping.items() if dept == "sf.public_works"]
    assert len(sf_public_works) == 12
    loaded = query(
        warehouse,
        "select count(distinct (city_id, department)) from intermediate.int_service_requests "
        "where department is not null",
    )
    assert loaded == [(216,)]


def test_nyc_slas_are_the_modes_of_its_own_due_dates(built):
    warehouse = built
    seed = query(
        warehouse, "select city_id, service_name, sla_hours, basis from reference.service_level_agreements"
    )
    assert {city for city, *_ in seed} == {"nyc"}
    assert {basis for *_, basis in seed} == {"NYC Due Date recorded in the samples (mode per complaint type)"}
    assert {name: hours for _, name, hours, _ in seed} == dict(query(warehouse, NYC_SLA_MODES))
    sla = {name: hours for _, name, hours, _ in seed}
    assert len(sla) == 41
    assert sla["Noise - Residential"] == 8 and sla["Blocked Driveway"] == 8
    assert sla["Street Condition"] == 240 and sla["Sidewalk Condition"] == 720
    assert sla["Food Establishment"] == 1440


def test_an_unmapped_type_and_department_fail_the_build_by_name(built, tmp_path):
    warehouse = copy_warehouse(built, tmp_path / "db")
    with duckdb.connect(str(warehouse)) as con:
        # A real Bloomington request, re-typed and re-routed to names no seed knows.
        con.execute(
            "insert into raw_bloomington.service_requests "
            "select * replace ('bloomington-unmapped' as source_id, 'unmapped-1' as service_request_id, "
            "'Unicorn Sighting' as service_name, 'Department of Unicorns' as agency_responsible) "
            "from raw_bloomington.service_requests where service_name = 'Graffiti'"
        )
    # Staging and intermediate are views: the new raw row reaches the tests without a rebuild.
    done = run_dbt(warehouse, MAPPED_TESTS, tmp_path)
    assert done.returncode != 0
    # The output names what to map, not just how many rows failed.
    unmapped_type = "city_id=bloomington, service_name=Unicorn Sighting, service_subtype=None, requests=1"
    assert f"unmapped service type: {unmapped_type}" in done.stdout
    unmapped_department = "city_id=bloomington, department=Department of Unicorns, requests=1"
    assert f"unmapped department: {unmapped_department}" in done.stdout
    assert "FAIL 1 assert_every_service_type_is_mapped" in done.stdout
    assert "FAIL 1 assert_every_department_is_mapped" in done.stdout
