"""geography/boundaries as Dagster runs it: config picks cities and layers, a layer
left out is kept, a layer the registry drops is removed, and the metadata says
which layers changed."""

from __future__ import annotations

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize

from ingestion.geography.boundaries import MIRROR_ENV
from ingestion.registry import load_registry, parse_registry
from orchestration.assets.geography import build_boundaries_asset
from tests.helpers.data import REPO, SHARED_DATA
from tests.helpers.warehouse import query

pytestmark = pytest.mark.integration


def run(registry, warehouse, instance, **config):
    result = materialize(
        [build_boundaries_asset(registry, warehouse)],
        instance=instance,
        run_config={"ops": {"geography__boundaries": {"config": config}}},
        raise_on_error=False,
    )
    return result


def changed(instance) -> list[dict]:
    event = instance.get_latest_materialization_event(AssetKey(["geography", "boundaries"]))
    return event.asset_materialization.metadata["changed_layers"].value


def stored(warehouse) -> dict[str, tuple[int, int]]:
    return {
        layer: (areas, people)
        for layer, areas, people in query(
            warehouse,
            "select layer, count(*), count(population) from geography.boundaries "
            "where city_id = 'nyc' group by 1",
        )
    }


def test_boundaries_asset_loads_chosen_layers_keeps_the_rest_and_drops_undeclared(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(SHARED_DATA))
    warehouse = tmp_path / "warehouse.duckdb"
    instance = DagsterInstance.ephemeral()
    registry = load_registry()

    # The demo's load: one city, only its layer that ships in a package.
    assert run(registry, warehouse, instance, cities=["nyc"], layers=["modzcta"]).success
    assert stored(warehouse) == {"modzcta": (178, 178)}
    assert changed(instance) == [{"city": "nyc", "layer": "modzcta"}]

    # Every NYC layer: MODZCTA is unchanged and left alone, the other two are new.
    assert run(registry, warehouse, instance, cities=["nyc"]).success
    assert stored(warehouse) == {
        "modzcta": (178, 178),
        "community_district": (59, 59),
        "council_district": (51, 51),
    }
    assert changed(instance) == [
        {"city": "nyc", "layer": "community_district"},
        {"city": "nyc", "layer": "council_district"},
    ]

    # The registry drops council districts: a run over another layer removes them.
    raw = yaml.safe_load((REPO / "ingestion" / "cities.yaml").read_text())
    nyc = next(city for city in raw["cities"] if city["id"] == "nyc")
    nyc["boundaries"] = [b for b in nyc["boundaries"] if b["name"] != "council_district"]
    assert run(parse_registry(raw), warehouse, instance, cities=["nyc"], layers=["modzcta"]).success
    assert stored(warehouse) == {"modzcta": (178, 178), "community_district": (59, 59)}
    assert changed(instance) == [{"city": "nyc", "layer": "council_district"}]


def test_boundaries_asset_refuses_a_layer_no_chosen_city_declares(tmp_path):
    result = run(
        load_registry(), tmp_path / "warehouse.duckdb", DagsterInstance.ephemeral(), layers=["wards"]
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "wards" in message and "ingestion/cities.yaml" in message
    assert not (tmp_path / "warehouse.duckdb").exists()
