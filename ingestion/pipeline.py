"""Where a city's raw data lands: one dlt pipeline per city into the DuckDB warehouse.

Each city loads into its own dataset (`raw_<city>`), so a city's load never
touches another's tables, and dlt's state (the change-capture cursor) is stored
in that dataset too, next to the rows it describes.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt
from dlt.pipeline.pipeline import Pipeline

from ingestion.registry import City

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")

# Telemetry stays off, and Arrow loads carry dlt's load id like dict loads do.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


def warehouse_path() -> Path:
    """The working warehouse: `$CIVIC311_WAREHOUSE`, default `data/warehouse.duckdb`."""
    return Path(os.environ.get("CIVIC311_WAREHOUSE", DEFAULT_WAREHOUSE)).resolve()


def raw_dataset(city: City) -> str:
    return f"raw_{city.id}"


def city_pipeline(city: City, warehouse: Path | None = None) -> Pipeline:
    """The city's pipeline. Building it touches no file: dlt creates the warehouse
    on the first run, in a folder that must exist by then."""
    warehouse = Path(warehouse or warehouse_path()).resolve()
    return dlt.pipeline(
        pipeline_name=f"civic311_{city.id}",
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name=raw_dataset(city),
        # Local working files sit beside the warehouse they belong to, so two
        # warehouses (a test's and the demo's) never share pipeline state.
        pipelines_dir=str(warehouse.parent / ".dlt" / warehouse.stem),
    )
