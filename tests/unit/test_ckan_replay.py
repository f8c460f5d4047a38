"""The CKAN DataStore replay: datastore_search over the real Boston January 2022 file,
answered through the replay server as CKAN answers it."""

from __future__ import annotations

import csv
import json

import pytest
import requests

from tests.helpers.data import SHARED_DATA
from tooling.replay import Fault, FaultPlan, ReplayServer
from tooling.replay.ckan import CkanApi, load_ckan_records

BOSTON_CSV = SHARED_DATA / "boston" / "boston311_2022_jan_100.csv"
RESOURCE = "81a7b022-f8fc-4da5-80e4-b160058ca207"
SEARCH = "/boston/api/3/action/datastore_search"
KEY = "ckan-" + "a41c07" * 4


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_ckan_records(BOSTON_CSV)


@pytest.fixture
def api(records) -> CkanApi:
    return CkanApi({RESOURCE: records})


@pytest.fixture
def server(api):
    with ReplayServer() as srv:
        srv.mount("/boston", api)
        yield srv


def search(server, status=200, headers=None, **params) -> dict:
    response = requests.get(server.url + SEARCH, params=params, headers=headers, timeout=10)
    assert response.status_code == status, response.text
    return response.json()


def result(server, **params) -> dict:
    body = search(server, resource_id=RESOURCE, **params)
    assert body["success"] is True
    return body["result"]


def case_ids(answer: dict) -> list[str]:
    return [r["case_enquiry_id"] for r in answer["records"]]


# -- the CSV ---------------------------------------------------------------------------------


def test_load_ckan_records_keeps_every_cell_as_text(records):
    assert len(records) == 100
    assert len({r["case_enquiry_id"] for r in records}) == 100
    first = records[0]
    assert len(first) == 29 and list(first)[:5] == [
        "case_enquiry_id",
        "open_dt",
        "target_dt",
        "closed_dt",
        "ontime",
    ]
    assert all(isinstance(v, str) for r in records for v in r.values())
    assert first["case_enquiry_id"] == "101004143000"
    assert first["closed_dt"] == ""  # an empty cell stays an empty string
    assert first["location"] == " "  # Boston's blank cell is a space, kept as delivered
    assert sum(r["closed_dt"] == "" for r in records) == 15


def test_load_ckan_records_drops_a_dump_id_column(tmp_path, records):
    """A DataStore dump starts with `_id`; the replay assigns its own."""
    dump = tmp_path / "dump.csv"
    with dump.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["_id", *records[0]])
        for position, record in enumerate(records[:3], start=7):
            writer.writerow([position, *record.values()])
    assert load_ckan_records(dump) == records[:3]


# -- datastore_search ------------------------------------------------------------------------


def test_answer_has_ckan_shape(server):
    body = search(server, resource_id=RESOURCE, limit=5)
    assert body["success"] is True and body["help"].endswith("name=datastore_search")
    answer = body["result"]
    assert answer["total"] == 100 and answer["limit"] == 5 and answer["total_was_estimated"] is False
    assert answer["fields"][0] == {"id": "_id", "type": "int"}
    assert len(answer["fields"]) == 30 and {f["type"] for f in answer["fields"][1:]} == {"text"}
    # Records come in load order with `_id` 1..n, every column present.
    assert [r["_id"] for r in answer["records"]] == [1, 2, 3, 4, 5]
    assert case_ids(answer)[:2] == ["101004143000", "101004130437"]
    assert list(answer["records"][0])[:2] == ["_id", "case_enquiry_id"]
    assert answer["records"][0]["closed_dt"] == ""
    assert answer["_links"]["start"] == f"/api/3/action/datastore_search?limit=5&resource_id={RESOURCE}"
    assert answer["_links"]["next"].startswith("/api/3/action/datastore_search?offset=5&limit=5")


def test_missing_and_unknown_resource(server):
    missing = search(server, status=409)
    assert missing["success"] is False
    assert missing["error"]["resource_id"] == ["Missing value"]
    unknown = search(server, status=404, resource_id="no-such-resource")
    assert unknown["error"]["message"] == 'Not found: Resource "no-such-resource" was not found.'


def test_limit_default_and_clamp(records):
    api = CkanApi({RESOURCE: records * 2}, max_limit=150)  # 200 rows (ids repeat; fine here)
    with ReplayServer() as srv:
        srv.mount("/boston", api)
        default = result(srv)
        clamped = result(srv, limit=32000)
        bad = search(srv, status=409, resource_id=RESOURCE, limit="ten")
    assert len(default["records"]) == 100 and default["limit"] == 100
    assert len(clamped["records"]) == 150 and clamped["limit"] == 150
    assert bad["error"]["limit"] == ["Invalid integer"]


def test_sort_and_offset_page_through_case_ids(server, records):
    expected = sorted(r["case_enquiry_id"] for r in records)
    pages = [case_ids(result(server, sort="case_enquiry_id asc", limit=40, offset=o)) for o in (0, 40, 80)]
    assert [len(p) for p in pages] == [40, 40, 20]
    assert sum(pages, []) == expected
    assert case_ids(result(server, sort="case_enquiry_id desc", limit=3)) == expected[::-1][:3]
    unknown = search(server, status=409, resource_id=RESOURCE, sort="case_id asc")
    assert unknown["error"]["sort"] == ['field "case_id" not in the table']


def test_numeric_looking_columns_sort_as_numbers(server):
    # As text "-71.0298" would come first; as numbers the westernmost point does.
    west = result(server, sort="longitude asc", limit=1)["records"][0]
    assert (west["case_enquiry_id"], west["longitude"]) == ("101004114391", "-71.1626")
    # Text columns sort as text.
    assert result(server, sort="case_status desc", limit=1)["records"][0]["case_status"] == "Open"


def test_filters_and_q(server):
    assert result(server, filters=json.dumps({"case_status": "Open"}))["total"] == 15
    both = result(server, filters=json.dumps({"department": ["ISD", "PARK"]}), limit=50)
    assert both["total"] == 11 and {r["department"] for r in both["records"]} == {"ISD", "PARK"}
    bad = search(server, status=409, resource_id=RESOURCE, filters=json.dumps({"nope": "x"}))
    assert bad["error"]["filters"] == ['field "nope" not in the table']
    assert result(server, q="needle")["total"] == 2
    assert result(server, q=json.dumps({"type": "Needle Pickup"}))["total"] == 2


def test_api_key_travels_in_the_authorization_header(records):
    with ReplayServer() as srv:
        srv.mount("/boston", CkanApi({RESOURCE: records}, api_key=KEY))
        denied = search(srv, status=403, resource_id=RESOURCE)
        allowed = search(srv, resource_id=RESOURCE, headers={"Authorization": KEY})
        logged = srv.requests
    assert denied["error"]["__type"] == "Authorization Error"
    assert allowed["result"]["total"] == 100
    assert [r.had_credential for r in logged] == [False, True]
    assert KEY not in repr(logged)


# -- reloads and changes ---------------------------------------------------------------------


def test_reload_reassigns_ids_but_not_case_id_order(api, records):
    before = {r["case_enquiry_id"]: r["_id"] for r in api.records(RESOURCE)}
    api.reload()
    after = {r["case_enquiry_id"]: r["_id"] for r in api.records(RESOURCE)}
    assert set(after) == set(before) and sorted(after.values()) == list(range(1, 101))
    assert sum(before[c] != after[c] for c in before) > 90
    assert api.reloads == 1


def test_paging_on_id_breaks_across_a_reload_and_on_case_id_does_not(server, api):
    """Why the client sorts on case_enquiry_id: `_id` offsets mean nothing after a reload."""
    by_row_id = case_ids(result(server, sort="_id asc", limit=50))
    by_case_id = case_ids(result(server, sort="case_enquiry_id asc", limit=50))
    api.reload()
    by_row_id += case_ids(result(server, sort="_id asc", limit=50, offset=50))
    by_case_id += case_ids(result(server, sort="case_enquiry_id asc", limit=50, offset=50))
    assert len(set(by_row_id)) < 100  # repeats and gaps
    assert len(by_case_id) == len(set(by_case_id)) == 100


def test_changes_between_pages_insert_update_and_reload(records):
    newer = dict(records[0], case_enquiry_id=101004155595, open_dt="2022-01-31 12:00:00")
    closing = {"case_enquiry_id": "101004143000", "case_status": "Closed", "closed_dt": "2022-02-01 09:00:00"}
    plan = FaultPlan(insert_after_page={1: [newer]}, update_after_page={1: [closing]})
    api = CkanApi({RESOURCE: records})
    with ReplayServer(faults=plan) as srv:
        srv.mount("/boston", api)
        result(srv, limit=1)
        answer = result(srv, sort="case_enquiry_id desc", limit=2)
        closed = result(srv, filters=json.dumps({"case_enquiry_id": "101004143000"}))["records"][0]
    assert answer["total"] == 101 and api.reloads == 1
    # Served as text, as the resource's columns are.
    assert case_ids(answer) == ["101004155595", "101004155594"]
    assert (closed["case_status"], closed["closed_dt"]) == ("Closed", "2022-02-01 09:00:00")


def test_retyped_column_is_served_as_numbers(api, server):
    api.set_field_type(RESOURCE, "latitude", "numeric")
    api.set_field_type(RESOURCE, "open_dt", "timestamp")
    answer = result(server, filters=json.dumps({"case_enquiry_id": "101004130437"}))
    record = answer["records"][0]
    assert record["latitude"] == 42.3634 and record["longitude"] == "-71.0566"
    assert record["open_dt"] == "2022-01-19T11:18:00"
    assert {"id": "latitude", "type": "numeric"} in answer["fields"]


def test_faults_use_ckan_shapes(records):
    plan = FaultPlan(queue=[Fault(status=429, retry_after=3), Fault(empty=True)])
    with ReplayServer(faults=plan) as srv:
        srv.mount("/boston", CkanApi({RESOURCE: records}))
        response = requests.get(srv.url + SEARCH, params={"resource_id": RESOURCE}, timeout=10)
        empty = result(srv, limit=10)
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert response.json()["success"] is False
    # A flaky empty page still reports the resource's true total.
    assert empty["records"] == [] and empty["total"] == 100
