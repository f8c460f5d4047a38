"""The Open311 replay: recorded GeoReport files loaded as they are, and served
with a real server's limits (90-day windows, paging, jurisdiction, extensions)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests

from ingestion.sources.open311.client import parse_xml_list
from ingestion.sources.timestamps import parse_instant
from tests.helpers.data import SHARED_DATA
from tooling.replay import ReplayServer
from tooling.replay.open311 import Open311Api, load_open311_records

OPEN311 = SHARED_DATA / "open311"
BOSTON = SHARED_DATA / "boston" / "open311"
KEY = "key-" + "40c7b2" * 4
BOSTON_FILES = {
    "bos_open311_dangerous__dangerous.json": 544,
    "bos_open311_illegal-parking__responses--0-1000--aa.json": 1000,
    "bos_open311_other__other--ai.json": 1000,
    "bos_open311_sidewalk-not-shovelled__responses--sidewalk-not-shovelled--aa.json": 1000,
    "bos_open311_updated-other__25-apr-other.json": 700,
    "bos_open311_updated-other__25-apr-other-late.json": 100,
}


@pytest.fixture(scope="module")
def chicago() -> list[dict]:
    return load_open311_records(OPEN311 / "chicago_2014_requests_extended.json")


@pytest.fixture(scope="module")
def boston() -> list[dict]:
    return [r for name in BOSTON_FILES for r in load_open311_records(BOSTON / name)]


def serve(records, **options) -> ReplayServer:
    server = ReplayServer()
    server.mount("/city", Open311Api(records, **options))
    return server


def get(server: ReplayServer, path: str, headers=None, **params) -> requests.Response:
    return requests.get(f"{server.url}/city{path}", params=params, headers=headers, timeout=10)


def ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["service_request_id"] for r in response.json()]


# -- recorded files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count", "first_id"),
    [
        ("chicago_2014_requests_extended.json", 50, "14-00684314"),
        ("chicago_2014_requests.json", 2, "14-01100669"),
        ("bloomington_2012_requests.json", 21, "4fbd40b2b1fe2c4b02000001"),
        ("toronto_2018_requests.xml", 2, "101005420892"),
    ],
)
def test_recorded_request_files_load_whole(name, count, first_id):
    records = load_open311_records(OPEN311 / name)
    assert len(records) == count and records[0]["service_request_id"] == first_id


def test_recorded_service_lists_load_whole():
    bloomington = load_open311_records(OPEN311 / "bloomington_2012_services.json")
    giessen = load_open311_records(OPEN311 / "giessen_services.xml")
    assert len(bloomington) == 46 and bloomington[0]["service_name"] == "City Performance"
    assert len(giessen) == 8 and giessen[3]["service_name"] == "Verkehrsschild beschädigt"


def test_boston_pages_load_with_their_duplicates_and_rows_without_ids(boston):
    for name, count in BOSTON_FILES.items():
        assert len(load_open311_records(BOSTON / name)) == count, name
    ids_ = [r.get("service_request_id") for r in boston]
    assert len(boston) == 4344 and len(set(filter(None, ids_))) == 4112
    without_id = [r for r in boston if not r.get("service_request_id")]
    assert len(without_id) == 4 and {r["status"] for r in without_id} == {"submitted"}


def test_one_record_per_line_with_stray_brackets_and_commas(tmp_path):
    source = BOSTON / "bos_open311_dangerous__dangerous.json"
    lines = source.read_text().splitlines()
    # Drop the array's brackets and leave a trailing comma: no longer one JSON document.
    mangled = [lines[0].lstrip("["), *lines[1:-1], lines[-1].rstrip("]") + ","]
    path = tmp_path / "boston_lines.json"
    path.write_text("\n".join(mangled) + "\n")
    assert load_open311_records(path) == load_open311_records(source)


def test_a_broken_line_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"service_request_id": "1"},\n{"service_request_id": \n')
    with pytest.raises(ValueError, match="line 2 is not a JSON object"):
        load_open311_records(path)


# -- queries ---------------------------------------------------------------------------------


def test_a_window_over_90_days_is_refused_with_a_georeport_error(chicago):
    with serve(chicago) as server:
        json_answer = get(
            server, "/requests.json", start_date="2014-01-01T00:00:00Z", end_date="2014-04-02T00:00:00Z"
        )
        xml_answer = get(
            server, "/requests.xml", start_date="2014-01-01T00:00:00Z", end_date="2014-04-02T00:00:00Z"
        )
        exactly_90 = get(
            server, "/requests.json", start_date="2014-01-01T00:00:00Z", end_date="2014-04-01T00:00:00Z"
        )
    assert json_answer.status_code == 400
    assert json_answer.json() == [
        {"code": 400, "description": "start_date and end_date may not span more than 90 days"}
    ]
    assert xml_answer.status_code == 400 and xml_answer.headers["Content-Type"].startswith("text/xml")
    assert (
        b"<errors><error><code>400</code><description>start_date and end_date may not span"
        in xml_answer.content
    )
    assert exactly_90.status_code == 200 and len(exactly_90.json()) == 27


def test_bad_dates_and_pages_are_refused(chicago):
    with serve(chicago) as server:
        assert get(server, "/requests.json", start_date="last week").status_code == 400
        assert (
            get(
                server, "/requests.json", start_date="2014-02-01T00:00:00Z", end_date="2014-01-01T00:00:00Z"
            ).status_code
            == 400
        )
        assert get(server, "/requests.json", page="0").status_code == 400
        assert get(server, "/nothing.json").status_code == 404


def test_no_dates_means_the_90_days_before_the_newest_request(boston):
    placed = [parse_instant(r.get("requested_datetime") or r["updated_datetime"], UTC) for r in boston]
    newest = max(placed)
    expected = sum(1 for p in placed if newest - timedelta(days=90) <= p <= newest)
    with serve(boston, max_page_size=5000) as server:
        answer = get(server, "/requests.json")
    assert newest == datetime(2020, 4, 26, 13, 59, 21, tzinfo=UTC)
    assert len(answer.json()) == expected == 900


def test_order_is_requested_datetime_then_id(chicago):
    with serve(chicago) as server:
        rows = get(
            server, "/requests.json", start_date="2014-10-01T00:00:00Z", end_date="2014-12-29T00:00:00Z"
        ).json()
    keys = [(parse_instant(r["requested_datetime"], UTC), r["service_request_id"]) for r in rows]
    assert keys == sorted(keys) and rows[-1]["service_request_id"] == "14-02155558"


def test_pages_are_offsets_and_page_size_is_clamped(chicago):
    window = {"start_date": "2014-01-01T00:00:00Z", "end_date": "2014-03-31T00:00:00Z"}
    with serve(chicago) as server:
        whole = ids(get(server, "/requests.json", **window))
    with serve(chicago, max_page_size=3) as server:
        clamped = ids(get(server, "/requests.json", page_size="1000", **window))
        pages = [
            ids(get(server, "/requests.json", page=str(n), page_size="3", **window)) for n in range(1, 11)
        ]
    assert len(whole) == 27 and clamped == whole[:3]
    assert [len(p) for p in pages] == [3] * 9 + [0]
    assert sum(pages, []) == whole


def test_without_paging_page_parameters_are_ignored(chicago):
    window = {"start_date": "2014-01-01T00:00:00Z", "end_date": "2014-03-31T00:00:00Z"}
    with serve(chicago, supports_paging=False) as server:
        first = ids(get(server, "/requests.json", page="1", page_size="3", **window))
        second = ids(get(server, "/requests.json", page="2", page_size="3", **window))
    assert len(first) == 27 and first == second


def test_updated_window_filters_updated_datetime_when_configured(chicago):
    window = {"updated_after": "2015-10-10T00:00:00Z", "updated_before": "2015-10-11T00:00:00Z"}
    with serve(chicago, window_field="updated") as server:
        by_updated = ids(get(server, "/requests.json", **window))
    with serve(chicago) as server:
        ignored = get(server, "/requests.json", **window).json()
    assert by_updated == ["14-00684314"]
    # A server without the extension ignores it and answers its default window.
    assert len(ignored) == 7


def test_extensions_are_served_only_when_asked(chicago):
    window = {"start_date": "2014-04-20T00:00:00Z", "end_date": "2014-05-20T00:00:00Z"}
    with serve(chicago) as server:
        plain = get(server, "/requests.json", **window).json()
        extended = get(server, "/requests.json", extensions="true", **window).json()
    assert [r["service_request_id"] for r in plain] == [r["service_request_id"] for r in extended]
    assert not any({"notes", "extended_attributes", "attributes"} & set(r) for r in plain)
    record = next(r for r in extended if r["service_request_id"] == "14-00684314")
    assert record["extended_attributes"]["channel"] == "phone" and len(record["notes"]) == 7


def test_xml_mirrors_json(chicago):
    window = {"start_date": "2014-04-20T00:00:00Z", "end_date": "2014-05-20T00:00:00Z", "extensions": "true"}
    with serve(chicago) as server:
        as_json = get(server, "/requests.json", **window).json()
        as_xml = get(server, "/requests.xml", **window)
    assert as_xml.headers["Content-Type"].startswith("text/xml")
    assert as_xml.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<service_requests><request>")

    def as_text(value):  # XML carries no types
        if isinstance(value, dict):
            return {k: as_text(v) for k, v in value.items()}
        if isinstance(value, list):
            return [as_text(v) for v in value]
        if isinstance(value, bool):
            return "true" if value else "false"
        return None if value in (None, "") else str(value)

    assert parse_xml_list(as_xml.content) == [as_text(r) for r in as_json]


def test_jurisdiction_is_checked_when_given(chicago):
    with serve(chicago, jurisdiction_id="cityofchicago.org") as server:
        right = get(server, "/requests.json", jurisdiction_id="cityofchicago.org")
        omitted = get(server, "/requests.json")
        wrong = get(server, "/requests.xml", jurisdiction_id="chicago.gov")
    assert right.status_code == omitted.status_code == 200 and len(right.json()) == 7
    assert wrong.status_code == 404 and b"jurisdiction_id 'chicago.gov' not found" in wrong.content


def test_services_in_both_formats():
    services = load_open311_records(OPEN311 / "bloomington_2012_services.json")
    with serve([], services=services) as server:
        as_json = get(server, "/services.json").json()
        as_xml = parse_xml_list(get(server, "/services.xml").content)
    assert len(as_json) == len(as_xml) == 46
    assert as_json[1]["service_name"] == as_xml[1]["service_name"] == "Graffiti"
    assert as_json[1]["metadata"] is True and as_xml[1]["metadata"] == "true"


def test_apply_changes_inserts_and_updates_by_id(chicago):
    api = Open311Api(chicago)
    new = dict(chicago[0], service_request_id="15-09999999", requested_datetime="2015-10-20T09:00:00-05:00")
    api.apply_changes([new], [{"service_request_id": "14-01100669", "status": "closed"}])
    api.apply_changes([], [{"service_request_id": "14-00684314", "status": "open"}])
    rows = {r["service_request_id"]: r for r in api.snapshot()}
    assert len(rows) == 52 and rows["15-09999999"]["updated_datetime"] == chicago[0]["updated_datetime"]
    # An unknown id is inserted; a change without updated_datetime is stamped after the newest.
    assert rows["14-01100669"]["status"] == "closed"
    assert rows["14-00684314"]["status"] == "open"
    assert rows["14-00684314"]["updated_datetime"] == "2015-10-10T15:15:42Z"
    assert rows["14-00684314"]["service_name"] == "Pothole in Street"


def test_an_update_reaches_every_recorded_copy_of_an_id():
    records = load_open311_records(BOSTON / "bos_open311_illegal-parking__responses--0-1000--aa.json")
    counts = Counter(r.get("service_request_id") for r in records)
    repeated = next(key for key, n in counts.items() if key and n == 2)
    api = Open311Api(records)
    api.apply_changes(
        [], [{"service_request_id": repeated, "status": "closed", "status_notes": "Case Resolved."}]
    )
    copies = [r for r in api.snapshot() if r.get("service_request_id") == repeated]
    assert len(copies) == 2 and all(c["status"] == "closed" for c in copies)


def test_a_key_travels_in_a_header_and_stays_out_of_the_log(chicago):
    with serve(chicago, api_key=KEY) as server:
        refused = get(server, "/requests.json")
        accepted = get(server, "/requests.json", headers={"X-Api-Key": KEY})
        logged = server.requests
    assert (
        refused.status_code == 401
        and json.loads(refused.content)[0]["description"] == "invalid or missing api key"
    )
    assert accepted.status_code == 200
    assert [r.had_credential for r in logged] == [False, True] and KEY not in repr(logged)


def test_error_and_empty_bodies_follow_the_format():
    api = Open311Api([], format_default="xml")
    assert api.error(429, "slow down", {"Retry-After": "1"}).body.endswith(
        b"<errors><error><code>429</code><description>slow down</description></error></errors>"
    )
    assert parse_xml_list(api.empty_page("/requests.xml", {}).body) == []
    assert api.empty_page("/requests.json", {}).body == b"[]"
    assert api.is_data_request("/requests.xml") and not api.is_data_request("/services.json")
