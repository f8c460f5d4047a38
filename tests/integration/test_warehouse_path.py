"""civic311 run from another folder than the repository, with a relative
CIVIC311_WAREHOUSE: the raw load and dbt (which runs in dbt_project/) write one
and the same warehouse, resolved from civic311's own working folder."""

from __future__ import annotations

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from orchestration.assets.transformation import civic311_dbt_canonical
from orchestration.launch import launch
from orchestration.resources import DBT_PROJECT_DIR
from tests.helpers.data import NYC_SODA_SAMPLE_DAYS, nyc_soda_sample
from tests.helpers.nyc_sample import serve_nyc_sample
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import wire_warehouse
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

RELATIVE = "elsewhere_data/warehouse.duckdb"


def test_a_relative_warehouse_is_the_same_file_for_the_load_and_for_dbt(tmp_path, dagster_home, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    wire_warehouse(workdir / RELATIVE, dagster_home, monkeypatch)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("CIVIC311_WAREHOUSE", RELATIVE)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    first, last = NYC_SODA_SAMPLE_DAYS
    with ReplayServer() as server:
        serve_nyc_sample(server, nyc_soda_sample())
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        result = launch(
            "refresh_nyc",
            instance=DagsterInstance.get(),
            asset_selection=[AssetKey(["raw", "nyc", "service_requests"]), *civic311_dbt_canonical().keys],
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
    assert result.success
    with duckdb.connect(str(workdir / RELATIVE), read_only=True) as con:
        raw = con.execute("select count(*) from raw_nyc.service_requests").fetchone()[0]
        canonical = con.execute("select count(*) from intermediate.int_service_requests").fetchone()[0]
    assert raw == canonical == 1000
    assert not (DBT_PROJECT_DIR / RELATIVE).exists()
