"""The Socrata source against the replay server's fault knobs: every row lands
exactly once, whatever the server does between and during pages."""

from __future__ import annotations

import json
import logging

import duckdb
import pytest

from ingestion.pipeline import city_pipeline
from ingestion.registry import load_registry
from ingestion.sources.socrata import SocrataError, socrata_source
from tests.helpers.data import NYC_SODA_SAMPLE
from tooling.replay import Fault, FaultPlan, ReplayServer

pytestmark = pytest.mark.integration

TOKEN = "tok-" + "7f3a9c" * 4
PAGE = 150


@pytest.fixture
def nyc(monkeypatch):
    monkeypatch.setenv("CIVIC311_NYC_APP_TOKEN", TOKEN)
    city = load_registry().city("nyc")
    # A one-second timeout, so a 1.5-second stall is a timeout and is retried.
    source = city.source.model_copy(update={"page_size": PAGE, "timeout_seconds": 1.0})
    return city.model_copy(update={"source": source})


@pytest.fixture
def sample() -> list[dict]:
    return json.loads(NYC_SODA_SAMPLE.read_text())


def load(city, server, warehouse, **kwargs):
    pipeline = city_pipeline(city, warehouse)
    source = socrata_source(city, base_url=city.base_url(server.url), backoff_seconds=0.01, **kwargs)
    pipeline.run(source).raise_on_failed_jobs()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(
            con.execute(
                "select source_id, count(*) over (partition by source_id) from raw_nyc.service_requests"
            ).fetchall()
        ), con.execute("select count(*) from raw_nyc.service_requests").fetchone()[0]


def serve(sample, faults=None) -> ReplayServer:
    server = ReplayServer(faults=faults, app_token=TOKEN)
    server.add_dataset("erm2-nwe9", sample, id_field="unique_key", prefix="/nyc")
    server.add_dataset("fhrw-4uyv", [], id_field="unique_key", prefix="/nyc")
    return server


def assert_each_row_once(loaded, total, expected_ids):
    assert total == len(expected_ids)
    assert set(loaded) == set(expected_ids)
    assert set(loaded.values()) == {1}


@pytest.mark.parametrize(
    "faults",
    [
        [Fault(status=429, retry_after=1)],
        [Fault(status=429)],
        [Fault(status=500), Fault(status=500)],
        [Fault(status=503), Fault(truncate=True), Fault(delay=0.5)],
        [Fault(delay=1.5)],
        [Fault(empty=True)],
        [Fault(), Fault(), Fault(empty=True)],
    ],
    ids=[
        "429-retry-after",
        "429-no-retry-after",
        "two-500s",
        "503-truncated-slow",
        "timeout",
        "empty-first-page",
        "empty-page-mid-stream",
    ],
)
def test_transient_faults_then_success_load_every_row_once(nyc, sample, warehouse, faults):
    with serve(sample, FaultPlan(queue=list(faults))) as server:
        loaded, total = load(nyc, server, warehouse)
        statuses = [r.status for r in server.requests]
    assert_each_row_once(loaded, total, {r["unique_key"] for r in sample})
    # A stalled request is abandoned by the client but still answered (200) by the server.
    assert statuses[: len(faults)] == [f.status or 200 for f in faults]


def test_retry_after_is_honoured(nyc, sample, warehouse, monkeypatch):
    waits = []
    monkeypatch.setattr("ingestion.sources.http.time.sleep", waits.append)
    with serve(sample, FaultPlan(queue=[Fault(status=429, retry_after=7)])) as server:
        load(nyc, server, warehouse)
    assert waits[0] == 7


def test_rows_inserted_and_updated_between_pages_neither_repeat_nor_vanish(nyc, sample, warehouse):
    inserted = dict(sample[0], unique_key="99000001", complaint_type="Street Light Condition")
    moved = sample[5]["unique_key"]
    plan = FaultPlan(
        insert_after_page={1: [inserted]},
        # An update moves an already-read row to the end of :updated_at order;
        # with offset paging every later row would shift and one be skipped.
        update_after_page={2: [{"unique_key": moved, "status": "Closed", "descriptor": "Updated"}]},
    )
    with serve(sample, plan) as server:
        loaded, total = load(nyc, server, warehouse)
        pages = server.pages_served
    assert pages > 2
    assert_each_row_once(loaded, total, {r["unique_key"] for r in sample} | {"99000001"})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (descriptor,) = con.execute(
            "select descriptor from raw_nyc.service_requests where source_id = ?", [moved]
        ).fetchone()
    assert descriptor == "Updated"


def test_persistent_failure_names_city_and_fix(nyc, sample, warehouse):
    nyc = nyc.model_copy(update={"source": nyc.source.model_copy(update={"max_retries": 2})})
    with serve(sample, FaultPlan(queue=[Fault(status=500)] * 5)) as server:
        with pytest.raises(Exception) as err:
            load(nyc, server, warehouse)
    assert isinstance(err.value.__cause__ or err.value, SocrataError) or "nyc" in str(err.value)
    assert "nyc: page 1" in str(err.value) and "max_retries" in str(err.value)


def test_app_token_travels_in_header_and_never_in_logs(nyc, sample, warehouse, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    with serve(sample, FaultPlan(queue=[Fault(status=429), Fault(status=500)])) as server:
        load(nyc, server, warehouse)
        requests = server.requests
    assert requests and all(r.had_app_token for r in requests)
    out, err = capfd.readouterr()
    everything = caplog.text + out + err + repr(requests)
    assert "page 1" in caplog.text  # the source did log its progress
    assert TOKEN not in everything
    assert all(TOKEN not in str(r.query) for r in requests)


def test_wrong_token_fails_with_advice(nyc, sample, warehouse, monkeypatch):
    monkeypatch.setenv("CIVIC311_NYC_APP_TOKEN", "wrong")
    with serve(sample) as server, pytest.raises(Exception) as err:
        load(nyc, server, warehouse)
    assert "HTTP 403" in str(err.value) and "app_token_env" in str(err.value)
    assert "wrong" not in str(err.value)
