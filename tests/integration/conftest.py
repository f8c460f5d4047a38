"""Fixtures over the real samples: the raw loads, the dbt builds and the NYC sample's
Dagster backfill are slow enough to do once per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from dagster import ExecuteInProcessResult

from ingestion.registry import load_registry
from orchestration.definitions import build_definitions
from tests.conftest import (
    NYC_SODA_SAMPLE_DAYS,
    dbt_build,
    instance_folder,
    nyc_soda_sample,
    wire_warehouse,
    write_registry,
)
from tests.integration.samples import load_api_samples, load_boundaries, load_export_samples, replay_registry
from tooling.demo import run_partition_range
from tooling.replay import ReplayServer
from tooling.replay.records import system_stamp


@pytest.fixture(scope="session")
def api_samples_raw(tmp_path_factory) -> Path:
    """Every city's recorded API responses in raw, each loaded by its adapter (read-only:
    tests copy it with `copy_warehouse`)."""
    work = tmp_path_factory.mktemp("api_samples_raw")
    warehouse = work / "warehouse.duckdb"
    load_api_samples(replay_registry(work), warehouse)
    return warehouse


@pytest.fixture(scope="session")
def samples_raw(api_samples_raw, tmp_path_factory) -> Path:
    """Every real sample in raw: the API responses, then the portal exports (read-only:
    tests copy it with `copy_warehouse`)."""
    work = tmp_path_factory.mktemp("samples_raw")
    warehouse = copy_warehouse(api_samples_raw, work)
    load_export_samples(replay_registry(work), warehouse)
    return warehouse


def copy_warehouse(source: Path, directory: Path) -> Path:
    """A private copy of a warehouse. The file keeps its name, because DuckDB names the
    catalog after the file and dbt's views refer to it."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.name
    shutil.copy(source, target)
    return target


# The marts over the samples are built as of one fixed instant, after every sample date.
SAMPLES_AS_OF = "2026-11-01 00:00:00+00"


@pytest.fixture(scope="session")
def samples_built(samples_raw, tmp_path_factory) -> Path:
    """Every real sample, and every city's boundary layers, through the whole dbt
    project: seeds, models, snapshot, data and unit tests (read-only: copy it first)."""
    work = tmp_path_factory.mktemp("samples_built")
    warehouse = copy_warehouse(samples_raw, work)
    load_boundaries(replay_registry(work), warehouse, work / "boundary_cache")
    dbt_build(warehouse, "civic311", work, dbt_vars={"as_of": SAMPLES_AS_OF}, unit_tests=True)
    return warehouse


# A day after the NYC sample's days whose window (with NYC's 72 h lookback) holds only
# the requests `future_dated` stamps on it.
BAD_DAY = date(2012, 12, 1)
BAD_ROWS = 40


def future_dated(records: list[dict]) -> list[dict]:
    """Copies of real requests, made in 2031 by their clock and changed on BAD_DAY: a
    feed whose clock is off."""
    bad = []
    for n, record in enumerate(records[:BAD_ROWS]):
        row = {k: v for k, v in record.items() if not k.startswith(":")}
        row["unique_key"] = f"9{n:08d}"
        row["created_date"] = "2031-06-01T10:00:00.000"
        row[":updated_at"] = system_stamp(datetime(2012, 12, 1, 10))  # naive UTC, as Socrata stamps
        bad.append(row)
    return bad


def run_nyc_sample(
    feed: list[dict],
    registry_file: Path,
    warehouse: Path,
    monkeypatch: pytest.MonkeyPatch,
    days: tuple[date, date] = NYC_SODA_SAMPLE_DAYS,
) -> ExecuteInProcessResult:
    """`feed` served as NYC's historical dataset (the current one answers empty), then
    one daily_refresh run over `days`, as a backfill runs it, on the instance in
    DAGSTER_HOME."""
    write_registry(registry_file, page_size=400)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry_file))
    with ReplayServer() as server:
        server.add_dataset(
            "fhrw-4uyv", feed, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
        )
        server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        return run_partition_range(*days, defs=build_definitions(load_registry(), warehouse))


@dataclass(frozen=True)
class Backfill:
    """A finished Dagster run, its feed, and the folders it wrote: the warehouse's (the
    serving file and dlt's working files beside it) and the Dagster home."""

    result: ExecuteInProcessResult
    feed: list[dict]
    warehouse: Path
    dagster_home: Path

    def restore(self, folder: Path, dagster_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """Private copies of both folders, wired through the environment as the
        `warehouse` fixture wires its own; returns the copied warehouse."""
        shutil.copytree(self.warehouse.parent, folder, symlinks=True)
        shutil.copytree(self.dagster_home, dagster_home, dirs_exist_ok=True)
        return wire_warehouse(folder / self.warehouse.name, dagster_home, monkeypatch)


@pytest.fixture(scope="session")
def nyc_sample_backfill(tmp_path_factory, dbt_manifest) -> Iterator[Backfill]:
    """The real NYC sample's backfill over NYC_SODA_SAMPLE_DAYS into a fresh warehouse.
    The replay also holds the `future_dated` requests, changed on BAD_DAY: a run of
    these days must not serve them (read-only: tests restore a copy)."""
    work = tmp_path_factory.mktemp("nyc_sample_backfill")
    warehouse = work / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    records = nyc_soda_sample()
    feed = records + future_dated(records)
    home = instance_folder(work / "dagster_home")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            wire_warehouse(warehouse, home, monkeypatch)
            result = run_nyc_sample(feed, work / "cities.yaml", warehouse, monkeypatch)
        yield Backfill(result, feed, warehouse, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
