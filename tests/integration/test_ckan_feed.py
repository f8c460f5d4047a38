"""Boston's CKAN DataStore feed end to end: the real January 2022 file served as the
2022 resource by the replay server, read by the dlt source into a temporary DuckDB,
then staged by dbt. Whatever the server does between and during pages, every case
lands exactly once."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.pipeline import city_pipeline
from ingestion.registry import City, load_registry
from ingestion.sources import source_for
from tests.helpers.data import SHARED_DATA
from tests.helpers.dbt import dbt_build
from tests.helpers.warehouse import query
from tooling.replay import Fault, FaultPlan, ReplayServer
from tooling.replay.ckan import CkanApi, load_ckan_records

pytestmark = pytest.mark.integration

BOSTON_CSV = SHARED_DATA / "boston" / "boston311_2022_jan_100.csv"
KEY = "ckan-" + "9c2e47" * 4
PAGE = 30
START, END = datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 5, 1, tzinfo=UTC)
RAW_VALUES = """
    select count(*), md5(string_agg(
        concat_ws('|', source_id, source_updated_at, case_enquiry_id, open_dt, target_dt, closed_dt,
                  ontime, case_status, closure_reason, type, department, latitude, longitude, source),
        ',' order by source_id))
    from raw_boston.service_requests
"""


def with_source(city: City, **changes) -> City:
    return city.model_copy(update={"source": city.source.model_copy(update=changes)})


@pytest.fixture
def boston(monkeypatch) -> City:
    monkeypatch.setenv("CIVIC311_BOSTON_API_KEY", KEY)
    # One resource per run keeps the fault queue on the 2022 pages.
    return with_source(load_registry().city("boston"), page_size=PAGE, reread_years=0)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_ckan_records(BOSTON_CSV)


@pytest.fixture
def warehouse_file(tmp_path) -> Path:
    return tmp_path / "w.duckdb"


def resource(city: City, year: int) -> str:
    return city.source.resources_by_year[year]


def serve(city: City, records: list[dict], faults: FaultPlan | None = None, **api_options):
    server = ReplayServer(faults=faults)
    api = CkanApi({resource(city, 2022): list(records)}, api_key=KEY, **api_options)
    server.mount(f"/{city.id}", api)
    return server, api


def load(city: City, server: ReplayServer, warehouse: Path, start=START, end=END) -> dict[str, int]:
    """Run the pipeline; how many raw rows each case id has."""
    source = source_for(city, start, end, base_url=city.base_url(server.url), backoff_seconds=0.01)
    city_pipeline(city, warehouse).run(source).raise_on_failed_jobs()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(
            con.execute("select source_id, count(*) from raw_boston.service_requests group by 1").fetchall()
        )


def newer_cases(records: list[dict], count: int) -> list[dict]:
    """Real cases filed again under the next case ids, as new cases arrive."""
    top = max(int(r["case_enquiry_id"]) for r in records)
    return [dict(records[i], case_enquiry_id=str(top + 1 + i)) for i in range(count)]


def data_requests(server: ReplayServer) -> list:
    return [r for r in server.requests if r.path.endswith("/datastore_search")]


def test_window_reads_its_years_and_keeps_every_field(boston, records, warehouse_file):
    city = with_source(boston, reread_years=1)
    server, api = serve(city, records)
    api.add_resource(resource(city, 2021), [], fields=list(records[0]))  # the re-read year
    with server:
        counts = load(city, server, warehouse_file)
        requests = data_requests(server)

    assert len(counts) == 100 and set(counts.values()) == {1}
    assert set(counts) == {r["case_enquiry_id"] for r in records}
    # 2021 (re-read, empty: asked twice to confirm) then 2022; no other year.
    assert [(r.query["resource_id"], r.query["offset"]) for r in requests] == [
        (resource(city, 2021), "0"),
        (resource(city, 2021), "0"),
    ] + [(resource(city, 2022), o) for o in ("0", "30", "60", "90")]
    assert {r.query["sort"] for r in requests} == {"case_enquiry_id asc"}
    assert all(r.had_credential for r in requests)

    columns = {
        c for (c,) in query(warehouse_file, "select column_name from (describe raw_boston.service_requests)")
    }
    assert {"target_dt", "ontime", "submittedphoto", "neighborhood_services_district"} <= columns
    assert not columns & {"_id", "_full_text"}
    (row,) = query(
        warehouse_file,
        "select source_updated_at, open_dt, closed_dt, target_dt, ontime, case_status, type, location "
        "from raw_boston.service_requests where source_id = '101004130437'",
    )
    assert row == (
        datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC),  # closed 11:42:16 EST
        "2022-01-19 11:18:00",
        "2022-01-19 11:42:16",
        "",
        "ONTIME",
        "Closed",
        "Needle Pickup",
        "42 Cross St  Boston  MA  02113",
    )
    (open_case,) = query(
        warehouse_file,
        "select source_updated_at, target_dt, ontime, closed_dt from raw_boston.service_requests "
        "where source_id = '101004143000'",
    )
    assert open_case == (datetime(2022, 1, 21, 18, 47, tzinfo=UTC), "2022-02-04 13:47:30", "OVERDUE", "")


@pytest.mark.parametrize(
    "faults",
    [
        [Fault(status=429, retry_after=0.05)],
        [Fault(status=429)],
        [Fault(status=500), Fault(status=502)],
        [Fault(status=503)],
        [Fault(), Fault(delay=1.5)],  # longer than the client's timeout
        [Fault(), Fault(truncate=True)],
        [Fault(), Fault(empty=True)],  # an empty page mid-stream
    ],
    ids=["429-retry-after", "429-no-retry-after", "500-502", "503", "timeout", "truncated", "empty-page"],
)
def test_faults_load_every_case_once(boston, records, warehouse_file, faults):
    city = with_source(boston, timeout_seconds=0.5)
    server, _ = serve(city, records, FaultPlan(queue=list(faults)))
    with server:
        counts = load(city, server, warehouse_file)
        requests = data_requests(server)
    assert len(counts) == 100 and set(counts.values()) == {1}
    assert set(counts) == {r["case_enquiry_id"] for r in records}
    if not any(f.delay for f in faults):  # a delayed request is logged only once it is answered
        # Every page was asked for until it came whole: 4 pages plus one retry per fault.
        assert len(requests) == 4 + sum(f != Fault() for f in faults)


def test_retry_after_is_honoured(boston, records, warehouse_file, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("ingestion.sources.http.time.sleep", waits.append)
    server, _ = serve(boston, records, FaultPlan(queue=[Fault(status=429, retry_after=7)]))
    with server:
        load(boston, server, warehouse_file)
    assert waits[0] == 7


def test_inserts_and_a_nightly_reload_between_pages(boston, records, warehouse_file, caplog):
    """New cases arrive after page 1 and the nightly reload (new `_id` for every row) lands
    after page 2, closing the last open case, while the server also misbehaves."""
    caplog.set_level(logging.INFO, "civic311.ckan")
    inserted = newer_cases(records, 2)
    closing = {"case_enquiry_id": "101004155594", "case_status": "Closed", "closed_dt": "2022-02-01 09:00:00"}
    plan = FaultPlan(
        queue=[Fault(), Fault(status=429), Fault(truncate=True), Fault(empty=True), Fault(status=500)],
        insert_after_page={1: inserted},
        update_after_page={2: [closing]},
    )
    server, api = serve(boston, records, plan)
    row_ids = {r["case_enquiry_id"]: r["_id"] for r in api.records(resource(boston, 2022))}
    with server:
        counts = load(boston, server, warehouse_file)
    reloaded = {r["case_enquiry_id"]: r["_id"] for r in api.records(resource(boston, 2022))}

    expected = {r["case_enquiry_id"] for r in records} | {"101004155595", "101004155596"}
    assert len(counts) == 102 and set(counts) == expected and set(counts.values()) == {1}
    assert api.reloads == 2 and sum(row_ids[c] != reloaded[c] for c in row_ids) > 90
    assert "now holds 102 rows (was 100)" in caplog.text
    (closed,) = query(
        warehouse_file,
        "select case_status, closed_dt, source_updated_at from raw_boston.service_requests "
        "where source_id = '101004155594'",
    )
    assert closed == ("Closed", "2022-02-01 09:00:00", datetime(2022, 2, 1, 14, 0, tzinfo=UTC))


def test_rerunning_a_window_is_idempotent(boston, records, warehouse_file):
    server, _ = serve(boston, records)
    with server:
        load(boston, server, warehouse_file)
        first = query(warehouse_file, RAW_VALUES)
        counts = load(boston, server, warehouse_file)
        second = query(warehouse_file, RAW_VALUES)
    assert first[0][0] == 100 and second == first
    assert set(counts.values()) == {1}


def test_without_a_window_the_cursor_resumes(boston, records, warehouse_file):
    city = with_source(boston, resources_by_year={2022: resource(boston, 2022)})
    server, _ = serve(city, records)
    with server:
        assert len(load(city, server, warehouse_file, start=None, end=None)) == 100
        assert len(load(city, server, warehouse_file, start=None, end=None)) == 100
        offsets = [r.query["offset"] for r in data_requests(server)]
    assert offsets == ["0", "30", "60", "90"] * 2  # every run reads the resource whole


def test_cases_without_a_time_or_an_id_are_quarantined_once(boston, records, warehouse_file):
    untimed, unkeyed = newer_cases(records, 2)
    untimed.update(open_dt=" ", closed_dt="")
    unkeyed.update(case_enquiry_id="")
    server, _ = serve(boston, [*records, untimed, unkeyed])
    with server:
        load(boston, server, warehouse_file)
        counts = load(boston, server, warehouse_file)
    assert len(counts) == 100 and untimed["case_enquiry_id"] not in counts
    rejected = query(
        warehouse_file, "select rule, payload from raw_boston.rejected_service_requests order by rule"
    )
    assert [rule for rule, _ in rejected] == ["no_id", "no_timestamp"]
    assert json.loads(rejected[1][1])["case_enquiry_id"] == untimed["case_enquiry_id"]
    assert "_id" not in json.loads(rejected[0][1])


def test_new_fields_and_type_drift_are_kept(boston, records, warehouse_file):
    server, api = serve(boston, records)
    rid = resource(boston, 2022)
    api.set_field_type(rid, "latitude", "numeric")
    with server:
        load(boston, server, warehouse_file)
        # A reload turns latitude back to text and brings a case under Boston's current
        # names for target_dt/ontime.
        current = newer_cases(records, 1)[0]
        current["sla_target_dt"], current["on_time"] = current.pop("target_dt"), current.pop("ontime")
        api.set_field_type(rid, "latitude", "text")
        api.apply_changes([current], [])
        counts = load(boston, server, warehouse_file)
    assert len(counts) == 101 and set(counts.values()) == {1}
    types = dict(
        query(warehouse_file, "select column_name, column_type from (describe raw_boston.service_requests)")
    )
    assert types["latitude"] == "DOUBLE" and types["latitude__v_text"] == "VARCHAR"
    (drifted,) = query(
        warehouse_file,
        "select latitude, latitude__v_text, longitude from raw_boston.service_requests "
        "where source_id = '101004130437'",
    )
    assert drifted == (None, "42.3634", "-71.0566")
    (renamed,) = query(
        warehouse_file,
        "select sla_target_dt, on_time, target_dt, ontime from raw_boston.service_requests "
        "where source_id = ?",
        [current["case_enquiry_id"]],
    )
    assert renamed == ("2022-02-04 13:47:30", "OVERDUE", "", "")


def test_api_key_travels_in_a_header_and_never_in_logs(boston, records, warehouse_file, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    server, _ = serve(boston, records, FaultPlan(queue=[Fault(status=429), Fault(status=500)]))
    with server:
        load(boston, server, warehouse_file)
        requests = server.requests
    assert requests and all(r.had_credential for r in requests)
    assert all("Authorization" in r.header_names for r in requests)
    out, err = capfd.readouterr()
    assert "page 1 of resource" in caplog.text
    assert KEY not in caplog.text + out + err + repr(requests)


def test_wrong_api_key_fails_with_advice(boston, records, warehouse_file, monkeypatch):
    monkeypatch.setenv("CIVIC311_BOSTON_API_KEY", "wrong-key")
    server, _ = serve(boston, records)
    with server, pytest.raises(Exception) as err:
        load(boston, server, warehouse_file)
    assert "boston" in str(err.value) and "HTTP 403" in str(err.value) and "api_key_env" in str(err.value)
    assert "wrong-key" not in str(err.value)


def test_staging_maps_boston_onto_the_canonical_schema(boston, records, warehouse_file, tmp_path):
    server, api = serve(boston, records)
    with server:
        load(boston, server, warehouse_file)
        dbt_build(warehouse_file, "stg_boston__service_requests", tmp_path)
        stg = "staging.stg_boston__service_requests"
        statuses = dict(query(warehouse_file, f"select status, count(*) from {stg} group by 1"))
        (summary,) = query(
            warehouse_file,
            f"select count(*), count(distinct request_id), count(*) filter (where latitude is null), "
            f"count(*) filter (where is_duplicate), count(*) filter (where zip is null), "
            f"count(*) filter (where service_subtype is not null) from {stg}",
        )
        (needle,) = query(
            warehouse_file,
            f"select requested_at, requested_at_local, closed_at, status, source_status, service_name, "
            f"department, channel, address, zip, latitude, longitude, "
            f"json_extract_string(extras, '$.on_time'), json_extract_string(extras, '$.reason') "
            f"from {stg} where request_id = '101004130437'",
        )
        (open_case,) = query(
            warehouse_file,
            f"select due_at, status, status_notes, address, latitude, longitude, "
            f"json_extract_string(extras, '$.on_time') from {stg} where request_id = '101004143000'",
        )
        (near_default,) = query(
            warehouse_file, f"select latitude, longitude from {stg} where request_id = '101004113298'"
        )

        # A case filed under Boston's current field names, after a reload.
        current = newer_cases(records, 1)[0]
        current["sla_target_dt"], current["on_time"] = current.pop("target_dt"), current.pop("ontime")
        api.apply_changes([current], [])
        load(boston, server, warehouse_file)
        dbt_build(warehouse_file, "stg_boston__service_requests", tmp_path)
        renamed = query(
            warehouse_file,
            f"select count(*), max(due_at) filter (where request_id = ?), "
            f"max(json_extract_string(extras, '$.on_time')) filter (where request_id = ?) from {stg}",
            [current["case_enquiry_id"]] * 2,
        )

    assert statuses == {"closed": 85, "open": 15}
    # 100 cases; 19 sit on Boston's "no location" default point; 5 closed as duplicates;
    # 17 without a ZIP; nothing finer than the type.
    assert summary == (100, 100, 19, 5, 17, 0)
    assert needle == (
        datetime(2022, 1, 19, 16, 18, tzinfo=UTC),
        datetime(2022, 1, 19, 11, 18),
        datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC),
        "closed",
        "Closed",
        "Needle Pickup",
        "GEN_",
        "constituent call",
        "42 Cross St  Boston  MA  02113",
        "02113",
        42.3634,
        -71.0566,
        "ONTIME",
        "Needle Program",
    )
    # target_dt 13:47:30 EST; Boston's blank " " cells are null.
    assert open_case == (
        datetime(2022, 2, 4, 18, 47, 30, tzinfo=UTC),
        "open",
        None,
        None,
        None,
        None,
        "OVERDUE",
    )
    # Same latitude as the default point but another longitude: a real place, kept.
    assert near_default == (42.3594, -71.07)
    assert renamed == [(101, datetime(2022, 2, 4, 18, 47, 30, tzinfo=UTC), "OVERDUE")]
