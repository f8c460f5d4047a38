"""The daily schedule's own run (one partition, as the schedule launches it) passes
its day to dbt: after the NYC sample's backfill, a tick for the next day rewrites the
spatial placement of the requests changed in that day's window (with the lookback),
and only those."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pytest
from dagster import DagsterInstance, build_schedule_context

from ingestion.registry import load_registry
from orchestration.definitions import build_definitions
from orchestration.resources import DBT_PROJECT_DIR
from orchestration.schedules import daily_refresh_schedule
from tests.helpers.nyc_sample import serve_nyc_sample
from tests.helpers.registry import write_registry
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

NEXT_DAY = date(2012, 11, 22)
NEW_REQUESTS = 5


def placements(warehouse) -> dict[str, set[str]]:
    """Each request's dbt invocations in int_request_areas (one per layer row)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select request_id, joined_in_run from intermediate.int_request_areas").fetchall()
    runs: dict[str, set[str]] = {}
    for request_id, run in rows:
        runs.setdefault(request_id, set()).add(run)
    return runs


def test_a_scheduled_day_rewrites_only_its_window(nyc_sample_backfill, tmp_path, dagster_home, monkeypatch):
    warehouse = nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    before = placements(warehouse)
    known_runs = set().union(*before.values())
    new = [
        {**record, "unique_key": f"7{number:08d}", "created_date": f"{NEXT_DAY.isoformat()}T10:00:00.000"}
        for number, record in enumerate(nyc_sample_backfill.feed[:NEW_REQUESTS])
    ]
    instance = DagsterInstance.get()
    with build_schedule_context(scheduled_execution_time=datetime(2012, 11, 23, 6, tzinfo=UTC)) as tick:
        (request,) = daily_refresh_schedule.evaluate_tick(tick).run_requests
    assert request.partition_key == NEXT_DAY.isoformat()

    with ReplayServer() as server:
        serve_nyc_sample(server, [*nyc_sample_backfill.feed, *new])
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        defs = build_definitions(load_registry(), warehouse)
        result = defs.resolve_job_def(request.job_name or "daily_refresh").execute_in_process(
            instance=instance, partition_key=request.partition_key
        )
    assert result.success

    lookback_days = load_registry().city("nyc").source.lookback_hours / 24
    with duckdb.connect(str(warehouse), read_only=True) as con:
        in_window = {
            row[0]
            for row in con.execute(
                "select request_id from intermediate.int_service_requests "
                "where updated_at >= cast(? as timestamptz) - to_days(cast(? as integer)) "
                "and updated_at < cast(? as timestamptz) + interval 1 day",
                [NEXT_DAY.isoformat(), int(lookback_days), NEXT_DAY.isoformat()],
            ).fetchall()
        }
    after = placements(warehouse)
    rewritten = {request_id for request_id, runs in after.items() if runs - known_runs}
    assert {f"7{number:08d}" for number in range(NEW_REQUESTS)} <= rewritten
    assert rewritten == in_window
    assert len(rewritten) < len(after)

    # The run's second dbt step starts from the parse its first one ended with: dbt
    # parses the project at most once a run, not once a step (keep_parse).
    (marts_log,) = (DBT_PROJECT_DIR / "target").glob(f"civic311_dbt_marts-{result.run_id[:7]}-*/dbt.log")
    assert "Unable to do partial parsing" not in marts_log.read_text()
