"""A first load into an empty raw table appends; anything else merges, and either way
every request lands once, in its newest version."""

from __future__ import annotations

import json

import duckdb
import pytest
import requests

from ingestion.pipeline import city_pipeline
from ingestion.registry import load_registry
from ingestion.sources import resource
from ingestion.sources.socrata import socrata_source
from tests.helpers.data import NYC_SODA_SAMPLE
from tooling.replay import FaultPlan, ReplayServer

pytestmark = pytest.mark.integration

PAGE = 150
CURRENT, HISTORIC = "erm2-nwe9", "fhrw-4uyv"


@pytest.fixture
def nyc():
    city = load_registry().city("nyc")
    return city.model_copy(update={"source": city.source.model_copy(update={"page_size": PAGE})})


@pytest.fixture
def sample() -> list[dict]:
    return json.loads(NYC_SODA_SAMPLE.read_text())


def serve(current: list[dict], historic: list[dict] = (), faults: FaultPlan | None = None) -> ReplayServer:
    server = ReplayServer(faults=faults)
    server.add_dataset(CURRENT, current, id_field="unique_key", prefix="/nyc")
    server.add_dataset(HISTORIC, list(historic), id_field="unique_key", prefix="/nyc")
    return server


def load(city, server, warehouse) -> str:
    """Run one load; the write disposition it used for the raw table."""
    pipeline = city_pipeline(city, warehouse)
    pipeline.run(socrata_source(city, base_url=city.base_url(server.url), backoff_seconds=0.01))
    return pipeline.default_schema.tables["service_requests"]["write_disposition"]


def landed(warehouse) -> dict[str, tuple[int, str]]:
    """source_id -> (copies, descriptor)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute(
            "select source_id, count(*), max(descriptor) from raw_nyc.service_requests group by source_id"
        ).fetchall()
    return {source_id: (copies, descriptor) for source_id, copies, descriptor in found}


def test_first_load_appends_and_the_next_merges(nyc, sample, warehouse):
    keys = {r["unique_key"] for r in sample}
    changed = sample[10]["unique_key"]
    with serve(sample) as server:
        assert load(nyc, server, warehouse) == "append"
        first = landed(warehouse)
        server.dataset(CURRENT, prefix="/nyc").apply_changes(
            [], [{"unique_key": changed, "descriptor": "Changed later"}]
        )
        assert load(nyc, server, warehouse) == "merge"
    second = landed(warehouse)
    assert set(first) == set(second) == keys
    assert {copies for copies, _ in second.values()} == {1}
    assert second[changed] == (1, "Changed later")
    assert {k: v for k, v in second.items() if k != changed} == {
        k: v for k, v in first.items() if k != changed
    }


def test_a_key_read_twice_in_a_first_load_merges_it(nyc, sample, warehouse):
    plan = FaultPlan()
    with serve(sample, faults=plan) as server:
        # The first page in the order the client reads; fetching it counts as page 1.
        page_one = requests.get(
            f"{nyc.base_url(server.url)}/resource/{CURRENT}.json",
            {"$select": ":*, *", "$order": ":updated_at, :id", "$limit": str(PAGE)},
            timeout=10,
        ).json()
        moved = page_one[0]["unique_key"]
        # Updated once the load has read it (its first page is page 2): it moves to the
        # end of the order and is read again, in its new version.
        plan.update_after_page[2] = [{"unique_key": moved, "descriptor": "Updated mid-run"}]
        assert load(nyc, server, warehouse) == "merge"
    found = landed(warehouse)
    assert set(found) == {r["unique_key"] for r in sample}
    assert {copies for copies, _ in found.values()} == {1}
    assert found[moved] == (1, "Updated mid-run")


def test_a_key_in_both_datasets_merges_it(nyc, sample, warehouse):
    historic = [dict(sample[0], descriptor="Historic copy")]
    with serve(sample[1:] + [dict(sample[0], descriptor="Current copy")], historic) as server:
        assert load(nyc, server, warehouse) == "merge"
    found = landed(warehouse)
    assert len(found) == len(sample)
    assert {copies for copies, _ in found.values()} == {1}


def test_a_first_load_too_large_to_remember_merges(nyc, sample, warehouse, monkeypatch):
    monkeypatch.setattr(resource, "FIRST_LOAD_KEYS_REMEMBERED", 2 * PAGE)
    with serve(sample) as server:
        assert load(nyc, server, warehouse) == "merge"
    found = landed(warehouse)
    assert len(found) == len(sample)
    assert {copies for copies, _ in found.values()} == {1}
