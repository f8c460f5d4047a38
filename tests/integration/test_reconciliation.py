"""Four cities' real records, each loaded by the raw-only run the daily refresh launches
(`refresh_<city>` with its raw assets and their checks) over the days its records
cover, reconcile with what their portal counts: San Francisco's SODA records, Los
Angeles's 2017 export served as one of its yearly datasets (the other years' answer
empty), and SeeClickFix's Jersey City page and Detroit issues (the foreign ones among
the nationwide pages quarantined, and counted as held)."""

from __future__ import annotations

import json
from datetime import date

import pytest
import yaml
from dagster import AssetCheckKey, DagsterInstance

from ingestion.registry import load_registry
from ingestion.sources.seeclickfix.client import issue_updated_at
from orchestration.daily import raw_keys_of
from orchestration.definitions import build_definitions
from orchestration.launch import launch_days
from tests.helpers.data import REPO, SHARED_DATA
from tests.helpers.samples import FEEDS, detroit_issues
from tooling.replay import ReplayServer
from tooling.replay.catalog import mount_city
from tooling.replay.seeclickfix import SeeClickFixApi, load_scf_issues

pytestmark = pytest.mark.integration

SF_SODA = SHARED_DATA / "sf" / "sf311_vw6y-z8j6_soda_records_2021-07-10_1771.json"
CITIES = ("sf", "la", "jersey_city", "detroit")


def serve(server: ReplayServer, registry) -> dict[str, tuple[date, date]]:
    """Each city's records on the replay, and the first and last day they changed."""
    days = {}
    sf = json.loads(SF_SODA.read_text())
    fields = {"id_field": "service_request_id", "updated_at_fields": ("updated_datetime",)}
    server.add_dataset("vw6y-z8j6", sf, prefix="/sf", **fields)
    days["sf"] = (date(2021, 7, 10), date(2021, 7, 11))
    la = registry.city("la")
    mount_city(server, la, FEEDS["la"][0])
    stamps = sorted(
        r[":updated_at"] for r in server.dataset(la.source.all_datasets[0].id, prefix="/la").snapshot()
    )
    days["la"] = (date.fromisoformat(stamps[0][:10]), date.fromisoformat(stamps[-1][:10]))
    mount_city(server, registry.city("jersey_city"), FEEDS["jersey_city"][0])
    detroit = detroit_issues()
    server.mount("/detroit", SeeClickFixApi({"detroit": detroit}))
    jersey = [issue for path in FEEDS["jersey_city"][0] for issue in load_scf_issues(path)]
    for city_id, issues in (("jersey_city", jersey), ("detroit", detroit)):
        changed = sorted(issue_updated_at(issue).date() for issue in issues)
        days[city_id] = (changed[0], changed[-1])
    return days


def test_four_cities_reconcile_with_their_portals(warehouse, tmp_path, monkeypatch):
    raw = yaml.safe_load((REPO / "ingestion" / "cities.yaml").read_text())
    raw["cities"] = [city for city in raw["cities"] if city["id"] in CITIES]
    for city in raw["cities"]:
        city["source"]["requests_per_minute"] = None  # the replay sets no rate limit
    (tmp_path / "cities.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CIVIC311_CITIES", str(tmp_path / "cities.yaml"))
    registry = load_registry(tmp_path / "cities.yaml")
    instance = DagsterInstance.get()
    raw_keys = raw_keys_of(build_definitions().get_repository_def(), registry)
    results = {}
    with ReplayServer() as server:
        days = serve(server, registry)
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        for city_id in CITIES:
            first, last = days[city_id]
            run = launch_days(
                f"refresh_{city_id}", first, last, asset_selection=raw_keys[city_id], instance=instance
            )
            assert run.success, city_id
            key = AssetCheckKey(raw_keys[city_id][0], "reconciled_with_source")
            (record,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
            evaluation = record.event.dagster_event.event_specific_data
            results[city_id] = {name: value.value for name, value in evaluation.metadata.items()}
            assert evaluation.passed, (city_id, evaluation.description)
    assert {c: results[c]["held_count"] for c in CITIES} == {c: results[c]["source_count"] for c in CITIES}
    # SF's 1,771 records, LA's 9,999, Jersey City's 20 and Detroit's issues of its place.
    assert results["sf"]["source_count"] == 1771 and results["la"]["source_count"] == 9999
    assert results["jersey_city"]["source_count"] == 20
    assert results["detroit"]["source_count"] > 0 and results["detroit"]["spans_compared"] == 1
    assert results["la"]["spans_compared"] == (days["la"][1] - days["la"][0]).days + 1 + 3
    assert all(results[c]["share"] == 1.0 for c in CITIES)
