"""The SeeClickFix client: change stamps, envelopes and the updated_at seek, over real recorded issues."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingestion.registry import load_registry
from ingestion.sources.http import HttpClient, Retryable
from ingestion.sources.seeclickfix import http_client
from ingestion.sources.seeclickfix.client import (
    SeeClickFixClient,
    SeeClickFixError,
    Window,
    api_timestamp,
    issue_updated_at,
)
from ingestion.sources.timestamps import parse_instant
from tests.helpers.data import SHARED_DATA
from tooling.replay.seeclickfix import SeeClickFixApi, load_scf_issues
from tooling.replay.server import FaultPlan, ReplayServer

SCF = SHARED_DATA / "seeclickfix"
NATIONWIDE = [
    SCF / "scf_v2_issues_nationwide_2024-08-31_400.json",
    SCF / "scf_v2_issues_nationwide_2024-08-30_100.json",
]
JERSEY_CITY = SCF / "scf_v2_issues_jerseycity_page1_envelope.json"
JERSEY_CITY_DETAIL = SCF / "scf_v2_issue_detail_jerseycity_20980365.json"
DC_FIXTURE = SCF / "scf_v2_issues_testserver_dc_koop_fixture.json"
CHAPEL_HILL = SCF / "scf_v2_issues_int_chapelhill_details_rt11386.json"


@pytest.fixture(scope="module")
def nationwide() -> list[dict]:
    return [issue for path in NATIONWIDE for issue in load_scf_issues(path)]


@pytest.fixture(scope="module")
def jersey_city() -> list[dict]:
    return load_scf_issues(JERSEY_CITY)


def client_for(server: ReplayServer, place: str, per_page: int, statuses=None) -> SeeClickFixClient:
    http = HttpClient(city_id="test", backoff_seconds=0.001)
    return SeeClickFixClient(
        http,
        f"{server.url}/issues",
        place,
        per_page,
        statuses or ("open", "acknowledged", "closed", "archived"),
    )


def test_timestamps_with_offsets_become_utc():
    assert parse_instant("2024-08-31T11:06:36-04:00") == datetime(2024, 8, 31, 15, 6, 36, tzinfo=UTC)
    assert parse_instant("2024-08-31T15:06:36") == datetime(2024, 8, 31, 15, 6, 36, tzinfo=UTC)
    assert parse_instant("not a time") is None and parse_instant(None) is None
    assert api_timestamp(datetime(2024, 8, 31, 15, 6, 36, 900_000)) == "2024-08-31T15:06:36Z"
    assert api_timestamp(parse_instant("2026-02-10T11:03:43-05:00")) == "2026-02-10T16:03:43Z"


def test_change_stamp_is_updated_at_when_the_issue_has_it(nationwide):
    issue = next(i for i in nationwide if i["id"] == 17411547)
    # updated 10:07:22 Detroit time (EDT); acknowledged a second earlier
    assert issue_updated_at(issue) == datetime(2024, 8, 31, 14, 7, 22, tzinfo=UTC)


def test_reduced_field_set_derives_the_stamp_the_detail_endpoint_reports(jersey_city):
    listed = next(i for i in jersey_city if i["id"] == 20980365)
    assert "updated_at" not in listed
    detail = json.loads(JERSEY_CITY_DETAIL.read_text())
    # The latest of created/acknowledged/closed/reopened is the updated_at SeeClickFix reports.
    assert issue_updated_at(listed) == parse_instant(detail["updated_at"])
    assert issue_updated_at(listed) == datetime(2026, 2, 10, 16, 3, 43, tzinfo=UTC)
    acknowledged = next(i for i in jersey_city if i["id"] == 20968889)
    assert issue_updated_at(acknowledged) == datetime(2026, 2, 9, 16, 25, 1, tzinfo=UTC)


def test_derived_stamp_never_runs_ahead_of_the_real_one(nationwide):
    issues = nationwide + load_scf_issues(CHAPEL_HILL)
    derived = [issue_updated_at({k: v for k, v in i.items() if k != "updated_at"}) for i in issues]
    real = [parse_instant(i["updated_at"]) for i in issues]
    assert all(d <= r for d, r in zip(derived, real, strict=True))
    # A lower bound, exact for about half: comments and edits move updated_at too.
    assert sum(d == r for d, r in zip(derived, real, strict=True)) == 349
    assert len(issues) == 700


def test_recorded_envelopes_parse_with_their_pagination():
    client = SeeClickFixClient(HttpClient(city_id="test"), "http://x/issues", "jersey-city", 20)
    page = client._parse(JERSEY_CITY.read_bytes())
    assert len(page.issues) == 20 and page.has_next  # page 1 of 46
    dc = client._parse(DC_FIXTURE.read_bytes())
    assert dc.issues[0]["id"] == 1316438 and dc.has_next  # page 1 of 470


def test_bad_bodies_are_retried_or_explained():
    client = SeeClickFixClient(HttpClient(city_id="detroit"), "http://x/issues", "detroit", 20)
    body = JERSEY_CITY.read_bytes()
    with pytest.raises(Retryable, match="invalid JSON"):
        client._parse(body[: len(body) // 2])
    mid_stream = {"issues": [], "metadata": {"pagination": {"entries": 38, "page": 2, "pages": 2}}}
    with pytest.raises(Retryable, match="empty page 2 of 2 while pagination counts 38"):
        client._parse(json.dumps(mid_stream).encode())
    final = {
        "issues": [],
        "metadata": {"pagination": {"entries": 0, "page": 1, "pages": 0, "next_page": None}},
    }
    assert client._parse(json.dumps(final).encode()).issues == []
    with pytest.raises(SeeClickFixError, match="detroit: .*issues envelope"):
        client._parse(b"[]")


def test_request_asks_for_archived_by_name_in_updated_at_order():
    city = load_registry().city("detroit")
    client = SeeClickFixClient(
        http_client(city),
        "http://x/issues",
        city.source.place_url,
        city.source.per_page,
        city.source.statuses,
    )
    params = client._params(datetime(2024, 8, 29, 23, 59, 59), datetime(2024, 9, 1), 1)
    assert params == {
        "place_url": "detroit",
        "per_page": "100",
        "page": "1",
        "status": "open,acknowledged,closed,archived",
        "sort": "updated_at",
        "sort_direction": "ASC",
        "updated_at_after": "2024-08-29T23:59:59Z",
        "updated_at_before": "2024-09-01T00:00:00Z",
    }


def test_requests_are_paced_at_the_registry_rate(jersey_city, monkeypatch):
    city = load_registry().city("jersey_city")
    http = http_client(city, backoff_seconds=0.001)
    assert http.requests_per_minute == 20  # SeeClickFix's documented limit
    waits: list[float] = []
    monkeypatch.setattr("ingestion.sources.http.time.sleep", waits.append)
    with ReplayServer() as server:
        server.mount("/", SeeClickFixApi({"jersey-city": jersey_city}))
        client = SeeClickFixClient(http, f"{server.url}/issues", "jersey-city", 10)
        issues = [i for page in client.pages(Window()) for i in page]
        requests = len(server.requests)
    assert len({i["id"] for i in issues}) == len(issues) == 20
    # Every request after the first waits out the rest of its 3-second slot.
    assert len(waits) == requests - 1 >= 2
    assert all(2.0 < wait <= 3.0 for wait in waits)


def test_seek_reads_every_issue_once_and_advances_page_when_a_page_shares_one_stamp(nationwide):
    with ReplayServer() as server:
        api = server.mount("/", SeeClickFixApi({"nationwide": nationwide}))
        pages = list(client_for(server, "nationwide", 3).pages(Window()))
        queries = [r.query for r in server.requests]
        held = {str(i["id"]) for i in api.issues("nationwide")}
    ids = [str(i["id"]) for page in pages for i in page]
    assert len(ids) == len(set(ids)) == 491 and set(ids) == held
    # Three issues share 02:00:55 UTC and four share 14:40:22: a page of three of them cannot
    # be sought past, so the read asks for page 2 of the same seek, there and only there.
    page_two = {q["updated_at_after"] for q in queries if q["page"] != "1"}
    assert page_two == {"2024-08-31T02:00:54Z", "2024-08-31T14:40:21Z"}
    assert {q["page"] for q in queries} == {"1", "2"}
    assert all(q["sort"] == "updated_at" and q["sort_direction"] == "ASC" for q in queries)


def test_an_issue_updated_mid_read_is_read_again_in_its_new_version(nationwide):
    detroit = [i for i in nationwide if "Detroit" in (i.get("address") or "")]
    closing = {"id": 17410553, "status": "Closed", "closed_at": "2024-08-31T12:00:00-04:00"}
    with ReplayServer(faults=FaultPlan(update_after_page={2: [closing]})) as server:
        server.mount("/", SeeClickFixApi({"detroit": detroit}))
        issues = [i for page in client_for(server, "detroit", 5).pages(Window()) for i in page]
    versions = [(i["id"], i["status"]) for i in issues if i["id"] == 17410553]
    # read first (the oldest stamp) as Open, then again at the end once closed
    assert versions == [(17410553, "Open"), (17410553, "Closed")]
    assert len({i["id"] for i in issues}) == 38 and len(issues) == 39


def test_a_window_without_issues_is_confirmed_empty_once(nationwide):
    with ReplayServer() as server:
        server.mount("/", SeeClickFixApi({"detroit": nationwide}))
        pages = list(
            client_for(server, "detroit", 100).pages(Window(datetime(2023, 1, 1), datetime(2023, 2, 1)))
        )
        asked = [r.query for r in server.requests]
    assert pages == []
    assert len(asked) == 2 and asked[0] == asked[1]
    assert asked[0]["updated_at_after"] == "2022-12-31T23:59:59Z"
