"""The Open311 client on its own: windows, parsing, paging and errors against the
replay server over the real recorded GeoReport files (no dlt)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from ingestion.registry import load_registry
from ingestion.sources.http import HttpClient, Retryable, SourceError
from ingestion.sources.open311.client import (
    Chunk,
    Open311Client,
    Open311Error,
    advice,
    chunks,
    parse_json_list,
    parse_xml_list,
    record_id,
    w3c,
)
from ingestion.sources.timestamps import parse_instant
from tests.helpers.data import SHARED_DATA
from tooling.replay import Fault, FaultPlan, ReplayServer
from tooling.replay.open311 import Open311Api, load_open311_records

OPEN311 = SHARED_DATA / "open311"
CHICAGO_EXTENDED = OPEN311 / "chicago_2014_requests_extended.json"
TORONTO_XML = OPEN311 / "toronto_2018_requests.xml"
ILLEGAL_PARKING = (
    SHARED_DATA / "boston" / "open311" / "bos_open311_illegal-parking__responses--0-1000--aa.json"
)
KEY = "key-" + "9d2e41" * 4


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def city(city_id: str, **source):
    found = load_registry().city(city_id)
    return found.model_copy(update={"source": found.source.model_copy(update=source)})


def client_for(city_, server: ReplayServer, **http) -> Open311Client:
    http_client = HttpClient(city_.id, advice=advice, backoff_seconds=0.001, **http)
    return Open311Client(http_client, f"{server.url}/{city_.id}", city_.source)


def read_all(client: Open311Client, start: datetime, end: datetime) -> list[dict]:
    return [row for page in client.pages(start, end) for row in page]


# -- windows ----------------------------------------------------------------------------


def test_a_long_window_is_read_in_chunks_of_at_most_window_days_sharing_their_bounds():
    found = chunks(utc(2016, 1, 1), utc(2020, 5, 1), 90)
    assert found[0].start == utc(2016, 1, 1) and found[-1].end == utc(2020, 5, 1)
    assert len(found) == 18  # 1582 days
    assert all(c.end - c.start <= timedelta(days=90) for c in found)
    assert all(a.end == b.start for a, b in zip(found, found[1:], strict=False))


def test_chunk_bounds_are_whole_seconds_covering_the_window():
    (only,) = chunks(datetime(2015, 9, 1, 0, 0, 0, 250_000), datetime(2015, 9, 2, 0, 0, 0, 1), 90)
    assert (only.start, only.end) == (utc(2015, 9, 1), utc(2015, 9, 2, 0, 0, 1))
    assert chunks(utc(2015, 9, 2), utc(2015, 9, 1), 90) == []
    assert str(only) == "2015-09-01T00:00:00Z..2015-09-02T00:00:01Z"


def test_halves_share_the_middle_and_a_one_second_chunk_cannot_split():
    first, second = Chunk(utc(2014, 1, 1), utc(2014, 1, 3)).halves()
    assert (first.end, second.start) == (utc(2014, 1, 2), utc(2014, 1, 2))
    assert Chunk(utc(2014, 1, 1), utc(2014, 1, 1, 0, 0, 1)).halves() is None


def test_w3c_renders_utc_with_z():
    assert w3c(datetime(2014, 5, 9, 19, 2, 21, tzinfo=ZoneInfo("America/Chicago"))) == "2014-05-10T00:02:21Z"


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2014-05-09T19:02:21-05:00", utc(2014, 5, 10, 0, 2, 21)),  # Chicago
        ("2018-07-30T00:01:00-04:00", utc(2018, 7, 30, 4, 1)),  # Toronto
        ("2014-05-09T00:00:00Z", utc(2014, 5, 9)),
        ("2014-05-09T19:02:21", utc(2014, 5, 10, 0, 2, 21)),  # no offset: the city's clock (CDT)
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_instant(value, expected):
    assert parse_instant(value, ZoneInfo("America/Chicago")) == expected


def test_record_id_is_text_and_missing_for_boston_submitted_rows():
    records = load_open311_records(ILLEGAL_PARKING)
    missing = [r for r in records if record_id(r) is None]
    assert len(missing) == 1 and missing[0]["status"] == "submitted"
    assert record_id({"service_request_id": 101003146578}) == "101003146578"
    assert record_id({"service_request_id": ""}) is None


# -- bodies -------------------------------------------------------------------------------


def test_json_bodies_plain_or_wrapped():
    body = CHICAGO_EXTENDED.read_bytes()
    plain = parse_json_list(body, "service_requests")
    wrapped = parse_json_list(b'{"service_requests":' + body + b"}", "service_requests")
    assert len(plain) == len(wrapped) == 50
    assert plain[0]["service_request_id"] == "14-00684314"
    assert plain[0]["extended_attributes"]["ward"] == "21"


def test_a_truncated_json_body_is_retryable():
    body = CHICAGO_EXTENDED.read_bytes()
    with pytest.raises(Retryable, match="invalid JSON"):
        parse_json_list(body[: len(body) // 2], "service_requests")


def test_a_georeport_error_list_in_a_200_body_is_an_error():
    with pytest.raises(ValueError, match="jurisdiction_id not found"):
        parse_json_list(b'[{"code":404,"description":"jurisdiction_id not found"}]', "service_requests")
    with pytest.raises(ValueError, match="expected a JSON array"):
        parse_json_list(b'{"message":"nope"}', "service_requests")


def test_toronto_xml_empty_elements_are_null():
    first, second = parse_xml_list(TORONTO_XML.read_bytes())
    assert (first["service_request_id"], second["service_request_id"]) == ("101005420892", "101005420894")
    assert first["updated_datetime"] is None and first["zipcode"] is None and first["description"] is None
    assert first["expected_datetime"] == "2018-08-03T00:01:00-04:00"
    assert first["address"] == "Warden Ave / Freeman St, Scarborough"
    assert (first["lat"], first["long"], first["address_id"]) == ("43.691104288", "-79.272306875", "13459430")


def test_xml_nesting_becomes_lists_and_dicts():
    body = (
        b"<service_requests><request><service_request_id>14-00684314</service_request_id>"
        b"<extended_attributes><ward>21</ward><police>6</police></extended_attributes>"
        b"<attributes><WHEREIST>TRAFFIC</WHEREIST></attributes>"
        b"<notes><note><type>opened</type></note></notes></request></service_requests>"
    )
    (record,) = parse_xml_list(body)
    assert record["extended_attributes"] == {"ward": "21", "police": "6"}
    assert record["attributes"] == {"WHEREIST": "TRAFFIC"}
    assert record["notes"] == [{"type": "opened"}]


def test_giessen_services_xml():
    services = parse_xml_list((OPEN311 / "giessen_services.xml").read_bytes())
    assert len(services) == 8
    assert services[0] == {
        "service_code": "015",
        "service_name": "Abwasser und Wasser",
        "metadata": "false",
        "type": "realtime",
        "description": None,
        "keywords": None,
    }


def test_truncated_xml_is_retryable_and_a_dtd_is_refused():
    body = TORONTO_XML.read_bytes()
    with pytest.raises(Retryable, match="invalid XML"):
        parse_xml_list(body[: len(body) // 2])
    with pytest.raises(ValueError, match="DTD"):
        parse_xml_list(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><service_requests>&a;</service_requests>')


def test_xml_error_lists_are_errors_and_readable():
    xml = (
        b"<errors><error><code>400</code><description>may not span more than 90 days</description>"
        b"</error></errors>"
    )
    with pytest.raises(ValueError, match="may not span more than 90 days"):
        parse_xml_list(xml)
    response = requests.Response()
    response.status_code, response._content = 400, b"<?xml version='1.0'?>\n" + xml
    http = HttpClient(city_id="toronto", session=_Answer(response), max_retries=0)
    with pytest.raises(SourceError) as err:
        http.get("http://x/requests.xml", {}, "page 1", bytes)
    assert str(err.value).startswith(
        "toronto: http://x/requests.xml answered HTTP 400 to page 1: may not span more than 90 days."
    )


class _Answer:
    """A session that answers every GET with one response."""

    def __init__(self, response):
        self.response = response

    def get(self, *args, **kwargs):
        return self.response


def test_advice_names_the_registry_field_to_fix():
    assert "source.window_days" in advice(400)
    assert "source.api_key_env" in advice(401) and "source.api_key_env" in advice(403)
    assert "source.jurisdiction_id" in advice(404)


# -- paging against the replay ------------------------------------------------------------


@pytest.fixture(scope="module")
def chicago_records() -> list[dict]:
    return load_open311_records(CHICAGO_EXTENDED)


def test_requests_carry_the_window_jurisdiction_extensions_and_paging(chicago_records):
    chicago = city("chicago_open311", page_size=20)
    with ReplayServer() as server:
        server.mount("/chicago_open311", Open311Api(chicago_records, window_field="updated"))
        rows = read_all(client_for(chicago, server), utc(2015, 9, 1), utc(2015, 11, 1))
        queries = [r.query for r in server.requests]
    assert len(rows) == 50 and {len(r["notes"]) > 0 for r in rows} == {True}
    assert queries[0] == {
        "updated_after": "2015-09-01T00:00:00Z",
        "updated_before": "2015-11-01T00:00:00Z",
        "extensions": "true",
        "page": "1",
        "page_size": "20",
    }
    assert [q["page"] for q in queries] == ["1", "2", "3"]  # 20 + 20 + 10: a full page proves the size


def test_bloomington_sends_its_jurisdiction_and_start_end_dates():
    bloomington = city("bloomington")
    records = load_open311_records(OPEN311 / "bloomington_2012_requests.json")
    with ReplayServer() as server:
        server.mount("/bloomington", Open311Api(records, jurisdiction_id="bloomington.in.gov"))
        rows = read_all(client_for(bloomington, server), utc(2012, 5, 1), utc(2012, 6, 1))
        queries = [r.query for r in server.requests]
    assert len(rows) == 21
    assert queries[0] == {
        "start_date": "2012-05-01T00:00:00Z",
        "end_date": "2012-06-01T00:00:00Z",
        "jurisdiction_id": "bloomington.in.gov",
        "page": "1",
        "page_size": "1000",
    }
    # 21 < 1000: the short page is checked once with page 2, which is empty.
    assert [q["page"] for q in queries] == ["1", "2"]


def test_reaching_max_pages_splits_the_chunk_instead_of_truncating(chicago_records):
    chicago = city("chicago_open311", page_size=5, max_pages=2)
    with ReplayServer() as server:
        server.mount("/chicago_open311", Open311Api(chicago_records, window_field="updated"))
        rows = read_all(client_for(chicago, server), utc(2015, 9, 1), utc(2015, 11, 1))
        windows = {(r.query["updated_after"], r.query["updated_before"]) for r in server.requests}
    assert {r["service_request_id"] for r in rows} == {r["service_request_id"] for r in chicago_records}
    assert len(windows) > 3  # the 61-day chunk was halved until each part fit in two pages


def test_a_server_that_clamps_page_size_is_still_read_whole(chicago_records, caplog):
    chicago = city("chicago_open311", page_size=20)
    with ReplayServer() as server:
        server.mount("/chicago_open311", Open311Api(chicago_records, window_field="updated", max_page_size=7))
        rows = read_all(client_for(chicago, server), utc(2015, 9, 1), utc(2015, 11, 1))
    assert len(rows) == 50 and len({r["service_request_id"] for r in rows}) == 50
    assert "caps pages at 7 requests" in caplog.text


def test_a_server_without_paging_is_named_when_page_size_is_set(chicago_records):
    chicago = city("chicago_open311", page_size=20)
    with ReplayServer() as server:
        server.mount(
            "/chicago_open311", Open311Api(chicago_records, window_field="updated", supports_paging=False)
        )
        with pytest.raises(Open311Error, match="set source.page_size to null"):
            read_all(client_for(chicago, server), utc(2015, 9, 1), utc(2015, 11, 1))


def test_an_unpaged_answer_at_the_row_cap_is_split():
    # 1000 recorded Boston illegal-parking rows, 999 of them in the first 90 days; the
    # server stops every answer at 500 rows and has no paging.
    records = load_open311_records(ILLEGAL_PARKING)
    boston = city("boston_open311", page_size=None)
    with ReplayServer() as server:
        server.mount("/boston_open311", Open311Api(records, supports_paging=False, max_page_size=500))
        client = client_for(boston, server)
        client.unpaged_row_cap = 500
        rows = read_all(client, utc(2019, 9, 30), utc(2019, 12, 30))
        requests_made = len(server.requests)
    assert {record_id(r) for r in rows} == {record_id(r) for r in records}
    assert requests_made > 3


def test_an_empty_page_is_confirmed_before_the_chunk_ends(chicago_records):
    chicago = city("chicago_open311", page_size=20)
    with ReplayServer(faults=FaultPlan(queue=[Fault(), Fault(empty=True)])) as server:
        server.mount("/chicago_open311", Open311Api(chicago_records, window_field="updated"))
        rows = read_all(client_for(chicago, server), utc(2015, 9, 1), utc(2015, 11, 1))
    assert len({r["service_request_id"] for r in rows}) == 50


# -- errors --------------------------------------------------------------------------------


def test_a_wrong_jurisdiction_names_city_path_description_and_fix():
    toronto = city("toronto", jurisdiction_id="toronto.on.ca")
    records = load_open311_records(TORONTO_XML)
    with ReplayServer() as server:
        server.mount("/toronto", Open311Api(records, jurisdiction_id="toronto.ca", format_default="xml"))
        with pytest.raises(SourceError) as err:
            read_all(client_for(toronto, server), utc(2018, 7, 1), utc(2018, 8, 1))
    message = str(err.value)
    assert message.startswith("toronto: ") and "/toronto/requests.xml" in message
    assert "jurisdiction_id 'toronto.on.ca' not found" in message and "<" not in message
    assert "source.jurisdiction_id" in message


def test_a_wrong_key_is_named_by_its_variable_never_by_its_value():
    toronto = city("toronto", api_key_env="CIVIC311_TORONTO_KEY")
    records = load_open311_records(TORONTO_XML)
    with ReplayServer() as server:
        server.mount("/toronto", Open311Api(records, api_key=KEY, format_default="xml"))
        client = client_for(toronto, server, headers={"X-Api-Key": "wrong-" + KEY})
        with pytest.raises(SourceError) as err:
            read_all(client, utc(2018, 7, 1), utc(2018, 8, 1))
        logged = server.requests
    assert "HTTP 401" in str(err.value) and "source.api_key_env" in str(err.value)
    assert KEY not in str(err.value) and all(r.had_credential and KEY not in str(r.query) for r in logged)


def test_persistent_5xx_fails_with_retries_named(chicago_records, caplog):
    caplog.set_level(logging.WARNING)
    chicago = city("chicago_open311", page_size=20)
    with ReplayServer(faults=FaultPlan(queue=[Fault(status=503)] * 3)) as server:
        server.mount("/chicago_open311", Open311Api(chicago_records, window_field="updated"))
        with pytest.raises(Exception, match="failed after 2 retries") as err:
            read_all(client_for(chicago, server, max_retries=2), utc(2015, 9, 1), utc(2015, 11, 1))
    assert "chicago_open311: page 1 of requests.json" in str(err.value)
    assert "retry 1/2" in caplog.text
