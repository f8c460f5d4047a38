"""An asset backfill (what the UI launches) loads its raw days in runs of their own,
then materializes the unpartitioned models once, in a run that carries no partition.
That run's dbt window is the backfill's raw days, first to last, so the models
rewrite what the backfill changed rather than everything, across cities whose
partitions start on different days; a run of the models that belongs to no backfill
and has no partition computes everything."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, MaterializeResult, asset
from dagster._core.definitions.selector import (
    PartitionRangeSelector,
    PartitionsByAssetSelector,
    PartitionsSelector,
)
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG

from ingestion.registry import load_registry
from orchestration.assets.transformation import partition_window_env
from orchestration.partitions import RAW_BACKFILL_POLICY, city_partitions

pytestmark = pytest.mark.integration

RAW = AssetKey(["raw", "nyc", "service_requests"])
# A city whose partitions start on another day: Jersey City's begin in 2026.
OTHER_RAW = AssetKey(["raw", "jersey_city", "service_requests"])
MODEL = AssetKey(["intermediate", "int_service_requests"])
FIRST, LAST = date(2025, 12, 20), date(2026, 2, 11)
REGISTRY = load_registry()


@asset(key=RAW, partitions_def=city_partitions(REGISTRY.city("nyc")), backfill_policy=RAW_BACKFILL_POLICY)
def raw_stand_in() -> None:
    return None


@asset(
    key=OTHER_RAW,
    partitions_def=city_partitions(REGISTRY.city("jersey_city")),
    backfill_policy=RAW_BACKFILL_POLICY,
)
def other_raw_stand_in() -> None:
    return None


@asset(key=MODEL, deps=[RAW, OTHER_RAW])
def model_window(context) -> MaterializeResult:
    """Reports the dbt window the dbt steps would pass."""
    return MaterializeResult(metadata=partition_window_env(context))


DEFS = Definitions(assets=[raw_stand_in, other_raw_stand_in, model_window])


def run(instance, selection, **kwargs):
    """A run of the code location's own asset job, as a backfill's or the UI's would be."""
    job = DEFS.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, asset_selection=selection, **kwargs)


def window(result) -> dict[str, str]:
    (materialization,) = result.asset_materializations_for_node(model_window.op.name)
    return {name: value.value for name, value in materialization.metadata.items()}


def test_the_models_run_of_a_backfill_works_on_the_backfills_days():
    instance = DagsterInstance.ephemeral()
    # As the UI asks for it: each city's raw days, Jersey City's from its first day on.
    jersey_city_first = REGISTRY.city("jersey_city").first_day
    assert FIRST < jersey_city_first < LAST
    ranges = {RAW: (FIRST, LAST), OTHER_RAW: (jersey_city_first, jersey_city_first + timedelta(days=3))}
    backfill = PartitionBackfill.from_partitions_by_assets(
        backfill_id="year2026",
        asset_graph=DEFS.resolve_asset_graph(),
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        partitions_by_assets=[
            *(
                PartitionsByAssetSelector(
                    asset_key=key,
                    partitions=PartitionsSelector(
                        [PartitionRangeSelector(first.isoformat(), last.isoformat())]
                    ),
                )
                for key, (first, last) in ranges.items()
            ),
            PartitionsByAssetSelector(asset_key=MODEL),
        ],
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)

    in_backfill = run(instance, [MODEL], tags={BACKFILL_ID_TAG: "year2026"})
    assert window(in_backfill) == {"CIVIC311_MIN_DATE": "2025-12-20", "CIVIC311_MAX_DATE": "2026-02-12"}

    on_its_own = run(instance, [MODEL])
    assert window(on_its_own) == {"CIVIC311_MIN_DATE": "", "CIVIC311_MAX_DATE": ""}

    one_day = run(instance, [RAW, MODEL], partition_key="2026-02-11")
    assert window(one_day) == {"CIVIC311_MIN_DATE": "2026-02-11", "CIVIC311_MAX_DATE": "2026-02-12"}
