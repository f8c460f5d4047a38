"""The dbt test assert_requests_are_plausible, which a plain `dbt build` runs: request
times, closing times and points judged city by city, never pooled, on copies of the real
samples broken on purpose; and 1900-era requests that bypass the export loader (through
the API) fail the build."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from ingestion.pipeline import load_source
from ingestion.registry import load_registry
from ingestion.sources import source_for
from tests.helpers.data import NYC_SODA_SAMPLE
from tests.helpers.dbt import dbt_build, run_dbt
from tests.helpers.samples import END, START
from tests.helpers.warehouse import copy_warehouse
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

TEST = "assert_requests_are_plausible"
# What the test logs for each (city, rule) it fails.
IMPLAUSIBLE = re.compile(
    r"implausible requests: city_id=(\w+), rule=(\w+), breaking=(\d+), out_of=(\d+), share=([\d.]+)"
)


def implausible(output: str) -> dict[tuple[str, str], tuple[int, int, float]]:
    return {
        (city, rule): (int(breaking), int(out_of), float(share))
        for city, rule, breaking, out_of, share in IMPLAUSIBLE.findall(output)
    }


def test_the_real_samples_are_plausible(samples_built, tmp_path):
    # A copy: dbt opens the warehouse read-write, which no other process may do while
    # another xdist worker reads the shared samples.
    done = run_dbt(copy_warehouse(samples_built, tmp_path / "db"), TEST, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert implausible(done.stdout) == {}


def test_each_city_is_judged_on_its_own_requests(samples_built, tmp_path):
    warehouse = copy_warehouse(samples_built, tmp_path / "db")
    with duckdb.connect(str(warehouse)) as con:
        # Two small cities whose every request is dated 2031: 23 of the 29,342 requests
        # pooled (0.08%), all of theirs on their own.
        for city in ("bloomington", "toronto"):
            con.execute(
                f"update raw_{city}.service_requests "
                "set requested_datetime = '2031-' || substr(requested_datetime, 6)"
            )
        # Every LA point shifted one degree north: 8,246 located requests out of the box.
        con.execute(
            "update raw_la.service_requests set latitude = cast(cast(latitude as double) + 1 as varchar) "
            "where latitude is not null"
        )
        # 200 of SF's 10,470 closed requests lose their closing time (1.9%).
        con.execute(
            "update raw_sf.service_requests_export set closed_date = null where source_id in ("
            "select source_id from raw_sf.service_requests_export "
            "where closed_date is not null and lower(status_description) = 'closed' "
            "order by source_id limit 200)"
        )
    dbt_build(
        warehouse,
        "path:models/staging int_service_requests",
        tmp_path / "rebuild",
        exclude="resource_type:test",
    )
    done = run_dbt(warehouse, TEST, tmp_path)
    assert done.returncode != 0
    assert f"FAIL 4 {TEST}" in done.stdout
    assert implausible(done.stdout) == {
        ("bloomington", "requested_in_future"): (21, 21, 1.0),
        ("toronto", "requested_in_future"): (2, 2, 1.0),
        ("la", "outside_city_box"): (8246, 8246, 1.0),
        ("sf", "closed_without_valid_time"): (200, 10470, 0.0191),
    }
    # NYC, the largest city in the window, and every other city pass.


def test_one_request_in_a_hundred_is_let_through(samples_built, tmp_path):
    """Isolated bad rows are flagged downstream (the marts' exclusion reasons), not gated."""
    warehouse = copy_warehouse(samples_built, tmp_path / "db")
    with duckdb.connect(str(warehouse)) as con:
        # 10 of NYC's 1,000 API requests (and 3,116 in all) dated 1900: 0.3%
        con.execute(
            "update raw_nyc.service_requests set created_date = '1900-01-01T00:00:00.000' "
            "where source_id in (select source_id from raw_nyc.service_requests order by source_id limit 10)"
        )
    dbt_build(warehouse, "stg_nyc__service_requests", tmp_path / "rebuild", exclude="resource_type:test")
    done = run_dbt(warehouse, TEST, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]


def test_1900_era_requests_that_bypass_the_loader_fail_the_build(tmp_path):
    """The export loader refuses such a file (test_real_exports); the same records
    through the API land in raw, and a plain dbt build then fails."""
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    for record in records:
        # When the portal last changed the row: the replay would take it from the data.
        record[":updated_at"] = "2012-11-21T00:00:00.000Z"
        for field in ("created_date", "closed_date", "due_date", "resolution_action_updated_date"):
            if record.get(field):
                record[field] = "19" + record[field][2:]  # 2012 -> 1912
    warehouse = tmp_path / "warehouse.duckdb"
    nyc = load_registry().city("nyc")
    with ReplayServer() as server:
        server.add_dataset("fhrw-4uyv", records, id_field="unique_key", prefix="/nyc")
        server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
        source = source_for(nyc, START, END, base_url=nyc.base_url(server.url), backoff_seconds=0.01)
        load_source(nyc, source, warehouse).raise_on_failed_jobs()
    done = run_dbt(warehouse, f"+int_service_requests cities {TEST}", tmp_path)
    assert done.returncode != 0
    assert implausible(done.stdout) == {
        ("nyc", "requested_before_1990"): (1000, 1000, 1.0),
        ("nyc", "closed_without_valid_time"): (966, 966, 1.0),
    }
