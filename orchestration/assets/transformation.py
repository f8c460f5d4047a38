"""dbt models as Dagster assets: staging, intermediate and marts.
dbt sources map onto the raw assets (`raw_<city>.service_requests` ->
`raw/<city>/service_requests`), so a failed blocking check on a city's raw
partition keeps every model built on it from running.
"""

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.partitions import daily_partitions
from orchestration.resources import WAREHOUSE_POOL, dbt_project

# A fresh clone has no manifest yet. `dagster dev` re-parses on start
# (prepare_if_dev in definitions.py); every other entry point parses here once.
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)


class CivicDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            city = dbt_resource_props["source_name"].removeprefix("raw_")
            return AssetKey(["raw", city, dbt_resource_props["name"]])
        layer = dbt_resource_props["fqn"][1]
        return AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["fqn"][1]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=CivicDbtTranslator(),
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
)
def civic311_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()
