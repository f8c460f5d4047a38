"""dbt reads the registry as the var `cities` (Registry.dbt_vars): what the models
and macros read of a city must be in it."""

from __future__ import annotations

import csv
import re

from ingestion.registry import load_registry
from tests.helpers.data import REPO

DBT = REPO / "dbt_project"


def test_the_registry_vars_name_what_dbt_reads():
    cities = {city["id"]: city for city in load_registry().dbt_vars()["cities"]}
    assert cities["boston_open311"] | {"raw_tables": None} == {
        "id": "boston_open311",
        "name": "Boston (Open311)",
        "municipality": "Boston",
        "country": "US",
        "timezone": "America/New_York",
        "protocol": "open311",
        "id_field": "service_request_id",
        "south": 42.227,
        "west": -71.191,
        "north": 42.397,
        "east": -70.923,
        "closed_on_creation_seconds": 60,
        "staff_channels": [],
        "raw_tables": None,
    }
    assert cities["la"]["staff_channels"] == ["Driver Self Report"]
    assert (cities["toronto"]["country"], cities["nyc"]["municipality"]) == ("CA", "New York City")
    assert cities["nyc"]["raw_tables"] == ["service_requests", "service_requests_export"]
    assert cities["detroit"]["raw_tables"] == ["service_requests"]


def test_dbt_reads_only_what_the_vars_carry():
    carried = set(load_registry().dbt_vars()["cities"][0])
    read = {
        field
        for path in [*DBT.glob("models/**/*.sql"), *DBT.glob("macros/**/*.sql"), *DBT.glob("tests/**/*.sql")]
        for field in re.findall(r"\bcity\.(\w+)", path.read_text())
    }
    assert read, "no dbt file reads a city's fields: the pattern no longer matches"
    assert read <= carried, f"dbt reads {sorted(read - carried)} of a city; add them to City.dbt_var"


def test_seed_rows_name_registry_cities():
    """A seed's city_id is a city of the packaged registry or `*` (any city): a typo
    would map nothing. Checked here, not in dbt, since a smaller registry (a test's,
    a deployment of a few cities) legitimately leaves other cities' rows unused."""
    known = {*load_registry(REPO / "ingestion" / "cities.yaml").ids, "*"}
    for path in sorted((DBT / "seeds").glob("*.csv")):
        with path.open(newline="") as f:
            named = {row["city_id"] for row in csv.DictReader(f) if "city_id" in row}
        assert named <= known, f"{path.name} names cities the registry lacks: {sorted(named - known)}"
