"""dbt models as Dagster assets: seeds (reference), staging, intermediate,
quarantine, the request history snapshot (snapshots) and marts, in two steps.
dbt sources map onto the raw assets (`raw_<city>.service_requests` ->
`raw/<city>/service_requests`), so a failed blocking check on a city's raw
partition keeps every model built on it from running.
"""

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.partitions import daily_partitions
from orchestration.redaction import redacted
from orchestration.resources import WAREHOUSE_POOL, dbt_project, holds_warehouse, prepared_dbt_manifest

# Seeds and snapshots sit at the top of their folders, so their layer is named here.
LAYER_OF_RESOURCE = {"seed": "reference", "snapshot": "snapshots"}


def layer(dbt_resource_props: Mapping[str, Any]) -> str:
    """The folder a dbt node lives in: staging, intermediate, marts, reference or snapshots."""
    return LAYER_OF_RESOURCE.get(dbt_resource_props["resource_type"]) or dbt_resource_props["fqn"][1]


class CivicDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            if dbt_resource_props["source_name"] == "geography":
                return AssetKey(["geography", dbt_resource_props["name"]])
            city = dbt_resource_props["source_name"].removeprefix("raw_")
            return AssetKey(["raw", city, dbt_resource_props["name"]])
        return AssetKey([layer(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return layer(dbt_resource_props)


def partition_window_vars(context: AssetExecutionContext) -> dict[str, str]:
    """The run's partitions as the dbt window vars: [first day, day after the last).
    Incremental models rewrite what changed in it (with their lookback); a run
    without partitions passes nothing, and dbt then computes everything."""
    if not context.has_partition_key_range:
        return {}
    window = context.partition_time_window
    return {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}


def build_dbt_assets(name: str, select: str = "fqn:*", exclude: str | None = None) -> AssetsDefinition:
    """One `dbt build` step over part of the project, in the run's partition window."""

    @dbt_assets(
        manifest=prepared_dbt_manifest(),
        project=dbt_project,
        name=name,
        select=select,
        exclude=exclude,
        dagster_dbt_translator=CivicDbtTranslator(),
        partitions_def=daily_partitions,
        pool=WAREHOUSE_POOL,
    )
    @redacted
    @holds_warehouse()
    def _models(context: AssetExecutionContext, dbt: DbtCliResource):
        window = partition_window_vars(context)
        args = ["build", *(["--vars", json.dumps(window)] if window else [])]
        yield from dbt.cli(args, context=context).stream()

    return _models


# Two steps, so the canonical model is audited before anything is built on it:
# dbt writes a model before it tests it (dbt-core 8979), and a dbt test stops only
# dbt nodes. The first step builds the reference seeds, every city's staging view,
# the canonical union, its taxonomy (int_service_types, int_departments) and the
# quarantine, and runs the raw source tests; the blocking checks on
# int_service_requests (dbt tests, its GX suite and the taxonomy gate) then decide
# whether the second step (the spatial join, the snapshot, facts, dimensions and
# marts) runs at all.
# The raw source tests run in the first step and fail it when one fails, which
# stops everything after it. They are reported as observations on the raw
# assets, not as Dagster checks: a step that runs checks on an asset is exempt
# from that asset's blocking checks (dagster's build_node_deps), so as checks
# they would let this step start before the raw checks had passed.
CANONICAL_SELECT = (
    "source:* resource_type:seed path:models/staging path:models/quarantine "
    "int_service_requests int_service_types int_departments audit_int_service_requests"
)


# Built on first use, from the manifest `prepare_dbt_manifest` wrote, and kept for the process.
@cache
def civic311_dbt_canonical() -> AssetsDefinition:
    return build_dbt_assets("civic311_dbt_canonical", select=CANONICAL_SELECT)


@cache
def civic311_dbt_marts() -> AssetsDefinition:
    return build_dbt_assets("civic311_dbt_marts", exclude=CANONICAL_SELECT)
