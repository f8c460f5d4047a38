"""`civic311 status`: per city, the last load, its quarantine, its failing checks; and
the last publish. Read from the warehouse (dlt's load records, the quarantine view),
the serving file and the Dagster instance (the latest result of each check)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
from dagster import AssetCheckKey, AssetCheckSeverity, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from ingestion.pipeline import raw_dataset
from ingestion.registry import Registry
from orchestration.serving import serving_path


@dataclass(frozen=True)
class CityStatus:
    city_id: str
    last_load: datetime | None  # dlt's newest finished load into the city's raw tables
    loads: int
    raw_rows: int
    quarantined: int
    failing: list[str]


@dataclass(frozen=True)
class Status:
    cities: list[CityStatus]
    failing_elsewhere: list[str]  # checks of the shared layers (canonical model, marts)
    publish: tuple[str, datetime] | None


def failing_checks(instance: DagsterInstance, keys: list[AssetCheckKey]) -> dict[AssetCheckKey, str]:
    """Each check whose latest result did not pass, with its severity and description."""
    failing = {}
    for key in keys:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        if not history or history[0].status != AssetCheckExecutionRecordStatus.FAILED:
            continue
        record = history[0]
        said = ""
        if record.event is not None and record.event.dagster_event is not None:
            evaluation = record.event.dagster_event.asset_check_evaluation_data
            kind = "warning" if evaluation.severity == AssetCheckSeverity.WARN else "blocking"
            said = f" ({kind}, run {record.run_id[:8]})" + (
                f": {evaluation.description}" if evaluation.description else ""
            )
        failing[key] = f"{key.asset_key.to_user_string()}:{key.name}{said}"
    return failing


def read_status(
    registry: Registry, warehouse: Path, instance: DagsterInstance, keys: list[AssetCheckKey]
) -> Status:
    failing = failing_checks(instance, keys)
    cities = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {
            (schema, name)
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        quarantined: dict[str, int] = {}
        if ("quarantine", "service_requests") in tables:
            quarantined = dict(
                con.execute("select city_id, count(*) from quarantine.service_requests group by 1").fetchall()
            )
        for city in registry.cities:
            schema = raw_dataset(city)
            last, loads, rows = None, 0, 0
            if (schema, "_dlt_loads") in tables:
                last, loads = con.execute(
                    f'select max(inserted_at), count(*) from "{schema}"._dlt_loads where status = 0'  # noqa: S608 - registry id
                ).fetchone()
            for table in ("service_requests", "service_requests_export"):
                if (schema, table) in tables:
                    rows += con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]  # noqa: S608
            mine = [said for key, said in failing.items() if key.asset_key.path[:2] == ["raw", city.id]]
            cities.append(CityStatus(city.id, last, loads, rows, quarantined.get(city.id, 0), mine))
    elsewhere = [said for key, said in failing.items() if key.asset_key.path[0] != "raw"]
    publish = None
    serving = serving_path(warehouse)
    if serving.exists():
        with duckdb.connect(str(serving), read_only=True) as con:
            publish = con.execute("select publish_id, published_at from civic311.publishes").fetchone()
    return Status(cities, elsewhere, publish)


def status_lines(status: Status) -> list[str]:
    if status.publish is None:
        lines = ["Last publish: none yet (no run has passed every blocking check)."]
    else:
        publish_id, published_at = status.publish
        lines = [f"Last publish: {publish_id} at {published_at:%Y-%m-%d %H:%M:%S %Z}"]
    lines.append("")
    lines.append(
        f"{'city':<16} {'last load':<20} {'loads':>6} {'raw rows':>11} {'quarantined':>12}  failing checks"
    )
    for city in status.cities:
        last = "never" if city.last_load is None else f"{city.last_load:%Y-%m-%d %H:%M %Z}"
        lines.append(
            f"{city.city_id:<16} {last:<20} {city.loads:>6,} {city.raw_rows:>11,} {city.quarantined:>12,}  "
            f"{len(city.failing) or '-'}"
        )
    failing = [said for city in status.cities for said in city.failing] + status.failing_elsewhere
    lines.append("")
    if not failing:
        lines.append("Failing checks: none (the latest result of every check passed).")
    else:
        lines.append("Failing checks (each one's latest result; docs/quality.md says how to correct them):")
        lines += [f"  {said}" for said in failing]
    return lines
