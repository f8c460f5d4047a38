"""The taxonomy gate through Dagster, on the real NYC sample: a backfill whose
window holds 1% of requests of types nobody has mapped passes the gate; a later
day whose window holds 10% fails it, the marts are not rebuilt and nothing is
published, and a publish started on its own refuses too."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from orchestration.assets.transformation import civic311_dbt_canonical
from orchestration.checks.taxonomy import CHECK_NAME
from orchestration.launch import launch, launch_days
from tests.helpers.data import NYC_SODA_SAMPLE_DAYS, nyc_soda_sample
from tests.helpers.nyc_sample import serve_nyc_sample
from tests.helpers.registry import write_registry
from tooling.replay import ReplayServer
from tooling.replay.records import system_stamp

pytestmark = pytest.mark.integration

# The sample's rows change on these days; the late rows change on 2012-12-01,
# a partition whose window (with NYC's 72 h lookback) holds only them.
FIRST, LAST = NYC_SODA_SAMPLE_DAYS
LATE_DAY = date(2012, 12, 1)
LATE_ROWS = 40
GATE = ("intermediate/int_service_requests", CHECK_NAME)


def unmapped(record: dict, n: int) -> dict:
    """The request as a type nobody has mapped: no seed row, no rule matches it."""
    row = {k: v for k, v in record.items() if k != "descriptor"}
    return {**row, "complaint_type": f"Unicorn Sighting {n}"}


def feed() -> list[dict]:
    """The 1,000 sample requests, 10 of them (1%) of types nobody has mapped, then 40
    copies changed on the late day, 4 of them (10%) of such types."""
    records = nyc_soda_sample()
    backfill = [unmapped(r, n) if n % 100 == 0 else r for n, r in enumerate(records)]
    late = []
    for n, record in enumerate(records[:LATE_ROWS]):
        row = {k: v for k, v in record.items() if not k.startswith(":")}
        row["unique_key"] = f"8{n:08d}"
        row[":updated_at"] = system_stamp(datetime(2012, 12, 1, 10))  # naive UTC, as Socrata stamps
        late.append(unmapped(row, 1000 + n) if n % 10 == 0 else row)
    return backfill + late


def materialized(result) -> set[str]:
    return {
        event.event_specific_data.materialization.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
    }


def gate_of(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME]
    return evaluation


def test_the_gate_passes_a_window_at_1_percent_and_stops_one_at_10_percent(
    tmp_path, warehouse, monkeypatch, dbt_manifest
):
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    serving = warehouse.parent / "serving.duckdb"
    instance = DagsterInstance.get()
    with ReplayServer() as server:
        serve_nyc_sample(server, feed())
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)

        # The backfill, through the canonical model and its checks (the marts are
        # left out to keep the test short: the gate runs before them either way).
        selection = [AssetKey(["raw", "nyc", "service_requests"]), *civic311_dbt_canonical().keys]
        passing = launch(
            "refresh_nyc",
            instance=instance,
            asset_selection=selection,
            tags={
                "dagster/asset_partition_range_start": FIRST.isoformat(),
                "dagster/asset_partition_range_end": LAST.isoformat(),
            },
        )
        assert passing.success
        evaluation = gate_of(passing)
        assert evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        assert metadata["requests_in_window: nyc"] == 1000
        assert metadata["unclassified_share: nyc"] == 0.01
        assert len(metadata["top_unclassified_types"]) == 10

        late = launch_days("refresh_nyc", LATE_DAY, LATE_DAY, instance=instance)

    assert not late.success
    # The raw load and dbt step 1 ran; only the gate failed, and it stopped everything after it.
    assert {"raw/nyc/service_requests", "intermediate/int_service_types"} <= materialized(late)
    failed = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in late.get_asset_check_evaluations()
        if not e.passed and e.severity == AssetCheckSeverity.ERROR
    }
    assert set(failed) == {GATE}
    assert not {key for key in materialized(late) if key.startswith(("marts/", "serving/"))}
    assert not serving.exists()
    steps = {event.step_key for event in late.all_events if event.event_type_value == "STEP_START"}
    assert not any(step and step.startswith("civic311_dbt_marts") for step in steps)

    evaluation = failed[GATE]
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["requests_in_window: nyc"] == LATE_ROWS
    assert metadata["unclassified_share: nyc"] == 0.1
    assert metadata["cities"]["nyc"] == {
        "requests": LATE_ROWS,
        "unclassified_requests": 4,
        "unclassified_share": 0.1,
        "max_unclassified_share": 0.05,
        "passed": False,
    }
    assert {t["service_name"] for t in metadata["top_unclassified_types"]} == {
        f"Unicorn Sighting {1000 + n}" for n in (0, 10, 20, 30)
    }
    assert evaluation.description.startswith(
        "nyc: 10.0% unclassified (4 of 40 requests) in the window, above its "
        "taxonomy.max_unclassified_share of 5.0%"
    )
    assert "civic311 taxonomy unmapped --city nyc" in evaluation.description
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # Nothing was dropped on the way: the late requests are in the canonical model.
        assert con.execute(
            "select count(*) from intermediate.int_service_requests where request_id like '8%'"
        ).fetchone() == (LATE_ROWS,)

    # Publishing on its own, as from the UI, audits the gate and refuses.
    alone = launch("publish", instance=instance)
    assert not alone.success
    failure = next(e for e in alone.all_events if e.event_type_value == "STEP_FAILURE")
    assert CHECK_NAME in str(failure.event_specific_data.error)
    assert not serving.exists()
