"""What a raw materialization tells the Dagster UI besides its rows: records it
quarantined (by rule), type drift it kept in variant columns, and how long the dlt
pipeline ran, before dlt's own record of the load."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterInstance, materialize

from ingestion.registry import load_registry
from orchestration.assets.ingestion import build_raw_assets, raw_asset_key
from orchestration.resources import build_resources
from tests.helpers.data import SHARED_DATA
from tests.helpers.registry import write_registry
from tooling.replay import ReplayServer
from tooling.replay.open311 import Open311Api, load_open311_records

pytestmark = pytest.mark.integration

BLOOMINGTON = SHARED_DATA / "open311" / "bloomington_2012_requests.json"
BOSTON_PARKING = (
    SHARED_DATA / "boston" / "open311" / "bos_open311_illegal-parking__responses--0-1000--aa.json"
)


def _materialize(city, warehouse, server, partition: str):
    result = materialize(
        [build_raw_assets(city, warehouse)],
        partition_key=partition,
        resources=build_resources(),
        instance=DagsterInstance.get(),
    )
    (event,) = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key == raw_asset_key(city)
    ]
    return {key: value.value for key, value in event.metadata.items()}


def _city(tmp_path, monkeypatch, city_id: str):
    registry = write_registry(tmp_path / "cities.yaml", cities=(city_id,), requests_per_minute=None)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry))
    return load_registry().city(city_id)


def test_type_drift_is_kept_and_reported(tmp_path, warehouse, monkeypatch):
    city = _city(tmp_path, monkeypatch, "bloomington")
    records = json.loads(BLOOMINGTON.read_text())
    with ReplayServer() as server:
        api = server.mount("/bloomington", Open311Api(records, jurisdiction_id="bloomington.in.gov"))
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        first = _materialize(city, warehouse, server, "2012-05-23")
        # The city starts sending one latitude as text: the double column cannot take it.
        api.apply_changes(
            [], [{"service_request_id": records[1]["service_request_id"], "lat": "39.146551871103"}]
        )
        second = _materialize(city, warehouse, server, "2012-05-23")
    assert first["variant_columns"] == [] and first["rows_quarantined"] == 0
    assert second["variant_columns"] == ["service_requests.lat__v_text"]
    # What bench/scale.py (P8) counts as dlt's time: a float of seconds, on every load.
    assert all(isinstance(report["load_seconds"], float) for report in (first, second))
    assert all(report["load_seconds"] > 0 for report in (first, second))


def test_records_without_an_id_are_counted_by_rule(tmp_path, warehouse, monkeypatch):
    city = _city(tmp_path, monkeypatch, "boston_open311")
    with ReplayServer() as server:
        server.mount("/boston_open311", Open311Api(load_open311_records(BOSTON_PARKING)))
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        report = _materialize(city, warehouse, server, "2019-12-29")
        earlier = _materialize(city, warehouse, server, "2019-12-22")
    assert report["rows_quarantined"] == 1
    assert report["quarantined_by_rule"] == {"missing_service_request_id": 1}
    # Each load reports what it quarantined itself, not what the table holds by now.
    assert earlier["rows_loaded"] > 0
    assert earlier["rows_quarantined"] == 0 and earlier["quarantined_by_rule"] == {}
    # The UI lists what the load did first, then dlt's own record of it.
    assert list(report)[:4] == ["rows_loaded", "rows_quarantined", "window", "load_seconds"]
    assert report["window"].startswith("changes from 2019-12-29 to 2019-12-30 (excl.)")
    assert "jobs" in report and list(report).index("jobs") > 4
