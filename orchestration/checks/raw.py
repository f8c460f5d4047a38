"""Blocking checks on the raw assets. A failure stops the models built on them."""

from datetime import timedelta
from pathlib import Path

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)
from dlt.common.normalizers.naming.snake_case import NamingConvention

from ingestion.pipeline import raw_dataset
from ingestion.registry import City
from orchestration.assets.ingestion import raw_asset_key
from orchestration.partitions import daily_partitions
from orchestration.resources import WAREHOUSE_POOL

SAMPLE_SIZE = 10


def source_id_report(warehouse: Path, city: City, start, end) -> tuple[int, int, int, list[str], list[str]]:
    """Rows in the window, rows whose id field is missing, and surplus rows per repeated id."""
    id_column = NamingConvention().normalize_identifier(city.source.id_field)
    table = f'"{raw_dataset(city)}"."service_requests"'
    window = "source_updated_at >= $start and source_updated_at < $end"
    params = {"start": start, "end": end}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows, missing = con.execute(
            f'select count(*), count(*) filter (where "{id_column}" is null) from {table} where {window}',
            params,
        ).fetchone()
        missing_sample = [
            r[0]
            for r in con.execute(
                f'select source_id from {table} where {window} and "{id_column}" is null '
                f"order by source_id limit {SAMPLE_SIZE}",
                params,
            ).fetchall()
        ]
        duplicates = con.execute(
            f"select source_id, count(*) - 1 from {table} where {window} "
            "group by source_id having count(*) > 1 order by source_id",
            params,
        ).fetchall()
    surplus = sum(n for _, n in duplicates)
    return rows, missing, surplus, missing_sample, [d[0] for d in duplicates[:SAMPLE_SIZE]]


def build_raw_checks(city: City, warehouse: Path) -> AssetChecksDefinition:
    lookback = timedelta(hours=city.source.lookback_hours)

    @asset_check(
        asset=raw_asset_key(city),
        name="source_ids_present_and_unique",
        description=(
            f"Every {city.name} row loaded in the partition window carries its "
            f"'{city.source.id_field}', and no source id appears twice."
        ),
        blocking=True,
        partitions_def=daily_partitions,
        pool=WAREHOUSE_POOL,
    )
    def _check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        window = context.partition_time_window
        rows, missing, surplus, missing_sample, duplicate_sample = source_id_report(
            warehouse, city, window.start - lookback, window.end
        )
        passed = missing == 0 and surplus == 0
        description = None
        if not passed:
            description = (
                f"{city.id}: {missing} rows without '{city.source.id_field}' and {surplus} "
                f"duplicate rows in raw/{city.id}/service_requests; models built on it are "
                "not refreshed. Fix the feed or the registry's source.id_field, then rerun "
                "the partition."
            )
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "rows_in_window": rows,
                "rows_missing_id": missing,
                "duplicate_rows": surplus,
                "sample_missing_id_rows": MetadataValue.json(missing_sample),
                "sample_duplicate_ids": MetadataValue.json(duplicate_sample),
            },
        )

    return _check
