"""Fixtures over the real samples: the raw loads, the dbt builds and the NYC sample's
Dagster backfill are slow enough to do once per session. The sample warehouses are
built once per run and shared by the xdist workers (tests.helpers.once); the
backfill hands tests its in-process Dagster result, so the files using it share one
worker (tests/conftest.py schedules them)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.data import nyc_soda_sample
from tests.helpers.dbt import dbt_build
from tests.helpers.nyc_sample import Backfill, future_dated, run_nyc_sample
from tests.helpers.once import built_once
from tests.helpers.samples import (
    SAMPLES_AS_OF,
    load_api_samples,
    load_boundaries,
    load_export_samples,
    replay_registry,
)
from tests.helpers.warehouse import copy_warehouse, instance_folder, wire_warehouse


@pytest.fixture(scope="session")
def api_samples_raw(tmp_path_factory) -> Path:
    """Every city's recorded API responses in raw, each loaded by its adapter (read-only:
    tests copy it with `copy_warehouse`)."""

    def build(work: Path) -> Path:
        warehouse = work / "warehouse.duckdb"
        load_api_samples(replay_registry(work), warehouse)
        return warehouse

    return built_once(tmp_path_factory, "api_samples_raw", build)


@pytest.fixture(scope="session")
def samples_raw(api_samples_raw, tmp_path_factory) -> Path:
    """Every real sample in raw: the API responses, then the portal exports (read-only:
    tests copy it with `copy_warehouse`)."""

    def build(work: Path) -> Path:
        warehouse = copy_warehouse(api_samples_raw, work)
        load_export_samples(replay_registry(work), warehouse)
        return warehouse

    return built_once(tmp_path_factory, "samples_raw", build)


@pytest.fixture(scope="session")
def samples_built(samples_raw, tmp_path_factory) -> Path:
    """Every real sample, and every city's boundary layers, through the whole dbt
    project: seeds, models, snapshot, data and unit tests (read-only: copy it first;
    another worker may be reading it, and DuckDB lets no process write a file that
    another has open)."""

    def build(work: Path) -> Path:
        warehouse = copy_warehouse(samples_raw, work)
        load_boundaries(replay_registry(work), warehouse, work / "boundary_cache")
        dbt_build(warehouse, "civic311", work, dbt_vars={"as_of": SAMPLES_AS_OF}, unit_tests=True)
        return warehouse

    return built_once(tmp_path_factory, "samples_built", build)


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
            result = run_nyc_sample(feed, work / "cities.yaml", monkeypatch)
        yield Backfill(result, feed, warehouse, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
