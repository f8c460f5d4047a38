"""docs/adding-a-city.md, followed: a new city is one registry entry plus one
staging file of its column mapping. San Francisco's recorded SODA records are
re-declared as a city the project has never seen, in a registry of that city
alone and a copy of the dbt project with only its staging file (SF's mapping)
added; the records load through the replay and dlt, dbt builds, and the city's
rows reach the marts. Also: dbt run without the registry's vars stops, naming
the fix, and a manifest parsed for other cities counts as stale."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.pipeline import load_source
from ingestion.registry import load_registry
from ingestion.sources import source_for
from tests.helpers.data import REPO, SHARED_DATA
from tests.helpers.dbt import dbt
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import query
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

SF_SODA = SHARED_DATA / "sf" / "sf311_vw6y-z8j6_soda_records_2021-07-10_1771.json"

# Step 1 of the doc: the registry entry.
REGISTRY_ENTRY = """
cities:
  - id: golden_gate
    name: Golden Gate
    timezone: America/Los_Angeles
    first_day: 2008-07-01
    bbox: {south: 37.708, west: -122.515, north: 37.833, east: -122.357}
    source:
      protocol: socrata
      base_url: https://data.example.org
      dataset_id: vw6y-z8j6
      id_field: service_request_id
"""

# Step 2 of the doc: the staging file. The feed is San Francisco's, so its mapping is
# SF's file as it stands: nothing in a staging file names its city.
STAGING_MODEL = REPO / "dbt_project" / "models" / "staging" / "sf" / "stg_sf__service_requests.sql"


def _project_with_the_city(tmp_path: Path) -> Path:
    """A copy of the dbt project with the new city's staging file, and nothing else, added."""
    project = tmp_path / "dbt_project"
    shutil.copytree(
        REPO / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    model = project / "models" / "staging" / "golden_gate" / "stg_golden_gate__service_requests.sql"
    model.parent.mkdir()
    shutil.copyfile(STAGING_MODEL, model)
    return project


def test_a_new_city_is_a_registry_entry_and_a_staging_file(tmp_path, monkeypatch):
    registry = tmp_path / "cities.yaml"
    registry.write_text(REGISTRY_ENTRY)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry))
    city = load_registry().city("golden_gate")
    records = json.loads(SF_SODA.read_text())
    warehouse = tmp_path / "warehouse.duckdb"
    with ReplayServer() as server:
        server.add_dataset(
            "vw6y-z8j6",
            records,
            id_field="service_request_id",
            updated_at_fields=("updated_datetime",),
            prefix="/golden_gate",
        )
        source = source_for(
            city,
            start=datetime(2021, 7, 10, tzinfo=UTC),
            end=datetime(2021, 7, 12, tzinfo=UTC),
            base_url=city.base_url(server.url),
            backoff_seconds=0.01,
        )
        load_source(city, source, warehouse).raise_on_failed_jobs()

    project = _project_with_the_city(tmp_path)
    built = dbt(
        warehouse,
        tmp_path,
        "build",
        "--select",
        "+fct_service_requests +dim_city",
        # A test runs only when all it reads is selected, as run_dbt builds.
        "--indirect-selection",
        "cautious",
        "--exclude",
        "resource_type:unit_test",
        project=project,
    )
    assert built.returncode == 0, built.stdout[-4000:]

    # Every request of the recording reaches the fact table, as staged.
    facts = query(
        warehouse,
        "select count(*), count(distinct request_id) from marts.fct_service_requests "
        "where city_id = 'golden_gate'",
    )
    assert facts == [(1771, 1771)]
    one = "requested_at, requested_at_local, service_name from {} where request_id = '14011783'"
    (fact,) = query(warehouse, "select " + one.format("marts.fct_service_requests"))
    (staged,) = query(warehouse, "select " + one.format("staging.stg_golden_gate__service_requests"))
    assert fact == staged
    # On the registry's clock: Pacific daylight time is seven hours behind UTC in July.
    requested_at, requested_at_local, _ = fact
    assert (
        requested_at.astimezone(UTC).replace(tzinfo=None) - requested_at_local
    ).total_seconds() == 7 * 3600
    # reference.cities and dim_city carry the entry, defaults filled in.
    assert query(warehouse, "select * from reference.cities") == [
        ("golden_gate", "Golden Gate", "Golden Gate", "US", "America/Los_Angeles", "socrata")
        + (37.708, -122.515, 37.833, -122.357, 60)
    ]
    assert query(warehouse, "select city_id, city_name from marts.dim_city") == [
        ("golden_gate", "Golden Gate")
    ]
    # The registry names one city: the other cities' staging models are disabled, not built.
    staged_tables = "select table_name from information_schema.tables where table_schema = 'staging'"
    assert query(warehouse, staged_tables) == [("stg_golden_gate__service_requests",)]


def test_dbt_without_the_registry_stops_and_names_the_fix(tmp_path):
    done = dbt(tmp_path / "warehouse.duckdb", tmp_path, "parse", "--vars", "{}")
    assert done.returncode != 0
    assert "dbt needs the city registry as the var 'cities'" in done.stdout
    assert 'dbt build --vars "$(python -m ingestion.registry)"' in done.stdout


def test_a_manifest_parsed_for_other_cities_is_stale(dbt_manifest, tmp_path, monkeypatch):
    from orchestration.resources import manifest_follows_registry

    assert manifest_follows_registry(dbt_manifest)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", cities=("nyc",))))
    assert not manifest_follows_registry(dbt_manifest)
