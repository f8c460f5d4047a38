"""The raw tables' key check (blocking): a failure stops the models built on them.
It runs in the raw layer's check step (orchestration/checks/layers.py)."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue
from dlt.common.normalizers.naming.snake_case import NamingConvention

from ingestion.pipeline import raw_dataset
from ingestion.registry import City
from orchestration.assets.ingestion import raw_asset_key
from orchestration.checks.layers import Check

SAMPLE_SIZE = 10


class SourceIdReport(NamedTuple):
    rows: int
    missing: int
    surplus: int
    missing_sample: list[str]
    duplicate_sample: list[str]

    @property
    def passed(self) -> bool:
        return self.missing == 0 and self.surplus == 0


def source_id_report(warehouse: Path, city: City, start: datetime, end: datetime) -> SourceIdReport:
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
    return SourceIdReport(
        rows=rows,
        missing=missing,
        surplus=sum(n for _, n in duplicates),
        missing_sample=missing_sample,
        duplicate_sample=[d[0] for d in duplicates[:SAMPLE_SIZE]],
    )


def source_ids_check(city: City, warehouse: Path) -> Check:
    lookback = timedelta(hours=city.source.lookback_hours)
    spec = AssetCheckSpec(
        name="source_ids_present_and_unique",
        asset=raw_asset_key(city),
        description=(
            f"Every {city.name} row loaded in the run's window carries its "
            f"'{city.source.id_field}', and no source id appears twice."
        ),
        blocking=True,
    )

    def evaluate(start: datetime, end: datetime) -> AssetCheckResult:
        report = source_id_report(warehouse, city, start - lookback, end)
        description = None
        if not report.passed:
            description = (
                f"{city.id}: {report.missing} rows without '{city.source.id_field}' and "
                f"{report.surplus} duplicate rows in raw/{city.id}/service_requests; models "
                "built on it are not refreshed. Fix the feed or the registry's "
                "source.id_field, then rerun the partition."
            )
        return AssetCheckResult(
            passed=report.passed,
            severity=AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "rows_in_window": report.rows,
                "rows_missing_id": report.missing,
                "duplicate_rows": report.surplus,
                "sample_missing_id_rows": MetadataValue.json(report.missing_sample),
                "sample_duplicate_ids": MetadataValue.json(report.duplicate_sample),
            },
        )

    return Check(spec, evaluate)
