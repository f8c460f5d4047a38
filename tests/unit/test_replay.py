"""The replay server: a local Socrata SODA endpoint fed with real recorded NYC 311 data."""

from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from tooling.replay import Fault, FaultPlan, ReplayServer, load_records
from tooling.replay.records import (
    _JsonArray,
    _NotAnArrayOfObjects,
    api_field_name,
    iter_records,
    with_system_fields,
)
from tooling.replay.soql import SoqlError, parse_order, parse_where

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "311"
NYC_JSON = DATA / "nyc" / "nyc311_soda_fhrw-4uyv_sample.json"
NYC_CSV = DATA / "nyc" / "nyc311_export_2016_jun_bk_cb06_noise.csv"
DATASET = "fhrw-4uyv"
TOKEN = "tok-" + "5e1f0a" * 4
SYSTEM = (":id", ":created_at", ":updated_at")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z")
FLOATING = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000")
SEEK = {"$select": ":*, *", "$order": ":updated_at, :id"}


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return load_records(NYC_JSON)


@pytest.fixture
def server(sample):
    with ReplayServer() as srv:
        srv.add_dataset(DATASET, sample)
        yield srv


def get(server: ReplayServer, params=None, dataset=DATASET, headers=None) -> requests.Response:
    url = f"{server.url}/resource/{dataset}.json"
    return requests.get(url, params=params, headers=headers, timeout=10)


def rows(server: ReplayServer, params=None, **kwargs) -> list[dict]:
    response = get(server, params, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.000Z")


# -- records -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("display", "api"),
    [
        ("X Coordinate (State Plane)", "x_coordinate_state_plane"),
        ("Unique Key", "unique_key"),
        ("School or Citywide Complaint", "school_or_citywide_complaint"),
        ("  Bridge -- Highway / Segment! ", "bridge_highway_segment"),
        ("Location", "location"),
    ],
)
def test_api_field_name(display, api):
    assert api_field_name(display) == api


def test_csv_export_maps_names_drops_empty_cells_and_converts_timestamps():
    records = load_records(NYC_CSV)
    assert len(records) == 117
    first = records[0]
    assert first["unique_key"] == "33648024"
    assert first["created_date"] == "2016-06-20T22:04:21.000"  # 10:04:21 PM
    assert first["closed_date"] == "2016-06-20T23:12:32.000"
    assert first["x_coordinate_state_plane"] == "982407"
    assert first["location"] == "(40.67500778066339, -74.00664420030702)"  # stays a string
    assert "landmark" not in first and "intersection_street_1" not in first  # empty cells
    assert all(value != "" for record in records for value in record.values())
    # One row has no coordinates at all; its keys are absent, not empty.
    assert sum("x_coordinate_state_plane" in r for r in records) == 116
    # 12:xx AM is just after midnight.
    assert any(r.get("closed_date") == "2016-06-25T00:25:44.000" for r in records)
    for record in records:
        for name in ("created_date", "closed_date", "resolution_action_updated_date"):
            assert FLOATING.fullmatch(record[name]), (name, record[name])


def test_csv_edge_cases(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "\ufeffUnique Key,Created Date,Closed Date,Note\n"
        '1,06/20/2016 12:00:00 AM,06/20/2016 12:00:00 PM,"a, quoted\nnewline"\n'
        "2,13/45/2016 01:00:00 AM,,06/20/2016\n",
        encoding="utf-8",
    )
    first, second = load_records(path)
    assert first == {
        "unique_key": "1",
        "created_date": "2016-06-20T00:00:00.000",
        "closed_date": "2016-06-20T12:00:00.000",
        "note": "a, quoted\nnewline",
    }
    # Not a real date, or not a timestamp: kept verbatim rather than guessed at.
    assert second == {
        "unique_key": "2",
        "created_date": "13/45/2016 01:00:00 AM",
        "note": "06/20/2016",
    }


def test_json_records_are_kept_as_is(sample):
    assert len(sample) == 1000
    assert sample[0]["unique_key"] == "24445308"
    assert sample[0]["location"]["type"] == "Point"
    assert not any(key in record for record in sample for key in SYSTEM)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("records.txt", "[]", "expected a .json"),
        ("records.json", '{"a": 1}', "JSON array of objects"),
        ("records.json", "[1, 2]", "JSON array of objects"),
        ("records.json", "[{", "not valid JSON"),
        ("records.csv", "A,B\n1,2,3\n", "line 2 has 3 cells"),
        ("records.csv", "A A,a-a\n1,2\n", "a_a"),
    ],
)
def test_load_records_rejects_bad_files_naming_them(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(fragment)) as err:
        load_records(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("[]", "utf-8"),
        (" \r\n[ ]\t\n", "utf-8"),
        ('[{"a": "]},{[", "b": [1, {"c": null}], "d": 1.50}\n,{"e": "\\u00e9\\"\\\\"}, {}]', "utf-8"),
        ('[{"where": "Bogot\u00e1", "n": -0.0, "big": 12345678901234567890}]', "utf-8-sig"),
        ('[{"where": "Bogot\u00e1"}, {"x": NaN}]', "utf-16"),
    ],
)
def test_json_records_stream_as_json_loads_reads_them(tmp_path, monkeypatch, text, encoding):
    monkeypatch.setattr(_JsonArray, "_CHUNK_CHARACTERS", 3)  # every token split across reads
    path = tmp_path / "records.json"
    path.write_bytes(text.encode(encoding))
    # _JsonArray itself, not iter_records, which would fall back to json.loads. repr: key
    # order counts too, and NaN, unequal to itself, has an equal repr.
    assert repr(list(_JsonArray(path))) == repr(json.loads(path.read_bytes()))


def test_recorded_json_streams_as_it_loads(monkeypatch):
    monkeypatch.setattr(_JsonArray, "_CHUNK_CHARACTERS", 1000)
    assert list(_JsonArray(NYC_JSON)) == json.loads(NYC_JSON.read_bytes())


def test_a_bad_json_file_fails_after_its_good_records_with_the_usual_message(tmp_path):
    path = tmp_path / "records.json"
    path.write_text('[{"a": 1}, {"b": 2}, 3]')
    records = iter_records(path)
    assert next(records) == {"a": 1}
    with pytest.raises(ValueError, match="JSON array of objects"):
        list(records)


def test_json_read_whole_after_a_streaming_failure_yields_no_record_twice(tmp_path, monkeypatch):
    path = tmp_path / "records.json"
    path.write_text('[{"a": 1}, {"b": 2}, {"c": 3}]')

    def fail_after_two(self):
        yield {"a": 1}
        yield {"b": 2}
        raise _NotAnArrayOfObjects

    monkeypatch.setattr(_JsonArray, "__iter__", fail_after_two)
    assert list(iter_records(path)) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_system_fields_are_derived_from_the_record_dates(sample):
    derived = with_system_fields(sample, DATASET)
    assert len(derived) == 1000
    ids = [r[":id"] for r in derived]
    assert len(set(ids)) == 1000 and all(i.startswith("row-") for i in ids)
    assert ids == [r[":id"] for r in with_system_fields(sample, DATASET)]  # stable
    for record in derived:
        # Same-shaped ISO strings order like the times they name.
        dates = [record.get(f) for f in ("resolution_action_updated_date", "closed_date", "created_date")]
        latest = max(d for d in dates if d and d >= "1990")
        assert record[":updated_at"] == latest + "Z"
        assert record[":created_at"] == record["created_date"] + "Z"
    placeholder = next(r for r in derived if r.get("closed_date", "").startswith("1900"))
    assert placeholder[":updated_at"] == placeholder["resolution_action_updated_date"] + "Z"


def test_system_fields_never_drop_a_record():
    rows = with_system_fields(
        [
            {"unique_key": "1", "created_date": "1900-01-01T00:00:00.000"},
            {"created_date": "soon"},
            {},
        ],
        "abcd-1234",
    )
    assert [r[":updated_at"] for r in rows] == ["1970-01-01T00:00:00.000Z"] * 3
    assert rows[0][":created_at"] == "1900-01-01T00:00:00.000Z"
    assert rows[1][":created_at"] == "1970-01-01T00:00:00.000Z"
    assert len({r[":id"] for r in rows}) == 3
    kept = with_system_fields([{":id": "row-mine", ":updated_at": "2020-01-01T00:00:00.000Z"}], "x")
    assert kept[0][":id"] == "row-mine" and kept[0][":updated_at"] == "2020-01-01T00:00:00.000Z"


# -- SoQL ----------------------------------------------------------------------------


def test_where_compares_timestamps_numbers_then_strings():
    assert parse_where(":updated_at >= '2012-11-20T00:00:00'")({":updated_at": "2012-11-20T00:00:00.000Z"})
    assert parse_where(":updated_at < '2012-11-20T00:00:00.001Z'")({":updated_at": "2012-11-20T00:00:00.000"})
    assert parse_where("closed_date > '2012-01-01'")({"closed_date": "2012-06-01T10:00:00.000"})
    assert parse_where("n > 9")({"n": "10"})  # numerically, not "10" < "9"
    assert parse_where("n > '9'")({"n": "10"})
    assert parse_where("n = 1.50")({"n": "1.5"})
    assert parse_where("x > '9'")({"x": "a"})  # "a" is no number: compared as text
    assert parse_where("status = 'Closed'")({"status": "Closed"})
    assert not parse_where("status = 'closed'")({"status": "Closed"})
    assert parse_where("name = 'O''Brien'")({"name": "O'Brien"})


def test_where_null_and_boolean_logic():
    assert not parse_where("x > 1")({})
    assert not parse_where("x != 1")({})
    assert not parse_where("NOT x > 1")({})  # NOT unknown is still unknown
    assert parse_where("x IS NULL")({}) and not parse_where("x is null")({"x": "1"})
    assert parse_where("x IS NOT NULL")({"x": "1"})
    assert parse_where("x > 1 or y = 'a'")({"y": "a"})
    assert parse_where("a = 1 OR b = 1 AND c = 1")({"a": "1"})  # AND binds tighter
    assert not parse_where("(a = 1 OR b = 1) AND c = 1")({"a": "1"})
    assert parse_where("not (a = 1 and b = 2)")({"a": "1", "b": "3"})
    assert parse_where(":@computed_region_f5dn_yrer = 23")({":@computed_region_f5dn_yrer": "23"})


def test_order_key_types_columns_and_puts_nulls_first():
    records = [{"n": "10", "k": "b"}, {"k": "z"}, {"n": "9", "k": "a"}, {"n": "10", "k": "a"}]
    ascending = sorted(records, key=parse_order("n, k"))
    assert ascending == [records[1], records[2], records[3], records[0]]
    mixed = sorted(records, key=parse_order("n DESC, k asc"))
    assert mixed == [records[3], records[0], records[2], records[1]]
    times = [{"t": "2012-11-20T10:00:00.000Z"}, {"t": "2012-11-20T09:00:00"}]
    assert sorted(times, key=parse_order("t")) == times[::-1]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a >", "expected a quoted string or number at end of input"),
        ("a = b", "found 'b' at character 5"),
        ("(a = 1", "expected ')' to close '(' at character 1"),
        ("a = 1)", "unexpected ')' at character 6"),
        ("a = 'it''s", "unterminated string literal at character 5"),
        ("a ~ 1", "unexpected character '~' at character 3"),
        ("", "empty condition"),
        ("a IS 5", "expected NULL after IS at character 6"),
        ("1 = a", "expected a field name, found '1'"),
        ("a = 1 b = 2", "unexpected 'b' at character 7"),
        ("a = 1 AND", "expected a field name at end of input"),
        ("__import__('os').system('true') = 1", "unexpected character '.' at character 17"),
        pytest.param("(" * 500 + "a = 1" + ")" * 500, "nested too deeply", id="deep-parens"),
        pytest.param("NOT " * 500 + "a = 1", "nested too deeply", id="deep-not"),
    ],
)
def test_where_syntax_errors_say_what_and_where(text, fragment):
    with pytest.raises(SoqlError, match=re.escape(fragment)):
        parse_where(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("x,", "end of input"), ("x y", "found 'y' at character 3"), ("", "empty ordering")],
)
def test_order_syntax_errors(text, fragment):
    with pytest.raises(SoqlError, match=re.escape(fragment)):
        parse_order(text)


# -- serving -------------------------------------------------------------------------


def test_offset_paging_under_updated_at_order_returns_each_row_once(server, sample):
    seen: list[dict] = []
    offset = 0
    while True:
        page = rows(server, {**SEEK, "$limit": 137, "$offset": offset})
        seen += page
        offset += 137
        if len(page) < 137:
            break
    assert len(seen) == 1000
    assert {r["unique_key"] for r in seen} == {r["unique_key"] for r in sample}
    keys = [(stamp(r[":updated_at"]), r[":id"]) for r in seen]
    assert keys == sorted(keys)


def test_keyset_paging_matches_offset_paging(server):
    everything = rows(server, {**SEEK, "$limit": 5000})
    seen: list[dict] = []
    where = ":updated_at >= '2012-01-01T00:00:00.000'"
    while True:
        page = rows(server, {**SEEK, "$limit": 100, "$where": where})
        seen += page
        if len(page) < 100:
            break
        at, row_id = page[-1][":updated_at"], page[-1][":id"]
        where = f":updated_at > '{at}' OR (:updated_at = '{at}' AND :id > '{row_id}')"
    assert [r[":id"] for r in seen] == [r[":id"] for r in everything]


def test_where_ranges_on_updated_at(server):
    everything = rows(server, {**SEEK, "$limit": 5000})
    lo, hi = datetime(2012, 11, 20), datetime(2012, 11, 21)
    expected = {r[":id"] for r in everything if lo <= stamp(r[":updated_at"]) < hi}
    assert 0 < len(expected) < 1000
    inside = rows(
        server,
        {
            **SEEK,
            "$limit": 5000,
            "$where": ":updated_at >= '2012-11-20' AND :updated_at < '2012-11-21T00:00:00.000'",
        },
    )
    assert {r[":id"] for r in inside} == expected
    # Offset paging over one $where walks the same filtered order.
    where = ":updated_at < '2012-11-20'"
    paged = [rows(server, {**SEEK, "$limit": 50, "$offset": o, "$where": where}) for o in (0, 50)]
    earlier = [r[":id"] for r in everything if stamp(r[":updated_at"]) < lo]
    assert [r[":id"] for page in paged for r in page] == earlier[:100]
    outside = rows(
        server,
        {
            **SEEK,
            "$limit": 5000,
            "$where": "NOT (:updated_at >= '2012-11-20' AND :updated_at < '2012-11-21')",
        },
    )
    assert len(outside) == 1000 - len(expected)


def test_limit_defaults_to_1000_and_is_clamped_at_50000():
    with ReplayServer() as server:
        server.add_dataset("big0-0001", [{"unique_key": str(i)} for i in range(50_010)])
        response = get(server, {"$limit": 60_000}, dataset="big0-0001")
        assert response.status_code == 200
        assert len(response.json()) == 50_000
        assert len(rows(server, {"$limit": 60_000, "$offset": 50_000}, dataset="big0-0001")) == 10
        assert len(rows(server, dataset="big0-0001")) == 1000


def test_system_fields_only_with_colon_star(server):
    plain = rows(server, {"$limit": 5})
    assert plain and not any(key in row for row in plain for key in SYSTEM)
    assert all(":@computed_region_f5dn_yrer" in row for row in plain)  # not a system field
    assert rows(server, {"$limit": 5, "$select": "*"}) == plain
    full = rows(server, {"$limit": 5, "$select": ":*,*"})
    assert [row["unique_key"] for row in full] == [row["unique_key"] for row in plain]
    for row in full:
        assert row[":id"].startswith("row-")
        assert STAMP.fullmatch(row[":created_at"]) and STAMP.fullmatch(row[":updated_at"])
        assert {k: v for k, v in row.items() if k not in SYSTEM} in plain


def test_response_shape_and_errors(server):
    response = get(server, {"$limit": 2})
    assert response.headers["Content-Type"].startswith("application/json")
    missing = get(server, dataset="nope-0000")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found" and missing.json()["error"] is True
    assert requests.get(f"{server.url}/other", timeout=5).status_code == 404
    for params in (
        {"$limit": "ten"},
        {"$offset": "-1"},
        {"$where": "status = "},
        {"$order": "status sideways"},
        {"$group": "status"},
    ):
        bad = get(server, params)
        assert bad.status_code == 400, params
        body = bad.json()
        assert body["code"] == "query.compiler.malformed" and body["error"] is True
        assert body["message"]


def test_simple_equality_filters(server, sample):
    brooklyn = rows(server, {"borough": "BROOKLYN", "$limit": 5000})
    assert len(brooklyn) == sum(r["borough"] == "BROOKLYN" for r in sample) > 0
    closed = rows(server, {"borough": "BROOKLYN", "$where": "status = 'Closed'", "$limit": 5000})
    assert 0 < len(closed) == sum(r["status"] == "Closed" for r in brooklyn)


def test_error_positions_refer_to_the_clients_where(server):
    message = get(server, {"$where": "status ="}).json()["message"]
    assert message == "$where: expected a quoted string or number at end of input in 'status ='"
    message = get(server, {"$where": "a ~ 1"}).json()["message"]
    assert "at character 3 in 'a ~ 1'" in message


def test_csv_dataset_is_served_with_derived_system_fields():
    with ReplayServer() as server:
        server.add_dataset("erm2-nwe9", NYC_CSV)
        served = rows(server, {**SEEK, "$limit": 500}, dataset="erm2-nwe9")
    assert len(served) == 117
    by_key = {r["unique_key"]: r for r in served}
    assert by_key["33648024"][":updated_at"] == "2016-06-20T23:12:32.000Z"
    assert by_key["33648024"][":created_at"] == "2016-06-20T22:04:21.000Z"


def test_concurrent_requests(server):
    with ThreadPoolExecutor(8) as pool:
        pages = list(
            pool.map(lambda o: rows(server, {**SEEK, "$limit": 125, "$offset": o}), range(0, 1000, 125))
        )
    assert len({r[":id"] for page in pages for r in page}) == 1000


# -- faults --------------------------------------------------------------------------


def test_429_with_and_without_retry_after_then_normal(server):
    server.faults = FaultPlan(queue=[Fault(status=429, retry_after=2), Fault(status=429)])
    first, second, third = (get(server, {"$limit": 3}) for _ in range(3))
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert first.json()["error"] is True
    assert second.status_code == 429 and "Retry-After" not in second.headers
    assert third.status_code == 200 and len(third.json()) == 3
    assert [r.status for r in server.requests] == [429, 429, 200]


def test_server_errors_are_served_in_queue_order(server):
    plan = FaultPlan(queue=[Fault(status=500), Fault(status=503, retry_after=0.5)])
    server.faults = plan
    statuses = [get(server, {"$limit": 1}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [500, 503, 200]
    assert statuses[1].headers["Retry-After"] == "0.5"
    assert plan.queue == []


def test_delay_slows_a_normal_answer_or_an_error(server):
    server.faults = FaultPlan(queue=[Fault(delay=0.3), Fault(status=503, delay=0.2)])
    started = time.monotonic()
    slow = get(server, {"$limit": 4})
    assert time.monotonic() - started >= 0.3
    assert slow.status_code == 200 and len(slow.json()) == 4
    started = time.monotonic()
    assert get(server).status_code == 503
    assert time.monotonic() - started >= 0.2


def test_truncated_body_is_a_200_that_is_not_json(server):
    whole = get(server, {"$limit": 20}).content
    server.faults = FaultPlan(queue=[Fault(truncate=True)])
    cut = get(server, {"$limit": 20})
    assert cut.status_code == 200
    assert len(cut.content) == len(whole) // 2 and whole.startswith(cut.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert server.pages_served == 1  # a cut page is not a served page
    assert get(server, {"$limit": 20}).content == whole


def test_rows_inserted_and_updated_between_pages(server):
    before = server.dataset(DATASET).snapshot()
    latest = max(stamp(r[":updated_at"]) for r in before)
    target = before[7]
    new = {"unique_key": "99000001", "created_date": "2012-11-21T00:00:00.000", "status": "Open"}
    plan = FaultPlan(
        insert_after_page={1: [new]},
        update_after_page={2: [{"unique_key": target["unique_key"], "status": "Updated", "bbl": None}]},
    )
    server.faults = plan
    page_one = rows(server, {**SEEK, "$limit": 10})
    assert "99000001" not in {r["unique_key"] for r in page_one}
    after_insert = rows(server, {**SEEK, "$limit": 5000})  # page 2: sees the insert
    assert len(after_insert) == 1001
    inserted = after_insert[-1]  # newest :updated_at sorts last
    assert inserted["unique_key"] == "99000001"
    assert stamp(inserted[":updated_at"]) == latest + timedelta(seconds=1)
    assert inserted[":id"].startswith("row-") and inserted[":id"] not in {r[":id"] for r in before}
    unchanged = next(r for r in after_insert if r["unique_key"] == target["unique_key"])
    assert unchanged["status"] == target["status"]

    after_update = rows(server, {**SEEK, "$limit": 5000})
    assert len(after_update) == 1001
    updated = after_update[-1]
    assert updated["unique_key"] == target["unique_key"] and updated["status"] == "Updated"
    assert "bbl" not in updated  # None clears a field, as SODA omits nulls
    assert updated[":id"] == target[":id"] and updated[":created_at"] == target[":created_at"]
    assert updated["complaint_type"] == target["complaint_type"]
    assert stamp(updated[":updated_at"]) == latest + timedelta(seconds=2)
    assert plan.insert_after_page == {} and plan.update_after_page == {}


def test_changes_keep_a_stamp_they_carry(server):
    key = server.dataset(DATASET).snapshot()[0]["unique_key"]
    server.faults = FaultPlan(
        update_after_page={1: [{"unique_key": key, ":updated_at": "2030-01-01T00:00:00.000Z"}]}
    )
    rows(server, {"$limit": 1})
    newest = rows(server, {**SEEK, "$where": ":updated_at > '2029-12-31'"})
    assert [r["unique_key"] for r in newest] == [key]


# -- app token -----------------------------------------------------------------------


def test_app_token_required_and_never_recorded_or_logged(sample, caplog):
    caplog.set_level(logging.DEBUG, logger="civic311.replay")
    with ReplayServer(app_token=TOKEN) as server:
        server.add_dataset(DATASET, sample)
        missing = get(server, {"$limit": 1})
        wrong = get(server, {"$limit": 1}, headers={"X-App-Token": "nope"})
        right = get(server, {"$limit": 1, "$where": "status = 'Closed'"}, headers={"X-App-Token": TOKEN})
        in_query = get(server, {"$limit": 1, "$$app_token": TOKEN})
        recorded = server.requests
        described = repr(server)
    assert missing.status_code == wrong.status_code == in_query.status_code == 403
    assert missing.json()["code"] == "permission_denied" and missing.json()["error"] is True
    assert right.status_code == 200 and len(right.json()) == 1
    assert [r.had_app_token for r in recorded] == [False, True, True, False]
    assert [r.status for r in recorded] == [403, 403, 200, 403]
    assert "X-App-Token" in recorded[2].header_names
    assert recorded[2].query["$where"] == "status = 'Closed'"
    assert "GET /resource/fhrw-4uyv.json" in caplog.text and "status" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(recorded) and TOKEN not in described


# -- the replay in a process of its own (benchmarks) ----------------------------------


def test_replay_process_serves_the_same_pages_as_the_in_process_server(sample):
    from ingestion.registry import load_registry
    from tooling.replay.catalog import mount_city
    from tooling.replay.process import ReplayProcess

    city = load_registry().city("nyc")
    dataset = city.source.all_datasets[0].id
    params = {**SEEK, "$limit": "40"}
    with ReplayServer() as in_process:
        mount_city(in_process, city, [NYC_JSON])
        expected = requests.get(
            f"{city.base_url(in_process.url)}/resource/{dataset}.json", params, timeout=10
        )
    with ReplayProcess({"nyc": [NYC_JSON]}) as replay:
        process = replay._process
        served = requests.get(f"{city.base_url(replay.url)}/resource/{dataset}.json", params, timeout=10)
    assert served.status_code == expected.status_code == 200
    assert served.json() == expected.json()
    assert len(served.json()) == 40
    assert process.poll() is not None  # stopped with the context


def test_replay_process_that_cannot_start_says_so(tmp_path):
    from tooling.replay.process import ReplayProcess

    with pytest.raises(RuntimeError, match="exited with code"):
        ReplayProcess({"nyc": [tmp_path / "missing.json"]}).start()
