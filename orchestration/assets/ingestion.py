"""Raw assets: one daily-partitioned dlt asset per city, `raw/<city>/<table>`.

Every protocol goes through the same asset factory; the registry entry's
protocol picks the dlt source (ingestion/sources). Besides the rows, each
materialization reports what the load quarantined, any type drift that dlt
parked in variant columns, and the seconds the dlt pipeline ran
(`load_seconds`: extract, normalize and load, without Dagster's own time).
"""

import time
from datetime import timedelta
from pathlib import Path

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    TimeWindow,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from ingestion.pipeline import city_pipeline, finish_pending, raw_dataset, release
from ingestion.registry import City
from ingestion.sources import source_for
from ingestion.sources.resource import REJECTED_TABLE
from orchestration.partitions import RAW_BACKFILL_POLICY, city_partitions
from orchestration.redaction import redacted
from orchestration.resources import WAREHOUSE_POOL, holds_warehouse, replay_url

_DESCRIPTIONS = {
    "service_requests": "{name} service requests as its {protocol} feed delivered them, merged on "
    "(city_id, source_id), the newest version winning.",
    "services": "{name}'s Open311 service list, replaced on every load.",
}


def raw_asset_key(city: City, table: str = "service_requests") -> AssetKey:
    return AssetKey(["raw", city.id, table])


# Raw tables the models read that no Dagster asset materializes: declared, so the UI
# lists them in the raw group with what writes them.
_WRITTEN_ELSEWHERE = {
    REJECTED_TABLE: "{name}'s records that its raw loads quarantined, each with the rule it broke: "
    "written by each load of raw/{id}/service_requests; quarantine.service_requests counts them.",
    "service_requests_export": "{name}'s portal export files as `civic311 load` and `civic311 bootstrap` "
    "loaded them, merged on (city_id, source_id): written by those commands, outside Dagster's runs.",
}


def raw_table_specs(city: City) -> list[AssetSpec]:
    """The city's raw tables written outside its dlt asset (quarantine, exports), as
    external assets of the raw group."""
    tables = [REJECTED_TABLE, *(t for t in city.raw_tables if t in _WRITTEN_ELSEWHERE)]
    return [
        AssetSpec(
            key=raw_asset_key(city, table),
            group_name="raw",
            description=_WRITTEN_ELSEWHERE[table].format(name=city.name, id=city.id),
            tags={"city": city.id, "protocol": city.source.protocol},
            kinds={"duckdb"},
        )
        for table in tables
    ]


class RawTranslator(DagsterDltTranslator):
    def __init__(self, city: City):
        self.city = city

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        table = data.resource.name
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=raw_asset_key(self.city, table),
                group_name="raw",
                deps=[],
                description=_DESCRIPTIONS.get(table, "{name}: {protocol} table").format(
                    name=self.city.name, protocol=self.city.source.protocol
                ),
                # The service level of the loads: Dagster's freshness daemon fails the asset
                # when it was last materialized longer ago than the city's cadence, and the
                # freshness_alerts sensor alerts on it (orchestration/alerts/jobs.py).
                freshness_policy=FreshnessPolicy.time_window(
                    fail_window=timedelta(hours=self.city.source.cadence_hours)
                ),
            )
            .merge_attributes(tags={"city": self.city.id, "protocol": self.city.source.protocol})
        )


def load_report(warehouse: Path, city: City, load_ids: list[str]) -> dict[str, object]:
    """The records the loads `load_ids` quarantined, by rule, and the variant columns
    now in the city's raw tables."""
    schema = raw_dataset(city)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]
            ).fetchall()
        }
        quarantined: dict[str, int] = {}
        if REJECTED_TABLE in tables:
            quarantined = dict(
                con.execute(
                    f'select rule, count(*) from "{schema}"."{REJECTED_TABLE}" '  # noqa: S608 - registry id
                    "where _dlt_load_id in (select unnest($loads)) group by rule order by rule",
                    {"loads": load_ids},
                ).fetchall()
            )
        variants = [
            f"{r[0]}.{r[1]}"
            for r in con.execute(
                "select table_name, column_name from information_schema.columns "
                "where table_schema = ? and column_name like '%\\_\\_v\\_%' escape '\\' order by 1, 2",
                [schema],
            ).fetchall()
        ]
    return {"quarantined_by_rule": quarantined, "variant_columns": variants}


def build_raw_assets(city: City, warehouse: Path) -> AssetsDefinition:
    pipeline = city_pipeline(city, warehouse)
    translator = RawTranslator(city)

    @dlt_assets(
        dlt_source=source_for(city),
        dlt_pipeline=pipeline,
        name=f"raw_{city.id}",
        dagster_dlt_translator=translator,
        partitions_def=city_partitions(city),
        backfill_policy=RAW_BACKFILL_POLICY,
        pool=WAREHOUSE_POOL,
    )
    @redacted
    @holds_warehouse(warehouse)
    def _raw(context: AssetExecutionContext, dlt: DagsterDltResource):
        window = context.partition_time_window
        started, load_seconds = time.perf_counter(), None
        # This run's own working folder: what a killed run left is finished first.
        run_pipeline = city_pipeline(city, warehouse)
        finish_pending(run_pipeline)
        source = source_for(city, start=window.start, end=window.end, base_url=city.base_url(replay_url()))
        for result in dlt.run(
            context=context, dlt_source=source, dlt_pipeline=run_pipeline, dagster_dlt_translator=translator
        ):
            if load_seconds is None:  # the first result comes once the pipeline has run
                load_seconds = round(time.perf_counter() - started, 3)
            if isinstance(result, MaterializeResult) and result.asset_key == raw_asset_key(city):
                loads = list(run_pipeline.last_trace.last_load_info.loads_ids)
                report = load_report(warehouse, city, loads)
                if report["variant_columns"]:
                    context.log.warning(
                        f"{city.id}: type drift kept in variant columns {report['variant_columns']}"
                    )
                metadata = reported_first(dict(result.metadata or {}), report, window, city, load_seconds)
                result = result._replace(metadata=metadata)
            yield result
        release(run_pipeline)

    return _raw


def reported_first(
    dlt_metadata: dict[str, object],
    report: dict[str, object],
    window: TimeWindow,
    city: City,
    load_seconds: float | None,
) -> dict[str, object]:
    """A raw materialization's metadata in the order the UI shows it: what the load
    did (rows loaded and quarantined, the days it covered, its seconds), then what it
    found (quarantine rules, type drift), then dlt's own record of the load."""
    lookback = timedelta(hours=city.source.lookback_hours)
    first = {
        # dlt leaves the count out when it normalized no row for the table.
        "rows_loaded": dlt_metadata.pop("rows_loaded", MetadataValue.int(0)),
        "rows_quarantined": sum(report["quarantined_by_rule"].values()),
        "window": MetadataValue.text(
            f"changes from {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d} (excl.), read from "
            f"{window.start - lookback:%Y-%m-%d %H:%M} UTC ({city.source.lookback_hours:g} h lookback)"
        ),
        "load_seconds": load_seconds,
        "quarantined_by_rule": MetadataValue.json(report["quarantined_by_rule"]),
        "variant_columns": MetadataValue.json(report["variant_columns"]),
    }
    return {**first, **dlt_metadata}
