"""Write-audit-publish through Dagster, on the real NYC sample: a good backfill is
published; a bad partition fails its check, the marts are not rebuilt, the serving
file keeps every byte, and the run's check metadata names the failed expectation.
A publish started on its own after that refuses too."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from ingestion.registry import load_registry
from orchestration.assets.publishing import SERVED
from orchestration.launch import launch, launch_days
from tests.helpers.data import NYC_SODA_SAMPLE_DAYS
from tests.helpers.nyc_sample import BAD_DAY, BAD_ROWS, serve_nyc_sample
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import content_hash, file_digest
from tooling.replay import ReplayServer
from tooling.replay.records import derive_updated_at, parse_timestamp

pytestmark = pytest.mark.integration

FIRST, LAST = NYC_SODA_SAMPLE_DAYS


def served_in(records: list[dict], first: date, last: date, lookback_hours: float) -> int:
    """Distinct requests the replay serves to a run over partitions first..last: those
    whose :updated_at falls in [first - lookback, last + 1 day)."""
    start = datetime.combine(first, datetime.min.time()) - timedelta(hours=lookback_hours)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time())
    return len(
        {
            r["unique_key"]
            for r in records
            if start <= parse_timestamp(r.get(":updated_at") or derive_updated_at(r, ("created_date",))) < end
        }
    )


def modelled_and_quarantined(warehouse) -> tuple[int, int]:
    """Requests of the newest load in int_service_requests, and records of it in quarantine."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (load,) = con.execute("select max(load_id) from raw_nyc._dlt_loads").fetchone()
        return con.execute(
            "select (select count(*) from intermediate.int_service_requests i "
            "        join raw_nyc.service_requests r on r.source_id = i.request_id "
            "        where i.city_id = 'nyc' and r._dlt_load_id = $load), "
            "       (select count(*) from quarantine.service_requests where load_id = $load)",
            {"load": load},
        ).fetchone()


def materialized(result) -> set[str]:
    return {
        event.event_specific_data.materialization.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
    }


def test_a_bad_partition_is_stopped_before_the_marts_and_the_publish(
    nyc_sample_backfill, tmp_path, dagster_home, monkeypatch
):
    """The session's good backfill (its replay already holds the bad rows, changed on a
    later day), then the bad day and a publish on a copy."""
    good, feed = nyc_sample_backfill.result, nyc_sample_backfill.feed
    warehouse = nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    serving = warehouse.parent / "serving.duckdb"
    instance = DagsterInstance.get()
    lookback = load_registry().city("nyc").source.lookback_hours
    assert good.success
    # Nothing lost, per partition run: served = modelled + quarantined.
    assert sum(modelled_and_quarantined(warehouse)) == served_in(feed, FIRST, LAST, lookback) == 1000
    assert {"marts/fct_service_requests", SERVED.to_user_string()} <= materialized(good)
    published = file_digest(serving)
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_service_requests").fetchone() == (1000,)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        facts = content_hash(con, "fct_service_requests")

    with ReplayServer() as server:
        serve_nyc_sample(server, feed)
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        bad = launch_days("refresh_nyc", BAD_DAY, BAD_DAY, instance=instance)
        # The bad day's window (with the lookback) holds just the 40 bad requests; each
        # is loaded and modelled, none quarantined (a future date is not a hard rule:
        # the check stops the partition instead).
        assert served_in(feed, BAD_DAY, BAD_DAY, lookback) == BAD_ROWS
        assert modelled_and_quarantined(warehouse) == (BAD_ROWS, 0)

    assert not bad.success
    # The raw load ran and kept the bad rows (nothing lost) ...
    assert "raw/nyc/service_requests" in materialized(bad)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*) from raw_nyc.service_requests "
            "where source_id like '9%' and length(source_id) = 9"
        ).fetchone() == (BAD_ROWS,)
        # ... but nothing after the failed check was rebuilt.
        assert content_hash(con, "fct_service_requests") == facts
    assert not {key for key in materialized(bad) if key.startswith(("marts/", "serving/"))}
    assert file_digest(serving) == published

    # The feed itself is well formed (the raw checks pass); its requests' dates are not:
    # the plausibility test (a dbt test, blocking on int_service_requests) fails.
    failed = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in bad.get_asset_check_evaluations()
        if not e.passed and e.severity == AssetCheckSeverity.ERROR
    }
    assert set(failed) == {("intermediate/int_service_requests", "assert_requests_are_plausible")}
    failed = failed["intermediate/int_service_requests", "assert_requests_are_plausible"]
    assert failed.metadata["dagster_dbt/failed_row_count"].value == 1  # nyc, requested_in_future

    # Publishing on its own, as from the UI, audits the same checks and refuses.
    alone = launch("publish", instance=instance)
    assert not alone.success
    failure = next(e for e in alone.all_events if e.event_type_value == "STEP_FAILURE")
    assert "assert_requests_are_plausible" in str(failure.event_specific_data.error)
    assert file_digest(serving) == published
