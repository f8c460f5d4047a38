"""Where a city's raw data lands: one dlt pipeline per city into the DuckDB warehouse.

Each city loads into its own dataset (`raw_<city>`), so a city's load never
touches another's tables, and dlt's state (the change-capture cursor) is stored
in that dataset too, next to the rows it describes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dlt
import duckdb
from dlt.common.pipeline import LoadInfo
from dlt.pipeline.pipeline import Pipeline
from dlt.sources import DltSource

from ingestion.redact import get_logger
from ingestion.registry import City
from ingestion.warehouse_lock import warehouse_lock

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
log = get_logger("civic311.pipeline")
# Each run's dlt working folder: <warehouse dir>/.dlt/<warehouse stem>/runs/<run>/<pipeline name>.
RUNS = "runs"

# Telemetry stays off, and Arrow loads carry dlt's load id like dict loads do.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


WAREHOUSE_ENV = "CIVIC311_WAREHOUSE"


def warehouse_path() -> Path:
    """The working warehouse: `$CIVIC311_WAREHOUSE`, default `data/warehouse.duckdb`."""
    return Path(os.environ.get(WAREHOUSE_ENV, DEFAULT_WAREHOUSE)).resolve()


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


def working_root(warehouse: Path) -> Path:
    """dlt's local working folders of a warehouse's loads: beside it, so two
    warehouses (a test's and the demo's) never share one."""
    return warehouse.parent / ".dlt" / warehouse.stem


def _run_folder() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def city_pipeline(city: City, warehouse: Path | None = None, name_suffix: str = "") -> Pipeline:
    """The city's pipeline, in a working folder of its own run.

    Building it touches no file: dlt creates the warehouse on the first run, in a
    folder that must exist by then. Every call gets a new working folder, so two
    loads never take over each other's packages; the pipeline's state and schema
    live in the dataset, and dlt restores them from there. A `name_suffix` gives
    another load path of the city (exports) its own state in the same dataset.
    """
    warehouse = Path(warehouse or warehouse_path()).resolve()
    return dlt.pipeline(
        pipeline_name=f"civic311_{city.id}{name_suffix}",
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name=raw_dataset(city),
        pipelines_dir=str(working_root(warehouse) / RUNS / _run_folder()),
    )


def _left_behind(pipeline: Pipeline) -> list[Path]:
    """Working folders of earlier runs of this pipeline (same city and kind) that
    are still on disk, oldest first: a run removes its own when it ends, so these
    are runs that were killed or failed. The folder all runs shared before runs
    had their own is looked at too."""
    root = Path(pipeline.pipelines_dir).parent.parent
    name = pipeline.pipeline_name
    folders = [root / name, *sorted((root / RUNS).glob(f"*/{name}"))]
    return [folder for folder in folders if folder.is_dir() and folder != Path(pipeline.working_dir)]


def finish_pending(pipeline: Pipeline) -> list[LoadInfo]:
    """Normalize and load what killed runs of this pipeline left behind.

    dlt keeps a run's extracted and normalized packages in its working folder
    until they are loaded; a process killed part-way leaves them there. Every
    civic311 load finishes them first, under the warehouse lock, before it
    extracts its own window; the folder is removed once nothing in it is pending.
    A package that was still being extracted was never committed and is simply
    read again. A leftover that fails to load stays for the next run.
    """
    loaded = []
    for working_dir in _left_behind(pipeline):
        left = dlt.pipeline(
            pipeline_name=pipeline.pipeline_name,
            destination=pipeline.destination,
            dataset_name=pipeline.dataset_name,
            pipelines_dir=str(working_dir.parent),
        )
        if left.has_pending_data:
            log.warning("%s: loading packages left by an interrupted run first", pipeline.pipeline_name)
            loaded.append(left.run())
        shutil.rmtree(working_dir.parent if working_dir.parent.parent.name == RUNS else working_dir)
    return loaded


def release(pipeline: Pipeline) -> None:
    """Remove the working folder of a run that succeeded, unless it holds packages
    still to load. A failed run's folder (with dlt's trace of the failure) stays
    until the next run of the pipeline finishes or removes it."""
    folder = Path(pipeline.pipelines_dir)
    if folder.parent.name == RUNS and not pipeline.has_pending_data:
        shutil.rmtree(folder, ignore_errors=True)


def load_source(
    city: City, source: DltSource, warehouse: Path | None = None, name_suffix: str = ""
) -> LoadInfo:
    """Load `source` into the city's dataset under the writer lock: first what killed
    runs left behind, then the source, in a working folder of this run's own."""
    warehouse = Path(warehouse or warehouse_path()).resolve()
    with warehouse_lock(warehouse):
        pipeline = city_pipeline(city, warehouse, name_suffix)
        finish_pending(pipeline)
        loaded = pipeline.run(source)
        release(pipeline)
        return loaded
