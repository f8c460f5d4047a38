"""The GX suites on hand-made frames built from real recorded requests (Bloomington's
21 Open311 requests of May 2012): every suite loads, a good frame passes, and each
kind of expectation fails on a frame broken on purpose, naming the expectation, the
column and the number of bad rows."""

import json
import socket
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey

from ingestion.registry import load_registry
from orchestration.checks.expectations import (
    INT_ASSET,
    SuiteError,
    audits,
    frame_sql,
    load_suite,
    mart_suites,
    suite_names,
    unexpected_count_key,
    validate,
    validate_by_city,
)
from tests.helpers.data import SHARED_DATA

BLOOMINGTON = SHARED_DATA / "open311" / "bloomington_2012_requests.json"
LOADED_AT = pd.Timestamp("2024-06-01 12:00:00", tz="UTC")
RAW_SUITES = {"raw_socrata", "raw_open311", "raw_seeclickfix", "raw_ckan"}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return json.loads(BLOOMINGTON.read_text())


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromisoformat(text)).tz_convert("UTC")


@pytest.fixture
def raw_frame(records) -> pd.DataFrame:
    """What RAW_FRAME_SQL reads from raw_bloomington.service_requests for the Open311 suite."""
    return pd.DataFrame(
        {
            "city_id": "bloomington",
            "source_id": [r["service_request_id"] for r in records],
            "id_field_value": [r["service_request_id"] for r in records],
            "source_updated_at": [utc(r["updated_datetime"]) for r in records],
            "_loaded_at": LOADED_AT,
            "status": [r["status"] for r in records],
            "requested_datetime": [r["requested_datetime"] for r in records],
            "_dlt_load_id": "1717243200.0",
        }
    ).pipe(with_days_after_load)


@pytest.fixture
def int_frame(records) -> pd.DataFrame:
    """What audit.audit_int_service_requests holds for Bloomington."""
    return pd.DataFrame(
        {
            "city_id": "bloomington",
            "request_id": [r["service_request_id"] for r in records],
            "requested_at": [utc(r["requested_datetime"]) for r in records],
            "closed_at": [utc(r["updated_datetime"]) if r["status"] == "closed" else pd.NaT for r in records],
            "updated_at": [utc(r["updated_datetime"]) for r in records],
            "status": [r["status"] for r in records],
        }
    )


def with_days_after_load(frame: pd.DataFrame) -> pd.DataFrame:
    """The frames' derived columns: how many days a row's date lies after its load."""
    if "source_updated_at" in frame:
        frame["source_updated_at_days_after_load"] = (frame["source_updated_at"] - LOADED_AT) / timedelta(
            days=1
        )
    return frame


def only_failure(outcome) -> dict:
    assert not outcome.passed
    assert len(outcome.failed) == 1, [f["expectation"] for f in outcome.failed]
    return outcome.failed[0]


def test_every_suite_file_loads_and_gx_accepts_it(dbt_manifest):
    import great_expectations as gx

    # a raw suite per protocol; every other suite has its audit model in the manifest
    assert set(suite_names()) == RAW_SUITES | set(audits(dbt_manifest))
    assert {audit.asset_key for audit in audits(dbt_manifest).values()} == {
        INT_ASSET,
        *(AssetKey(["marts", mart]) for mart in mart_suites()),
    }
    cities = {city.source.protocol: city for city in load_registry().cities}
    for name in suite_names():
        suite = load_suite(name)
        built = gx.ExpectationSuite(name=name, expectations=json.loads(json.dumps(suite.expectations)))
        assert len(built.expectations) == len(suite.expectations) >= 5, name
        assert all(e["meta"]["rule"] for e in suite.expectations), name
        raw_city = cities[name.removeprefix("raw_")] if name in RAW_SUITES else None
        sql = frame_sql(name, raw_city)
        if name in RAW_SUITES:
            assert all(param in sql for param in ("$start", "$end", "$lookback_hours[city_id]")), name
        elif suite.window:  # a model's window has no end
            assert "$end" not in sql and all(param in sql for param in ("$start", "$lookback_hours[city_id]"))
            assert name in {"int_service_requests", "fct_service_requests", "fct_request_events"}
        else:
            assert sql.strip() == f'select * from "audit"."audit_{name}"'
        assert frame_sql(name, raw_city, windowed=False).strip() == sql.partition("\nwhere")[0].strip()
        if raw_city:
            assert f'"raw_{raw_city.id}".service_requests' in sql and "{" not in sql
            assert all(f'"{column}"' in sql for column in suite.meta["protocol_columns"]), name


def doctored(manifest_path, tmp_path, change) -> Path:
    """A copy of the manifest with `change` applied to its nodes."""
    manifest = json.loads(manifest_path.read_text())
    change(manifest["nodes"])
    path = tmp_path / f"{change.__name__}.json"
    path.write_text(json.dumps(manifest))
    return path


def test_an_audit_must_ref_what_it_audits_and_every_mart_needs_one(dbt_manifest, tmp_path):
    def misnamed(nodes):
        meta = nodes["model.civic311.audit_mart_hotspots"]["config"]["meta"]["civic311"]
        meta["audits"] = "marts.mart_service_gaps"

    with pytest.raises(SuiteError, match="audit_mart_hotspots audits 'marts.mart_service_gaps' but does not"):
        audits(doctored(dbt_manifest, tmp_path, misnamed))

    def dropped(nodes):
        del nodes["model.civic311.audit_mart_demand_timing"]

    with pytest.raises(SuiteError, match="^mart_demand_timing has no audit model"):
        audits(doctored(dbt_manifest, tmp_path, dropped))


def test_every_protocol_of_the_registry_has_a_raw_suite():
    protocols = {city.source.protocol for city in load_registry().cities}
    assert protocols == {"socrata", "open311", "seeclickfix", "ckan"}
    assert {f"raw_{p}" for p in protocols} == RAW_SUITES


def test_good_frames_pass(raw_frame, int_frame):
    raw = validate("raw_open311", raw_frame)
    assert raw.passed and raw.failed == []
    assert (raw.rows, raw.evaluated, raw.city) == (21, 12, "bloomington")
    intermediate = validate("int_service_requests", int_frame)
    assert intermediate.passed, intermediate.description()
    assert (intermediate.rows, intermediate.evaluated) == (21, 8)
    assert intermediate.description() == (
        "int_service_requests for bloomington: all 8 expectations hold on 21 rows."
    )


def test_missing_value_fails_not_null(raw_frame):
    raw_frame.loc[[3, 8], "requested_datetime"] = None
    failure = only_failure(validate("raw_open311", raw_frame))
    assert failure["expectation"] == "expect_column_values_to_not_be_null"
    assert (failure["column"], failure["unexpected_count"]) == ("requested_datetime", 2)


def test_repeated_source_id_fails_unique(raw_frame):
    twice = pd.concat([raw_frame, raw_frame.iloc[[6]]], ignore_index=True)
    failure = only_failure(validate("raw_open311", twice))
    assert failure["expectation"] == "expect_column_values_to_be_unique"
    assert (failure["column"], failure["unexpected_count"]) == ("source_id", 2)
    assert failure["partial_unexpected_list"] == ["4fbd14bbb1fe2c5214000000"] * 2
    # the suite's row_key names the rows, not only their values
    assert (
        failure["unexpected_rows"]
        == [{"city_id": "bloomington", "source_id": "4fbd14bbb1fe2c5214000000"}] * 2
    )


def test_status_outside_the_protocol_domain_fails_in_set(raw_frame):
    raw_frame.loc[[0, 1, 2], "status"] = "acknowledged"
    failure = only_failure(validate("raw_open311", raw_frame))
    assert failure["expectation"] == "expect_column_values_to_be_in_set"
    assert (failure["column"], failure["unexpected_count"]) == ("status", 3)
    assert failure["kwargs"] == {"value_set": ["open", "closed"]}
    assert failure["partial_unexpected_list"] == ["acknowledged"] * 3


def test_id_field_other_than_source_id_fails_pair_equal(raw_frame):
    raw_frame.loc[0, "id_field_value"] = "4fbd40b2"
    failure = only_failure(validate("raw_open311", raw_frame))
    assert failure["expectation"] == "expect_column_pair_values_to_be_equal"
    assert (failure["column"], failure["unexpected_count"]) == ("source_id, id_field_value", 1)
    assert failure["partial_unexpected_list"] == [["4fbd40b2b1fe2c4b02000001", "4fbd40b2"]]


def test_change_stamp_from_the_future_fails_between(raw_frame):
    raw_frame.loc[[4, 5, 6, 7], "source_updated_at"] = LOADED_AT + timedelta(days=2)
    outcome = validate("raw_open311", with_days_after_load(raw_frame))
    failure = only_failure(outcome)
    assert failure["expectation"] == "expect_column_values_to_be_between"
    assert (failure["column"], failure["unexpected_count"]) == ("source_updated_at_days_after_load", 4)
    assert failure["kwargs"] == {"max_value": 1}
    assert failure["partial_unexpected_list"] == [2.0] * 4
    assert failure["unexpected_rows"][0] == {
        "city_id": "bloomington",
        "source_id": "4fbd1835b1fe2c7c2d000001",
        "source_updated_at_days_after_load": 2.0,
    }
    assert outcome.metadata()[unexpected_count_key(failure)] == 4


def test_closing_before_the_request_fails_pair_greater_beyond_five_percent(int_frame):
    # Bloomington closed 3 of its 21 requests; 1 closed an hour before it was made
    int_frame.loc[6, "closed_at"] = int_frame.loc[6, "requested_at"] - timedelta(hours=1)
    failure = only_failure(validate("int_service_requests", int_frame))
    assert failure["expectation"] == "expect_column_pair_values_a_to_be_greater_than_b"
    assert (failure["column"], failure["unexpected_count"]) == ("closed_at, requested_at", 1)
    assert failure["unexpected_percent"] == pytest.approx(100 / 3, abs=1e-4)
    assert failure["kwargs"] == {"or_equal": True, "ignore_row_if": "either_value_is_missing", "mostly": 0.95}
    assert failure["partial_unexpected_list"] == [["2012-05-23T15:47:55", "2012-05-23T16:47:55"]]


def test_repeated_request_fails_compound_unique(int_frame):
    twice = pd.concat([int_frame, int_frame.iloc[[0]]], ignore_index=True)
    failure = only_failure(validate("int_service_requests", twice))
    assert failure["expectation"] == "expect_compound_columns_to_be_unique"
    assert (failure["column"], failure["unexpected_count"]) == ("city_id, request_id", 2)


def test_a_city_is_judged_on_its_own_rows_never_pooled(int_frame):
    """Bloomington closes 2 of its 3 closed requests before they were made: pooled with
    100 good closed requests of another city that would be 2%, under the 5% the suite
    allows; judged alone it is 67%, and only Bloomington fails."""
    for row in (6, 7):
        int_frame.loc[row, "closed_at"] = int_frame.loc[row, "requested_at"] - timedelta(hours=1)
    other = pd.DataFrame(
        {
            "city_id": "toronto",
            "request_id": [f"t{n}" for n in range(100)],
            "requested_at": utc("2018-01-02T10:00:00-05:00"),
            "closed_at": utc("2018-01-03T10:00:00-05:00"),
            "updated_at": utc("2018-01-03T10:00:00-05:00"),
            "status": "closed",
        }
    )
    frame = pd.concat([other, int_frame], ignore_index=True)
    assert validate("int_service_requests", frame).passed
    outcome = validate_by_city("int_service_requests", frame)
    assert not outcome.passed
    assert outcome.cities == {"bloomington": False, "toronto": True}
    assert len(outcome.failed) == 1 and outcome.failed[0]["city"] == "bloomington"
    assert outcome.failed[0]["unexpected_count"] == 2
    metadata = outcome.metadata()
    assert (metadata["cities_validated"], metadata["cities_failed"].data) == (2, ["bloomington"])
    assert (
        outcome.description()
        .splitlines()[1]
        .startswith(
            "- bloomington: expect_column_pair_values_a_to_be_greater_than_b on closed_at, requested_at: 2"
        )
    )


def test_a_missing_column_is_a_failure_that_says_so(raw_frame):
    failure = only_failure(validate("raw_open311", raw_frame.drop(columns=["requested_datetime"])))
    assert failure["column"] == "requested_datetime"
    assert failure["unexpected_count"] is None
    assert 'The column "requested_datetime" in BatchData does not exist' in failure["error"]


def test_metadata_and_description_of_a_failure(raw_frame):
    raw_frame.loc[[0, 1, 2], "status"] = "acknowledged"
    raw_frame = pd.concat([raw_frame, raw_frame.iloc[[6]]], ignore_index=True)
    outcome = validate("raw_open311", raw_frame)
    metadata = outcome.metadata()
    assert set(metadata) == {
        "suite",
        "rows_validated",
        "expectations_evaluated",
        "expectations_failed",
        "failed_expectations",
        "city",
        "unexpected_count: column_values_to_be_unique(source_id)",
        "unexpected_count: column_values_to_be_in_set(status)",
    }
    assert (metadata["suite"], metadata["city"], metadata["rows_validated"]) == (
        "raw_open311",
        "bloomington",
        22,
    )
    assert (metadata["expectations_evaluated"], metadata["expectations_failed"]) == (12, 2)
    assert metadata["unexpected_count: column_values_to_be_unique(source_id)"] == 2
    failed = metadata["failed_expectations"].data
    assert json.loads(json.dumps(failed)) == failed  # plain JSON, as Dagster stores it
    assert {f["expectation"] for f in failed} == {
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_in_set",
    }
    assert set(failed[0]) >= {
        "expectation",
        "column",
        "kwargs",
        "unexpected_count",
        "unexpected_percent",
        "partial_unexpected_list",
    }
    text = outcome.description()
    assert text.startswith("raw_open311 for bloomington: 2 of 12 expectations failed on 22 rows.")
    assert "expect_column_values_to_be_in_set on status: 3 unexpected (13.64%)" in text
    assert "expect_column_values_to_be_unique on source_id: 2 unexpected" in text
    assert "Fix: A repeated id means the merge key changed" in text
    assert "Fix: The server answers another status vocabulary" in text


def test_validation_stays_offline_and_writes_nothing(raw_frame, tmp_path, monkeypatch):
    attempts = []

    def refuse(sock, address):
        attempts.append(address)
        raise OSError("the tests have no network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    assert validate("raw_open311", raw_frame).passed
    assert attempts == []
    assert list(tmp_path.iterdir()) == []
