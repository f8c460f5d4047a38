"""Nothing is lost: for every real sample in ../shared/data/311, the records the
source holds = the requests modelled in int_service_requests + the records in
quarantine.service_requests. The source side is counted here from the files
themselves, independently of the adapters that loaded them."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest

from ingestion.registry import City
from ingestion.sources.exports.files import mapped_names
from orchestration.cli import main
from orchestration.quarantine import format_counts, quarantine_counts
from tests.helpers.dbt import dbt_build
from tests.helpers.samples import CHICAGO_ROWS, EXPORTS, FEEDS, detroit_issues, replay_registry
from tests.helpers.warehouse import copy_warehouse
from tooling.replay.ckan import load_ckan_records
from tooling.replay.open311 import load_open311_records
from tooling.replay.records import load_records
from tooling.replay.seeclickfix import load_scf_issues

pytestmark = pytest.mark.integration

LOADERS = {
    "socrata": load_records,
    "open311": load_open311_records,
    "seeclickfix": load_scf_issues,
    "ckan": load_ckan_records,
}


def api_records(city: City) -> list[dict]:
    files, _ = FEEDS[city.id]
    if city.id == "chicago":
        return CHICAGO_ROWS
    if city.id == "detroit":
        return detroit_issues()
    return [record for path in files for record in LOADERS[city.source.protocol](path)]


def export_ids(city: City) -> list[str]:
    """The id of every data line of the city's export samples, read with the csv module."""
    ids = []
    for path in EXPORTS.get(city.id, []):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = csv.reader(handle)
            _, names = mapped_names(city, path, next(rows))
            position = names.index(city.source.id_field)
            ids += [row[position] for row in rows]
    return ids


def source_records(city: City) -> tuple[int, int]:
    """(distinct keyed requests, records with no id) the city's samples hold."""
    keyed, unkeyed = set(), set()
    for record in api_records(city):
        key = record.get(city.source.id_field)
        if key in (None, ""):
            unkeyed.add(json.dumps(record, sort_keys=True, default=str))
        else:
            keyed.add(str(key))
    keyed.update(i for i in export_ids(city) if i)
    return len(keyed), len(unkeyed)


def test_source_rows_equal_loaded_plus_quarantined_for_every_sample(samples_built, tmp_path):
    registry = replay_registry(tmp_path)
    with duckdb.connect(str(samples_built), read_only=True) as con:
        loaded = dict(
            con.execute(
                "select city_id, count(*) from intermediate.int_service_requests group by 1"
            ).fetchall()
        )
        held = dict(
            con.execute("select city_id, count(*) from quarantine.service_requests group by 1").fetchall()
        )
        orphans = con.execute(
            "select count(*) from quarantine.service_requests where load_id is null or payload is null"
        ).fetchone()[0]
    balance = {}
    for city in registry.cities:
        keyed, unkeyed = source_records(city)
        balance[city.id] = (keyed + unkeyed, loaded.get(city.id, 0) + held.get(city.id, 0))
    assert {city: source for city, (source, _) in balance.items()} == {
        city: modelled for city, (_, modelled) in balance.items()
    }
    # The samples hold real unkeyed records (Boston's "submitted" requests), and every
    # quarantined record carries its payload and the load that brought it.
    assert held == {"boston_open311": 4}
    assert orphans == 0
    assert sum(source for source, _ in balance.values()) > 29_000


def test_a_hard_rule_moves_a_request_to_quarantine_with_its_raw_row(samples_built, tmp_path, dbt_manifest):
    warehouse = copy_warehouse(samples_built, tmp_path / "w")
    with duckdb.connect(str(warehouse)) as con:
        (victim,) = con.execute("select min(source_id) from raw_toronto.service_requests").fetchone()
        con.execute(
            "update raw_toronto.service_requests set requested_datetime = null where source_id = ?", [victim]
        )
    dbt_build(
        warehouse, "stg_toronto__service_requests int_service_requests path:models/quarantine", tmp_path
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        modelled = con.execute(
            "select count(*) from intermediate.int_service_requests "
            "where city_id = 'toronto' and request_id = ?",
            [victim],
        ).fetchone()[0]
        stage, rule, payload, load_id = con.execute(
            "select stage, rule, payload, load_id from quarantine.service_requests where city_id = 'toronto'"
        ).fetchone()
        (loads,) = con.execute("select list(load_id) from raw_toronto._dlt_loads").fetchone()
    assert modelled == 0
    assert (stage, rule) == ("canonical", "missing_requested_at")
    assert json.loads(payload)["source_id"] == victim and json.loads(payload)["requested_datetime"] is None
    assert load_id in loads
    counts = quarantine_counts(warehouse)
    assert [(c.city_id, c.rule, c.rows) for c in counts] == [
        ("boston_open311", "missing_service_request_id", 4),
        ("toronto", "missing_requested_at", 1),
    ]
    assert "toronto" in format_counts(counts) and victim not in format_counts(counts)


def test_the_quarantine_command_names_the_missing_warehouse(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nowhere" / "warehouse.duckdb"
    monkeypatch.setenv("CIVIC311_WAREHOUSE", str(missing))
    assert main(["quarantine"]) == 2
    said = capsys.readouterr().err
    assert str(missing) in said and "CIVIC311_WAREHOUSE" in said and "Traceback" not in said
