"""Where a city's raw data lands: one dlt pipeline per city into the DuckDB warehouse.

Each city loads into its own dataset (`raw_<city>`), so a city's load never
touches another's tables, and dlt's state (the change-capture cursor) is stored
in that dataset too, next to the rows it describes.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt
import duckdb
from dlt.common.pipeline import LoadInfo
from dlt.pipeline.pipeline import Pipeline
from dlt.sources import DltSource

from ingestion.redact import get_logger
from ingestion.registry import City

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
log = get_logger("civic311.pipeline")

# Telemetry stays off, and Arrow loads carry dlt's load id like dict loads do.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


def warehouse_path() -> Path:
    """The working warehouse: `$CIVIC311_WAREHOUSE`, default `data/warehouse.duckdb`."""
    return Path(os.environ.get("CIVIC311_WAREHOUSE", DEFAULT_WAREHOUSE)).resolve()


def raw_dataset(city: City) -> str:
    return f"raw_{city.id}"


def raw_table_exists(warehouse: Path, city: City, table: str = "service_requests") -> bool:
    """Whether the city has loaded `table` yet (False before the warehouse exists)."""
    if not warehouse.exists():
        return False
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (found,) = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [raw_dataset(city), table],
        ).fetchone()
    return bool(found)


def city_pipeline(city: City, warehouse: Path | None = None, name_suffix: str = "") -> Pipeline:
    """The city's pipeline. Building it touches no file: dlt creates the warehouse
    on the first run, in a folder that must exist by then. A `name_suffix` gives
    another load path of the city (exports) its own state in the same dataset."""
    warehouse = Path(warehouse or warehouse_path()).resolve()
    return dlt.pipeline(
        pipeline_name=f"civic311_{city.id}{name_suffix}",
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name=raw_dataset(city),
        # Local working files sit beside the warehouse they belong to, so two
        # warehouses (a test's and the demo's) never share pipeline state.
        pipelines_dir=str(warehouse.parent / ".dlt" / warehouse.stem),
    )


def finish_pending(pipeline: Pipeline) -> LoadInfo | None:
    """Normalize and load what a killed run left behind.

    dlt keeps a run's extracted and normalized packages on disk until they are
    loaded; a process killed part-way leaves them there. `Pipeline.run` would
    load them and then *skip* the data it was given, so every civic311 load
    finishes them first, explicitly, and then extracts its own window. A package
    that was still being extracted is never committed and is simply re-read.
    """
    if not pipeline.has_pending_data:
        return None
    log.warning("%s: loading packages left by an interrupted run first", pipeline.pipeline_name)
    return pipeline.run()


def run_source(pipeline: Pipeline, source: DltSource) -> LoadInfo:
    """Finish any interrupted load, then load `source`."""
    finish_pending(pipeline)
    return pipeline.run(source)
