"""The SeeClickFix v2 replay: /issues of a place served from real recorded issues."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ingestion.sources.seeclickfix.client import issue_updated_at
from ingestion.sources.timestamps import parse_instant
from tests.helpers.data import SHARED_DATA
from tooling.replay.seeclickfix import SeeClickFixApi, load_scf_issues
from tooling.replay.server import Fault, FaultPlan, ReplayServer

SCF = SHARED_DATA / "seeclickfix"
NATIONWIDE_400 = SCF / "scf_v2_issues_nationwide_2024-08-31_400.json"
NATIONWIDE_100 = SCF / "scf_v2_issues_nationwide_2024-08-30_100.json"
JERSEY_CITY = SCF / "scf_v2_issues_jerseycity_page1_envelope.json"
CHAPEL_HILL = SCF / "scf_v2_issues_int_chapelhill_details_rt11386.json"
DC_FIXTURE = SCF / "scf_v2_issues_testserver_dc_koop_fixture.json"


@pytest.fixture(scope="module")
def detroit() -> list[dict]:
    issues = load_scf_issues(NATIONWIDE_400) + load_scf_issues(NATIONWIDE_100)
    return [i for i in issues if "Detroit" in (i.get("address") or "")]


@pytest.fixture(scope="module")
def jersey_city() -> list[dict]:
    return load_scf_issues(JERSEY_CITY)


@pytest.fixture
def api(detroit, jersey_city) -> SeeClickFixApi:
    return SeeClickFixApi({"detroit": detroit, "jersey-city": jersey_city})


def get(api: SeeClickFixApi, path: str = "/issues", **params) -> tuple[int, dict]:
    response = api.respond(path, {k: str(v) for k, v in params.items()}, {})
    return response.status, json.loads(response.body)


def ids(body: dict) -> list[int]:
    return [issue["id"] for issue in body["issues"]]


def test_recorded_files_load_in_each_shape(tmp_path):
    assert len(load_scf_issues(NATIONWIDE_400)) == 400  # bare array
    assert len({i["id"] for i in load_scf_issues(NATIONWIDE_400)}) == 391
    assert len(load_scf_issues(NATIONWIDE_100)) == 100
    assert len(load_scf_issues(JERSEY_CITY)) == 20  # envelope with metadata
    assert len(load_scf_issues(DC_FIXTURE)) == 20
    chapel_hill = load_scf_issues(CHAPEL_HILL)  # envelope without metadata, details=true
    assert len(chapel_hill) == 200 and "questions" in chapel_hill[0]
    bad = tmp_path / "bad.json"
    bad.write_text('{"metadata": {}}')
    with pytest.raises(ValueError, match="'issues' array"):
        load_scf_issues(bad)


def test_overlapping_recorded_pages_hold_one_issue_per_id():
    api = SeeClickFixApi({"nationwide": load_scf_issues(NATIONWIDE_400)})
    assert len(api.issues("nationwide")) == 391


def test_default_page_and_pagination_links(api, detroit):
    status, body = get(api, place_url="detroit")
    pagination = body["metadata"]["pagination"]
    assert status == 200 and len(detroit) == 38
    assert {k: pagination[k] for k in ("entries", "page", "per_page", "pages", "next_page")} == {
        "entries": 38,
        "page": 1,
        "per_page": 20,
        "pages": 2,
        "next_page": 2,
    }
    assert pagination["previous_page"] is None and pagination["previous_page_url"] is None
    link = urlsplit(pagination["next_page_url"])
    assert link.netloc == "seeclickfix.com" and link.path == "/api/v2/issues"
    assert parse_qs(link.query) == {"page": ["2"], "place_url": ["detroit"]}
    # default order: newest created first
    assert ids(body)[0] == 17411732 and len(body["issues"]) == 20
    _, last = get(api, place_url="detroit", page=2)
    assert len(last["issues"]) == 18 and last["metadata"]["pagination"]["next_page"] is None
    assert set(ids(body)) | set(ids(last)) == {i["id"] for i in detroit}


def test_per_page_is_clamped_to_100():
    api = SeeClickFixApi({"nationwide": load_scf_issues(NATIONWIDE_400)})
    _, body = get(api, place_url="nationwide", per_page=500)
    assert len(body["issues"]) == 100
    assert {"per_page": 100, "pages": 4, "entries": 391}.items() <= body["metadata"]["pagination"].items()


def archive_if_closed_before_feb_10(issue: dict) -> dict:
    if issue["status"] == "Closed" and issue["closed_at"] < "2026-02-10":
        return dict(issue, status="Archived")
    return issue


def test_archived_is_served_only_when_asked_for(jersey_city):
    # The recorded pages hold no archived issue; SeeClickFix archives closed ones after a while.
    archived = [archive_if_closed_before_feb_10(i) for i in jersey_city]
    api = SeeClickFixApi({"jersey-city": archived})
    _, default = get(api, place_url="jersey-city")
    _, all_four = get(api, place_url="jersey-city", status="open,acknowledged,closed,archived")
    _, only_archived = get(api, place_url="jersey-city", status="ARCHIVED")
    assert default["metadata"]["pagination"]["entries"] == 12
    assert all_four["metadata"]["pagination"]["entries"] == 20
    assert sorted(ids(only_archived)) == [
        20968247,
        20969309,
        20970096,
        20972649,
        20974698,
        20975622,
        20976093,
        20976769,
    ]


def test_updated_at_bounds_are_exclusive(api):
    stamp = "2024-08-31T14:07:22Z"  # 17411545 and 17411547 were both updated then
    _, after = get(api, place_url="detroit", updated_at_after=stamp, sort="updated_at")
    _, before = get(api, place_url="detroit", updated_at_before=stamp, per_page=100)
    _, around = get(
        api,
        place_url="detroit",
        updated_at_after="2024-08-31T14:07:21Z",
        updated_at_before="2024-08-31T14:07:23Z",
    )
    assert 17411547 not in ids(after) and 17411547 not in ids(before)
    assert ids(around) == [17411547]
    assert after["metadata"]["pagination"]["entries"] + before["metadata"]["pagination"]["entries"] == 37


def test_reduced_field_set_is_ordered_on_the_derived_stamp(api, jersey_city):
    _, body = get(api, place_url="jersey-city", sort="updated_at", sort_direction="ASC")
    # 20968247 was created first and closed at 10:12:17, before 20968474 was created at 10:39:02.
    assert ids(body)[:3] == [20968247, 20968474, 20969309]
    stamps = [issue_updated_at(i) for i in body["issues"]]
    assert stamps == sorted(stamps) and all("updated_at" not in i for i in body["issues"])
    _, newest_created = get(api, place_url="jersey-city", sort="created_at", sort_direction="desc")
    assert ids(newest_created)[0] == 20981031


def test_errors_look_like_seeclickfix(api):
    status, body = get(api, place_url="detroit-mi")
    assert status == 404 and body == {"errors": {"place_url": ["no place 'detroit-mi'"]}}
    status, body = get(api, place_url="detroit", status="pending")
    assert status == 422 and "status" in body["errors"]
    status, body = get(api, place_url="detroit", per_page="0")
    assert status == 422 and "per_page" in body["errors"]
    status, body = get(api, place_url="detroit", updated_at_after="yesterday")
    assert status == 422 and "updated_at_after" in body["errors"]


def test_single_issue(api):
    status, body = get(api, "/issues/17411547")
    assert status == 200 and body["address"] == "14876 Kentucy St Detroit 48238"
    assert get(api, "/issues/1")[0] == 404
    assert api.is_data_request("/issues") and not api.is_data_request("/issues/17411547")


def test_changes_get_a_stamp_newer_than_any_issue(api, detroit):
    get(api, place_url="jersey-city")  # changes go to the place last served
    api.apply_changes([], [{"id": 20968889, "status": "Closed", "closed_at": "2026-02-10T12:00:00-05:00"}])
    get(api, place_url="detroit")
    held_back = detroit[0]
    api.apply_changes([held_back], [{"id": 17411547, "status": "Closed"}])
    _, jersey = get(api, "/issues/20968889")
    _, updated = get(api, "/issues/17411547")
    _, inserted = get(api, f"/issues/{held_back['id']}")
    # the newest Jersey City stamp is 20980365's closing, 2026-02-10T16:03:43Z
    assert parse_instant(jersey["updated_at"]).isoformat() == "2026-02-10T16:03:44+00:00"
    assert jersey["status"] == "Closed" and updated["status"] == "Closed"
    assert updated["updated_at"] == inserted["updated_at"] == "2024-08-31T15:00:41+00:00"
    _, newest = get(api, place_url="detroit", sort="updated_at", sort_direction="DESC", per_page=2)
    assert sorted(ids(newest)) == sorted([17411547, held_back["id"]])


def test_empty_fault_keeps_the_pagination_and_truncation_cuts_the_body(detroit):
    plan = FaultPlan(queue=[Fault(empty=True), Fault(truncate=True)])
    with ReplayServer(faults=plan) as server:
        server.mount("/detroit", SeeClickFixApi({"detroit": detroit}))
        url = f"{server.url}/detroit/issues"
        empty = requests.get(url, params={"place_url": "detroit"}, timeout=5).json()
        cut = requests.get(url, params={"place_url": "detroit"}, timeout=5)
        whole = requests.get(url, params={"place_url": "detroit"}, timeout=5).json()
    assert empty["issues"] == [] and empty["metadata"]["pagination"]["entries"] == 38
    with pytest.raises(ValueError):
        cut.json()
    assert len(whole["issues"]) == 20
