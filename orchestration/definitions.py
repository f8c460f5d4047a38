"""The civic311 code location: every asset group, check, job and schedule by name.

    raw/<city>/service_requests    dlt loads, one asset per city feed, partitioned by UTC day from the
                                   city's first_day (the only partitioned assets; Open311 cities
                                   also raw/<city>/services)
      + step raw_checks: source_ids_present_and_unique, raw_<protocol>_suite (blocking),
                         fresh_within_cadence (warning)
    geography/boundaries           every city's boundary layers (geopandas)
    reference/ staging/ quarantine/ intermediate/int_service_requests, int_service_types, int_departments
                                   dbt step 1: the canonical model, its taxonomy and their tests
      + step canonical_checks: int_service_requests_suite (GX), unclassified_share_within_threshold
    intermediate/int_request_areas, geography/placement_disagreements, snapshots/, marts/
                                   dbt step 2, run only when step 1's blocking checks pass
      + step mart_checks: every fact's and mart's GX suite (blocking)
    serving/marts                  publish: the marts that passed every check -> serving file + Parquet
    maps/<city>                    gap and hotspot maps (shown in the asset's metadata), area exports
    refresh_<city>, refresh_models, rebuild, refresh_boundaries, publish, draw_maps (+ schedules)
                                   jobs; rebuild: every model from all of raw (what `civic311 bootstrap` runs)
    daily_refresh                  sensor: each city's load of the day before, then refresh_models over it
    dead_runs                      sensor: marks a killed run failed and frees its warehouse pool slot
    alerts                         job: evaluates alert subscriptions and delivers (orchestration/alerts/);
                                   sensors fresh_request_alerts, published_alerts, alert_retries,
                                   run_failure_alerts, freshness_alerts and dataset_rollover_alerts
                                   launch it

`workspace.yaml` points here; `dagster dev` and `dagster job execute` load `defs`, the
`civic311` CLI and the tests call `build_definitions`. Importing this module does no work:
no dbt parse (`civic311 prepare` writes the manifest beforehand), no registry read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckKey,
    AssetChecksDefinition,
    AssetsDefinition,
    Definitions,
    definitions,
    in_process_executor,
)

if TYPE_CHECKING:
    from ingestion.registry import Registry


def blocking_checks(
    assets: Sequence[AssetsDefinition], checks: Sequence[AssetChecksDefinition]
) -> list[AssetCheckKey]:
    """Every blocking check: dbt tests of severity error (dagster-dbt marks them
    blocking), the GX suites, the raw key checks and the taxonomy gate. The publish
    and the maps audit them."""
    return [spec.key for definition in (*assets, *checks) for spec in definition.check_specs if spec.blocking]


def build_definitions(registry: Registry | None = None, warehouse: Path | None = None) -> Definitions:
    """Every asset, check, job, schedule and sensor for the registry's cities over one
    warehouse. The modules are imported here, not above, so that importing this
    module costs only Dagster's own import (bench/import_time.py measures it)."""
    from ingestion.pipeline import warehouse_path
    from ingestion.registry import load_registry
    from orchestration.alerts.jobs import (
        alert_retries,
        alerts_job,
        dataset_rollover_alerts,
        fresh_request_alerts,
        freshness_alerts,
        published_alerts,
        run_failure_alerts,
    )
    from orchestration.assets.geography import build_boundaries_asset, build_maps_asset
    from orchestration.assets.ingestion import build_raw_assets, raw_table_specs
    from orchestration.assets.publishing import build_publish_asset
    from orchestration.assets.transformation import civic311_dbt_canonical, civic311_dbt_marts
    from orchestration.checks.layers import build_layer_checks
    from orchestration.daily import build_daily_refresh_sensor
    from orchestration.resources import build_resources
    from orchestration.schedules import (
        boundaries_job,
        boundaries_schedule,
        city_refresh_job,
        maps_job,
        maps_schedule,
        publish_job,
        rebuild_job,
        refresh_models_job,
    )
    from orchestration.sensors import dead_runs_sensor

    registry = registry or load_registry()
    warehouse = warehouse or warehouse_path()
    raw = [build_raw_assets(city, warehouse) for city in registry.cities]
    dbt = [civic311_dbt_canonical(registry), civic311_dbt_marts(registry)]
    checks = build_layer_checks(registry, warehouse)
    gating = blocking_checks([*raw, *dbt], checks)
    marts = [key for key in civic311_dbt_marts(registry).keys if key.path[0] == "marts"]
    city_jobs = [city_refresh_job(city) for city in registry.cities]
    return Definitions(
        assets=[
            *raw,
            *(spec for city in registry.cities for spec in raw_table_specs(city)),
            *dbt,
            build_boundaries_asset(registry, warehouse),
            build_publish_asset(warehouse, marts, gating),
            *(build_maps_asset(city, warehouse, gating) for city in registry.cities if city.boundaries),
        ],
        asset_checks=checks,
        jobs=[
            refresh_models_job,
            *city_jobs,
            boundaries_job,
            publish_job,
            rebuild_job,
            maps_job,
            alerts_job,
        ],
        schedules=[boundaries_schedule, maps_schedule],
        sensors=[
            build_daily_refresh_sensor(registry, city_jobs, refresh_models_job),
            dead_runs_sensor,
            fresh_request_alerts,
            published_alerts,
            alert_retries,
            run_failure_alerts,
            freshness_alerts,
            dataset_rollover_alerts,
        ],
        resources=build_resources(),
        # Every step of a run opens the one DuckDB writer (its pool has one slot), so
        # steps never overlap, and a process per step would only add the code
        # location's import to each: every job runs its steps in the run's process.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """What `dagster dev` and `dagster job execute` load: built when the code location
    loads, not when this module is imported. The dbt manifest must be prepared
    (`civic311 prepare`); loading fails with that command when it is not."""
    return build_definitions()
