"""The CKAN DataStore client and record handling, over the real Boston January 2022 file.

HTTP is answered in-process by the replay's `CkanApi` through a stand-in
session, so paging, retries and the end-of-resource rules are tested without a
socket; tests/integration/test_ckan_feed.py runs the same over the replay server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import duckdb
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from ingestion.sources.ckan import clean_record, updated_at
from ingestion.sources.ckan.client import CkanClient, CkanError, advice, search_url
from ingestion.sources.http import HttpClient, SourceError
from ingestion.sources.timestamps import parse_instant
from tests.helpers.data import SHARED_DATA
from tooling.replay.api import Response
from tooling.replay.ckan import CkanApi, load_ckan_records

BOSTON_CSV = SHARED_DATA / "boston" / "boston311_2022_jan_100.csv"
RESOURCE = "81a7b022-f8fc-4da5-80e4-b160058ca207"  # Boston's 2022 resource
KEY = "ckan-" + "3d9be1" * 4
NEW_YORK = ZoneInfo("America/New_York")
BASE = "http://ckan.test/boston"

Script = Callable[[CkanApi, str, dict], Response]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_ckan_records(BOSTON_CSV)


class ApiSession:
    """A `requests.Session` stand-in answering from a CkanApi; scripted answers go first
    (None in the script means "answer normally")."""

    def __init__(self, api: CkanApi, script: list[Script | None] | None = None):
        self.api = api
        self.script = list(script or [])
        self.calls: list[tuple[dict, dict]] = []

    def get(self, url: str, params: dict, headers: dict, timeout: float) -> requests.Response:
        self.calls.append((dict(params), dict(headers)))
        path = urlsplit(url).path.removeprefix("/boston")
        step = self.script.pop(0) if self.script else None
        answer = step(self.api, path, params) if step else self.api.respond(path, params, headers)
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body
        response.headers = CaseInsensitiveDict(answer.headers)
        return response


def client_over(api: CkanApi, script=None, page_size=30, id_field="case_enquiry_id", retries=3):
    session = ApiSession(api, script)
    http = HttpClient(
        city_id="boston",
        headers={"Authorization": KEY},
        max_retries=retries,
        backoff_seconds=0.001,
        session=session,
        advice=advice,
    )
    return CkanClient(http, search_url(BASE), id_field, page_size), session


def ids(pages: list[list[dict]]) -> list[str]:
    return [r["case_enquiry_id"] for page in pages for r in page]


def rewrite(change: Callable[[dict], None]) -> Script:
    """A normal answer whose JSON body `change` edits."""

    def step(api: CkanApi, path: str, params: dict) -> Response:
        body = json.loads(api.respond(path, params, {"Authorization": KEY}).body)
        change(body)
        return Response(200, json.dumps(body).encode())

    return step


# -- timestamps and records ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-01-19 11:42:16", datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC)),  # EST, UTC-5
        ("2022-01-19T11:42:16", datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC)),  # a timestamp column
        ("2022-04-25 14:30:31", datetime(2022, 4, 25, 18, 30, 31, tzinfo=UTC)),  # EDT, UTC-4
        ("2022-01-03 06:44:23.4", datetime(2022, 1, 3, 11, 44, 23, 400000, tzinfo=UTC)),
        ("2022-01-19T11:42:16-05:00", datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC)),  # already an instant
        (" 2022-01-19 11:42:16 ", datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC)),
        ("", None),
        (" ", None),  # Boston's blank cell
        (None, None),
        ("Wed Jan 19 11:42:16 EST 2022", None),
        ("20220119", None),
    ],
)
def test_parse_instant_reads_wall_clock_like_staging(value, expected):
    assert parse_instant(value, NEW_YORK) == expected


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        # 01:30 on the fall-back day happens twice: the second (standard-time) one.
        ("2022-11-06 01:30:00", datetime(2022, 11, 6, 6, 30, tzinfo=UTC)),
        # 02:30 on the spring-forward day never happens: read with the offset before the jump.
        ("2022-03-13 02:30:00", datetime(2022, 3, 13, 7, 30, tzinfo=UTC)),
        ("2022-11-06 00:59:59", datetime(2022, 11, 6, 4, 59, 59, tzinfo=UTC)),
        ("2022-03-13 03:00:00", datetime(2022, 3, 13, 7, 0, tzinfo=UTC)),
    ],
)
def test_ambiguous_and_missing_hours_follow_the_staging_rule(wall, expected):
    """The source reads these exactly as staging's local_to_utc (DuckDB) does."""
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        (staged,) = con.execute(f"select timezone('America/New_York', timestamp '{wall}')").fetchone()
    assert parse_instant(wall, NEW_YORK) == expected == staged.astimezone(UTC)


def test_updated_at_is_the_latest_local_time_as_utc(records):
    by_id = {r["case_enquiry_id"]: r for r in records}
    fields = ("closed_dt", "open_dt")
    # Closed: the closing time wins (opened 11:18, closed 11:42:16 EST).
    assert updated_at(by_id["101004130437"], fields, NEW_YORK) == datetime(
        2022, 1, 19, 16, 42, 16, tzinfo=UTC
    )
    # Open, closed_dt "": the opening time (13:47 EST).
    assert by_id["101004143000"]["closed_dt"] == ""
    assert updated_at(by_id["101004143000"], fields, NEW_YORK) == datetime(2022, 1, 21, 18, 47, tzinfo=UTC)
    # Closed after the change to daylight time (14:30:31 EDT).
    assert updated_at(by_id["101004114820"], fields, NEW_YORK) == datetime(
        2022, 4, 25, 18, 30, 31, tzinfo=UTC
    )
    blank = dict(by_id["101004143000"], open_dt=" ", closed_dt="")
    assert updated_at(blank, fields, NEW_YORK) is None
    assert sum(updated_at(r, fields, NEW_YORK) is None for r in records) == 0


def test_clean_record_drops_only_ckan_internals(records):
    served = CkanApi({RESOURCE: records}).records(RESOURCE)[0]
    assert {"_id", "_full_text"} & set(clean_record(served | {"_full_text": "'needl':1"})) == set()
    cleaned = clean_record(served)
    assert list(cleaned) == list(records[0])  # every delivered field, in order
    assert len(cleaned) == 29
    assert cleaned["target_dt"] == "2022-02-04 13:47:30" and cleaned["ontime"] == "OVERDUE"


# -- paging ----------------------------------------------------------------------------------


def test_pages_in_case_id_order_with_the_key_in_a_header_only(records):
    client, session = client_over(CkanApi({RESOURCE: records}))
    pages = list(client.pages(RESOURCE))
    assert [len(p) for p in pages] == [30, 30, 30, 10]
    assert ids(pages) == sorted(r["case_enquiry_id"] for r in records)
    assert ids(pages)[0] == "101004113298" and ids(pages)[-1] == "101004155594"
    params = [p for p, _ in session.calls]
    assert [p["offset"] for p in params] == ["0", "30", "60", "90"]
    assert {(p["sort"], p["limit"], p["resource_id"]) for p in params} == {
        ("case_enquiry_id asc", "30", RESOURCE)
    }
    assert all(h["Authorization"] == KEY for _, h in session.calls)
    assert all(KEY not in json.dumps(p) for p in params)


def test_empty_page_mid_stream_is_fetched_again(records):
    empty = lambda api, path, params: api.empty_page(path, params)  # noqa: E731
    client, session = client_over(CkanApi({RESOURCE: records}), [None, empty])
    pages = list(client.pages(RESOURCE))
    assert sorted(ids(pages)) == sorted(r["case_enquiry_id"] for r in records)
    assert len(ids(pages)) == 100
    assert [p["offset"] for p, _ in session.calls] == ["0", "30", "30", "60", "90"]


def test_a_persistently_empty_page_fails_instead_of_leaving_a_gap(records):
    empty = lambda api, path, params: api.empty_page(path, params)  # noqa: E731
    client, _ = client_over(CkanApi({RESOURCE: records}), [None] + [empty] * 5, retries=2)
    with pytest.raises(SourceError) as err:
        list(client.pages(RESOURCE))
    assert "page 2 of resource" in str(err.value) and "empty page at offset 30 of 100" in str(err.value)


def test_truncated_body_is_fetched_again(records):
    def truncated(api, path, params):
        body = api.respond(path, params, {"Authorization": KEY}).body
        return Response(200, body[: len(body) // 2])

    client, session = client_over(CkanApi({RESOURCE: records}), [None, None, truncated])
    assert len(ids(list(client.pages(RESOURCE)))) == 100
    assert len(session.calls) == 5


def test_rows_inserted_between_pages_are_read_at_the_end(records, caplog):
    newer = [dict(records[0], case_enquiry_id=str(101004155595 + i)) for i in range(2)]

    def insert_then_answer(api, path, params):
        api.apply_changes(newer, [])  # a reload bringing two new cases, _ids reassigned
        return api.respond(path, params, {"Authorization": KEY})

    caplog.set_level(logging.INFO, "civic311.ckan")
    api = CkanApi({RESOURCE: records})
    client, _ = client_over(api, [None, insert_then_answer])
    got = ids(list(client.pages(RESOURCE)))
    assert len(got) == len(set(got)) == 102
    assert got[-2:] == ["101004155595", "101004155596"]
    assert api.reloads == 1
    assert "now holds 102 rows (was 100)" in caplog.text


def test_a_shrinking_total_is_followed_with_a_warning(records, caplog):
    """A reload in progress can shrink the table under the reader; the read follows the
    new count (a later run reads the resource whole again) and says so."""

    def shrunk(body):
        body["result"]["total"] = 50

    caplog.set_level(logging.INFO, "civic311.ckan")
    client, _ = client_over(CkanApi({RESOURCE: records}), [None, rewrite(shrunk)])
    assert len(ids(list(client.pages(RESOURCE)))) == 60
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().endswith("now holds 50 rows (was 100)")


def test_empty_resource_is_confirmed_once():
    api = CkanApi({})
    api.add_resource(RESOURCE, [], fields=["case_enquiry_id", "open_dt"])
    client, session = client_over(api)
    assert list(client.pages(RESOURCE)) == []
    assert len(session.calls) == 2


def test_estimated_total_reads_until_an_empty_page(records):
    """CKAN may estimate `total` for big tables; an estimate must not end the read early."""

    def estimated(body):
        body["result"].update(total=50, total_was_estimated=True)

    client, session = client_over(CkanApi({RESOURCE: records}), [rewrite(estimated)] * 6)
    got = ids(list(client.pages(RESOURCE)))
    assert len(got) == len(set(got)) == 100
    assert [p["offset"] for p, _ in session.calls] == ["0", "30", "60", "90", "100", "100"]


def test_refusal_in_a_200_body_is_a_ckan_error(records):
    def refused(body):
        body.clear()
        body.update(success=False, error={"message": "Access denied", "__type": "Authorization Error"})

    client, _ = client_over(CkanApi({RESOURCE: records}), [rewrite(refused)])
    with pytest.raises(CkanError, match=r"boston: page 1 of resource .* refused \(Access denied\)"):
        list(client.pages(RESOURCE))


def test_sorting_on_a_missing_field_names_the_fix(records):
    client, _ = client_over(CkanApi({RESOURCE: records}), id_field="case_id")
    with pytest.raises(SourceError) as err:
        list(client.pages(RESOURCE))
    message = str(err.value)
    assert "HTTP 409" in message and 'field "case_id" not in the table' in message
    assert "source.id_field" in message and KEY not in message


def test_unknown_resource_names_the_fix(records):
    client, _ = client_over(CkanApi({RESOURCE: records}))
    with pytest.raises(SourceError) as err:
        list(client.pages("0000-missing"))
    assert "HTTP 404" in str(err.value) and "resources_by_year" in str(err.value)
