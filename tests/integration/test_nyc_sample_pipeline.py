"""The real NYC SODA sample through the replay server, the dlt source, the
blocking raw check and dbt, materialized by Dagster into a temporary warehouse."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from tests.helpers.data import nyc_soda_sample
from tests.helpers.nyc_sample import run_nyc_sample

pytestmark = pytest.mark.integration

FCT_HASH = """
    select count(*), md5(string_agg(
        concat_ws('|', city_id, request_id, requested_at, closed_at, status, department,
                  service_name, service_subtype, zip, latitude, longitude, channel, hours_to_close,
                  hours_to_close_null_reason),
        ',' order by request_id))
    from marts.fct_service_requests
"""


def materialized(result) -> set[str]:
    return {
        event.event_specific_data.materialization.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
    }


def test_sample_end_to_end_and_rerun_is_a_no_op(nyc_sample_backfill, tmp_path, dagster_home, monkeypatch):
    """The session's backfill of the sample (into a fresh warehouse, one run over its
    days, as a backfill runs), then a rerun of the same days on a copy."""
    result = nyc_sample_backfill.result
    warehouse = nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    assert result.success
    assert {"raw/nyc/service_requests", "marts/fct_service_requests"} <= materialized(result)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*), count(distinct source_id) from raw_nyc.service_requests"
        ).fetchone() == (1000, 1000)
        assert con.execute(
            "select count(*), count(distinct request_id) from marts.fct_service_requests"
        ).fetchone() == (1000, 1000)
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'fct_service_requests'"
            ).fetchall()
        )
        row = con.execute(
            "select service_name, department, service_subtype, requested_at, requested_at_local, status, "
            "closed_at, hours_to_close, zip, channel from marts.fct_service_requests "
            "where request_id = '24445308'"
        ).fetchone()
        statuses = dict(
            con.execute("select status, count(*) from marts.fct_service_requests group by 1").fetchall()
        )
        first_hash = con.execute(FCT_HASH).fetchone()
        (duplicates,) = con.execute(
            "select count(*) from marts.fct_service_requests where is_duplicate"
        ).fetchone()

    assert types["requested_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["closed_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["latitude"] == "DOUBLE" and types["longitude"] == "DOUBLE"
    assert types["hours_to_close"] == "DOUBLE"

    # From the file: unique_key 24445308, "Noise - Vehicle", NYPD, created 2012-11-20T07:50:59
    # New York time (EST, UTC-5), closed 15:19:09 the same day.
    (
        service_name,
        department,
        service_subtype,
        requested_at,
        requested_local,
        status,
        closed_at,
        hours,
        zip_,
        channel,
    ) = row
    assert (service_name, department, service_subtype) == ("Noise - Vehicle", "NYPD", "Engine Idling")
    assert requested_at == datetime(2012, 11, 20, 12, 50, 59, tzinfo=UTC)
    assert requested_local == datetime(2012, 11, 20, 7, 50, 59)
    assert closed_at == datetime(2012, 11, 20, 20, 19, 9, tzinfo=UTC)
    assert status == "closed" and zip_ == "10075" and channel == "phone"
    assert hours == pytest.approx((7 * 3600 + 28 * 60 + 10) / 3600)
    # 966 Closed; Pending and Assigned are in progress, Open is open.
    assert statuses == {"closed": 966, "in_progress": 29, "open": 5}
    # Nine DEP resolutions say "is a duplicate of a previously filed complaint"; three DCA
    # ones only ask people not to file duplicates, and are not flagged.
    assert duplicates == 9

    rerun = run_nyc_sample(nyc_sample_backfill.feed, tmp_path / "cities.yaml", monkeypatch)
    assert rerun.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw_nyc.service_requests").fetchone()[0] == 1000
        assert con.execute(FCT_HASH).fetchone() == first_hash


def test_failing_raw_check_stops_downstream_models(tmp_path, warehouse, monkeypatch, dbt_manifest):
    records = nyc_soda_sample()
    del records[10]["unique_key"]  # one request arrives without its id
    result = run_nyc_sample(records, tmp_path / "cities.yaml", monkeypatch)

    assert not result.success
    checks = [
        e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    (check,) = [c for c in checks if c.check_name == "source_ids_present_and_unique"]
    assert not check.passed
    assert check.metadata["rows_missing_id"].value == 1
    assert "raw/nyc/service_requests" in materialized(result)
    assert not {k for k in materialized(result) if not k.startswith("raw/")}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        schemas = {
            r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()
        }
    assert "marts" not in schemas
