"""The civic311 code location: every asset group, check, job and schedule by name.

    raw/<city>/service_requests    dlt loads, one daily-partitioned asset per city feed
      + source_ids_present_and_unique (blocking)   (Open311 cities also raw/<city>/services)
    geography/boundaries           every city's boundary layers (geopandas)
    staging/ intermediate/ marts/   dbt models and their tests (int_request_areas: the spatial join)
    maps/<city>                    gap and hotspot maps (shown in the asset's metadata), area exports
    daily_refresh (+ schedule), refresh_<city>, refresh_boundaries, draw_maps (+ schedules)   jobs

`workspace.yaml` points here; `dagster dev` and the `civic311` CLI load `defs`.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions

from ingestion.pipeline import warehouse_path
from ingestion.registry import Registry, load_registry
from orchestration.assets.geography import build_boundaries_asset, build_maps_asset
from orchestration.assets.ingestion import build_raw_assets
from orchestration.assets.transformation import civic311_dbt_models
from orchestration.checks.raw import build_raw_checks
from orchestration.resources import build_resources, dbt_project
from orchestration.schedules import (
    boundaries_job,
    boundaries_schedule,
    city_refresh_job,
    daily_refresh_job,
    daily_refresh_schedule,
    maps_job,
    maps_schedule,
)

dbt_project.prepare_if_dev()


def build_definitions(registry: Registry | None = None, warehouse: Path | None = None) -> Definitions:
    registry = registry or load_registry()
    warehouse = warehouse or warehouse_path()
    return Definitions(
        assets=[
            *(build_raw_assets(city, warehouse) for city in registry.cities),
            civic311_dbt_models,
            build_boundaries_asset(registry, warehouse),
            *(build_maps_asset(city, warehouse) for city in registry.cities if city.boundaries),
        ],
        asset_checks=[build_raw_checks(city, warehouse) for city in registry.cities],
        jobs=[
            daily_refresh_job,
            *(city_refresh_job(city) for city in registry.cities),
            boundaries_job,
            maps_job,
        ],
        schedules=[daily_refresh_schedule, boundaries_schedule, maps_schedule],
        resources=build_resources(),
    )


defs = build_definitions()
