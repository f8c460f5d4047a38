"""Raw assets: one daily-partitioned dlt asset per city, `raw/<city>/service_requests`."""

from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, AssetSpec
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from ingestion.pipeline import city_pipeline
from ingestion.registry import City
from ingestion.sources.socrata import socrata_source
from orchestration.partitions import daily_partitions
from orchestration.resources import WAREHOUSE_POOL, replay_url


def raw_asset_key(city: City) -> AssetKey:
    return AssetKey(["raw", city.id, "service_requests"])


class RawTranslator(DagsterDltTranslator):
    def __init__(self, city: City):
        self.city = city

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=raw_asset_key(self.city),
                group_name="raw",
                deps=[],
                description=(
                    f"{self.city.name} service requests as {self.city.source.protocol} delivered "
                    f"them (dataset {self.city.source.dataset_id}), merged on (city_id, source_id)."
                ),
            )
            .merge_attributes(tags={"city": self.city.id})
        )


def build_raw_assets(city: City, warehouse: Path) -> AssetsDefinition:
    pipeline = city_pipeline(city, warehouse)
    translator = RawTranslator(city)

    @dlt_assets(
        dlt_source=socrata_source(city),
        dlt_pipeline=pipeline,
        name=f"raw_{city.id}",
        dagster_dlt_translator=translator,
        partitions_def=daily_partitions,
        pool=WAREHOUSE_POOL,
    )
    def _raw(context: AssetExecutionContext, dlt: DagsterDltResource):
        window = context.partition_time_window
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        source = socrata_source(city, start=window.start, end=window.end, base_url=replay_url())
        yield from dlt.run(
            context=context,
            dlt_source=source,
            dlt_pipeline=pipeline,
            dagster_dlt_translator=translator,
        )

    return _raw
