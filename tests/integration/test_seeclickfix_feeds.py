"""Detroit and Jersey City through the SeeClickFix replay, the dlt source and their
staging models: every issue lands exactly once, whatever the server does."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from ingestion.pipeline import city_pipeline
from ingestion.registry import City, load_registry
from ingestion.sources import source_for
from ingestion.sources.http import SourceError
from orchestration.cli import main
from orchestration.quarantine import quarantine_counts
from tests.helpers.data import SHARED_DATA
from tests.helpers.dbt import dbt_build
from tests.helpers.warehouse import query
from tooling.replay.seeclickfix import SeeClickFixApi, load_scf_issues
from tooling.replay.server import Fault, FaultPlan, RateLimit, ReplayServer

pytestmark = pytest.mark.integration

SCF = SHARED_DATA / "seeclickfix"
NATIONWIDE = [
    SCF / "scf_v2_issues_nationwide_2024-08-31_400.json",
    SCF / "scf_v2_issues_nationwide_2024-08-30_100.json",
]
# The recorded issues were updated on 2024-08-30/31 (Detroit) and 2026-02-08/10 (Jersey City).
DETROIT_WINDOW = (datetime(2024, 8, 30, tzinfo=UTC), datetime(2024, 9, 1, tzinfo=UTC))
JERSEY_CITY_WINDOW = (datetime(2026, 2, 8, tzinfo=UTC), datetime(2026, 2, 11, tzinfo=UTC))
STAGING = ("stg_detroit__service_requests", "stg_jersey_city__service_requests")
PRIVATE_COLUMNS = {"reporter", "description", "media"}


@pytest.fixture(scope="module")
def nationwide() -> list[dict]:
    return [issue for path in NATIONWIDE for issue in load_scf_issues(path)]


@pytest.fixture(scope="module")
def detroit(nationwide) -> list[dict]:
    return [i for i in nationwide if "Detroit" in (i.get("address") or "")]


@pytest.fixture(scope="module")
def jersey_city() -> list[dict]:
    return load_scf_issues(SCF / "scf_v2_issues_jerseycity_page1_envelope.json")


def city(city_id: str, **source) -> City:
    """The registry city, unthrottled (the replay has no 20-a-minute limit) unless told."""
    entry = load_registry().city(city_id)
    settings = {"requests_per_minute": None} | source
    return entry.model_copy(update={"source": entry.source.model_copy(update=settings)})


def serve(city: City, issues: list[dict], **server) -> ReplayServer:
    replay = ReplayServer(**server)
    replay.mount(f"/{city.id}", SeeClickFixApi({city.source.place_url: issues}))
    return replay


def load(city: City, server: ReplayServer, warehouse, window) -> None:
    source = source_for(city, *window, base_url=city.base_url(server.url), backoff_seconds=0.01)
    city_pipeline(city, warehouse).run(source).raise_on_failed_jobs()


def copies_by_id(warehouse, city_id: str) -> dict[str, int]:
    return dict(
        query(warehouse, f"select source_id, count(*) from raw_{city_id}.service_requests group by 1")
    )


def assert_each_issue_once(warehouse, city_id: str, issues: list[dict]) -> None:
    loaded = copies_by_id(warehouse, city_id)
    assert set(loaded) == {str(i["id"]) for i in issues}  # no gaps
    assert set(loaded.values()) == {1}  # no duplicates


def test_detroit_loads_every_issue_once_with_its_values(detroit, tmp_path):
    detroit_city = city("detroit")
    with serve(detroit_city, detroit) as server:
        load(detroit_city, server, tmp_path / "w.duckdb", DETROIT_WINDOW)
        asked = server.requests
    assert len(detroit) == 38
    assert_each_issue_once(tmp_path / "w.duckdb", "detroit", detroit)
    row = query(
        tmp_path / "w.duckdb",
        "select status, created_at, source_updated_at, json_extract_string(request_type, '$.title'), "
        "address from raw_detroit.service_requests where source_id = '17411547'",
    )
    assert row == [
        (
            "Acknowledged",
            "2024-08-31T09:25:45-04:00",
            datetime(2024, 8, 31, 14, 7, 22, tzinfo=UTC),
            "Investigate Blocked Basin Street",
            "14876 Kentucy St Detroit 48238",
        )
    ]
    assert {r.query["status"] for r in asked} == {"open,acknowledged,closed,archived"}
    assert not any(r.had_credential for r in asked)


def test_jersey_city_reduced_field_set_derives_the_change_stamp(jersey_city, tmp_path):
    jersey = city("jersey_city", per_page=7)
    with serve(jersey, jersey_city) as server:
        load(jersey, server, tmp_path / "w.duckdb", JERSEY_CITY_WINDOW)
    assert_each_issue_once(tmp_path / "w.duckdb", "jersey_city", jersey_city)
    stamps = dict(
        query(
            tmp_path / "w.duckdb",
            "select source_id, source_updated_at from raw_jersey_city.service_requests "
            "where source_id in ('20980365', '20968889', '20980220')",
        )
    )
    assert stamps == {
        "20980365": datetime(2026, 2, 10, 16, 3, 43, tzinfo=UTC),  # closed_at
        "20968889": datetime(2026, 2, 9, 16, 25, 1, tzinfo=UTC),  # acknowledged_at
        "20980220": datetime(2026, 2, 10, 12, 45, 35, tzinfo=UTC),  # created_at, still open
    }
    columns = {
        c
        for (c,) in query(
            tmp_path / "w.duckdb", "select column_name from (describe raw_jersey_city.service_requests)"
        )
    }
    assert "updated_at" not in columns and "request_type" not in columns


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [(None, 20), (("open", "acknowledged", "closed"), 12)],
    ids=["all", "no-archived"],
)
def test_archived_issues_arrive_only_when_the_registry_asks(jersey_city, tmp_path, statuses, expected):
    # The recordings hold no archived issue; SeeClickFix archives closed ones after a while.
    archived = [
        dict(i, status="Archived") if i["status"] == "Closed" and i["closed_at"] < "2026-02-10" else i
        for i in jersey_city
    ]
    jersey = city("jersey_city", **({"statuses": statuses} if statuses else {}))
    with serve(jersey, archived) as server:
        load(jersey, server, tmp_path / "w.duckdb", JERSEY_CITY_WINDOW)
    counts = dict(
        query(
            tmp_path / "w.duckdb", "select status, count(*) from raw_jersey_city.service_requests group by 1"
        )
    )
    assert sum(counts.values()) == expected
    assert counts.get("Archived", 0) == (8 if statuses is None else 0)


def test_per_page_above_the_cap_is_clamped_and_paging_still_completes(nationwide, tmp_path):
    # The registry forbids per_page > 100; a copy that skips validation asks anyway.
    everywhere = city("detroit", per_page=250, place_url="nationwide")
    with serve(everywhere, nationwide) as server:
        load(everywhere, server, tmp_path / "w.duckdb", DETROIT_WINDOW)
        asked = server.requests
    assert len({i["id"] for i in nationwide}) == 491
    # Each issue once: Detroit's in service_requests, the others' in quarantine.
    landed = query(
        tmp_path / "w.duckdb",
        "select source_id from raw_detroit.service_requests union all "
        "select json_extract_string(payload, '$.id') from raw_detroit.rejected_service_requests",
    )
    assert sorted(i for (i,) in landed) == sorted({str(i["id"]) for i in nationwide})
    assert {r.query["per_page"] for r in asked} == {"250"}
    # Served 100 at a time: 491 issues, plus the one each seek reads again, in 5 pages.
    assert len(asked) == 5


def test_issues_of_other_organisations_are_quarantined_never_filed_under_the_city(
    nationwide, tmp_path, caplog, capsys, monkeypatch
):
    # Every issue of the nationwide pages served as Detroit's place: 184 organisations.
    # Expected figures from the JSON alone, keyed like the loader (one issue per id;
    # an id repeated across pages names the same organisation both times).
    detroit_names = {
        "City of Detroit",
        "City of Detroit - Buildings, Safety, Engineering & Environmental Dept.",
        "City of Detroit - General Services Division",
        "Detroit Water & Sewerage Dept.",
    }
    organisation_by_id = {str(i["id"]): (i["request_type"] or {}).get("organization") for i in nationwide}
    kept = {key: name for key, name in organisation_by_id.items() if name in detroit_names}
    foreign = set(organisation_by_id) - set(kept)
    assert (len(nationwide), len(organisation_by_id), len(kept), len(foreign)) == (500, 491, 44, 447)
    assert len(set(organisation_by_id.values()) - {None}) == 184

    caplog.set_level(logging.INFO, logger="civic311.seeclickfix")
    warehouse = tmp_path / "w.duckdb"
    detroit_city = city("detroit")
    with serve(detroit_city, nationwide) as server:
        for _ in range(2):  # a rerun of the window files and quarantines nothing twice
            load(detroit_city, server, warehouse, DETROIT_WINDOW)

    filed = query(
        warehouse,
        "select source_id, json_extract_string(request_type, '$.organization') "
        "from raw_detroit.service_requests",
    )
    assert sorted(filed) == sorted(kept.items())
    assert Counter(kept.values()) == {
        "City of Detroit": 31,
        "City of Detroit - Buildings, Safety, Engineering & Environmental Dept.": 8,
        "City of Detroit - General Services Division": 3,
        "Detroit Water & Sewerage Dept.": 2,
    }
    quarantined = query(
        warehouse,
        "select rule, json_extract_string(payload, '$.id') from raw_detroit.rejected_service_requests",
    )
    assert {rule for rule, _ in quarantined} == {"foreign_organization"}
    assert sorted(key for _, key in quarantined) == sorted(foreign)
    assert len(filed) + len(quarantined) == len(organisation_by_id)
    # The logs count what was quarantined, without a resident's name, text or address.
    counted = [int(m.group(1)) for m in re.finditer(r"(\d+) issues of other organisations", caplog.text)]
    assert sum(counted) == 2 * len(foreign)
    private = {i["address"] for i in nationwide} | {i["reporter"]["name"] for i in nationwide}
    private |= {i["description"] for i in nationwide if len(i["description"] or "") >= 8}
    assert not [text for text in private if len(text or "") >= 4 and text in caplog.text]

    # The rule shows by name in quarantine.service_requests and in `civic311 quarantine`.
    dbt_build(warehouse, "+path:models/quarantine", tmp_path)
    counts = [(c.city_id, c.stage, c.rule, c.rows) for c in quarantine_counts(warehouse)]
    assert counts == [("detroit", "ingestion", "foreign_organization", 447)]
    monkeypatch.setenv("CIVIC311_WAREHOUSE", str(warehouse))
    assert main(["quarantine", "--city", "detroit"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"detroit +ingestion +foreign_organization +447", printed)


CHAOS = {
    "429-retry-after": [Fault(), Fault(status=429, retry_after=0.01)],
    "429-no-retry-after": [Fault(status=429), Fault(), Fault(status=429)],
    "5xx": [Fault(), Fault(status=500), Fault(status=502), Fault(), Fault(status=503)],
    "timeout": [Fault(), Fault(delay=0.6)],
    "truncated": [Fault(), Fault(), Fault(truncate=True)],
    "empty-mid-stream": [Fault(), Fault(), Fault(empty=True), Fault(), Fault(empty=True)],
}


@pytest.mark.parametrize("faults", CHAOS.values(), ids=CHAOS.keys())
def test_faults_and_changes_between_pages_neither_repeat_nor_lose_an_issue(detroit, tmp_path, faults):
    # Three real issues arrive mid-read (stamped 15:00:41 UTC, a second after the newest
    # issue); the oldest, read on page 1, is closed after page 2 (stamped 15:00:42).
    by_stamp = sorted(detroit, key=lambda i: i["updated_at"])
    first, arriving = by_stamp[0], by_stamp[1:4]
    closing = {"id": first["id"], "status": "Closed", "closed_at": "2024-08-31T11:30:00-04:00"}
    plan = FaultPlan(queue=list(faults), insert_after_page={1: arriving}, update_after_page={2: [closing]})
    detroit_city = city("detroit", per_page=5, timeout_seconds=0.3)
    held = [i for i in detroit if i not in arriving]
    with serve(detroit_city, held, faults=plan) as server:
        load(detroit_city, server, tmp_path / "w.duckdb", DETROIT_WINDOW)
        statuses = [r.status for r in server.requests]
    assert_each_issue_once(tmp_path / "w.duckdb", "detroit", detroit)
    assert query(
        tmp_path / "w.duckdb",
        "select status, closed_at, source_updated_at from raw_detroit.service_requests where source_id = ?",
        [str(first["id"])],
    ) == [("Closed", "2024-08-31T11:30:00-04:00", datetime(2024, 8, 31, 15, 0, 42, tzinfo=UTC))]
    assert statuses.count(200) >= 9
    assert [s for s in statuses if s != 200] == [f.status for f in faults if f.status]


def test_rate_limited_server_answers_429_and_the_load_waits(detroit, tmp_path):
    detroit_city = city("detroit", per_page=5)
    with serve(detroit_city, detroit, rate_limit=RateLimit(requests=3, per_seconds=0.2)) as server:
        load(detroit_city, server, tmp_path / "w.duckdb", DETROIT_WINDOW)
        statuses = [r.status for r in server.requests]
    assert_each_issue_once(tmp_path / "w.duckdb", "detroit", detroit)
    assert 429 in statuses and statuses[-1] == 200


def test_window_without_issues_ends_after_one_confirmation(detroit, tmp_path):
    detroit_city = city("detroit")
    with serve(detroit_city, detroit) as server:
        load(
            detroit_city,
            server,
            tmp_path / "w.duckdb",
            (datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 2, 1, tzinfo=UTC)),
        )
        asked = [r.query for r in server.requests]
    assert len(asked) == 2 and asked[0] == asked[1]


def test_rerunning_a_window_is_idempotent(detroit, jersey_city, tmp_path):
    fingerprint = (
        "select count(*), md5(string_agg(concat_ws('|', source_id, source_updated_at, status, "
        "closed_at, address, lat, lng), ',' order by source_id)) from raw_{}.service_requests"
    )
    results = []
    for _ in range(2):
        for city_id, issues, window in (
            ("detroit", detroit, DETROIT_WINDOW),
            ("jersey_city", jersey_city, JERSEY_CITY_WINDOW),
        ):
            entry = city(city_id, per_page=9)
            with serve(entry, issues) as server:
                load(entry, server, tmp_path / "w.duckdb", window)
        results.append(
            [query(tmp_path / "w.duckdb", fingerprint.format(c))[0] for c in ("detroit", "jersey_city")]
        )
    assert results[0] == results[1]
    assert [count for count, _ in results[0]] == [38, 20]


def test_new_upstream_fields_become_columns_and_type_drift_a_variant(detroit, tmp_path):
    # Chapel Hill's details=true issues (2017-2018) carry questions, votes, assignee, ...
    # They stand in for Detroit's here, so its organisation counts as Detroit's.
    organizations = (*load_registry().city("detroit").source.organizations, "Town of Chapel Hill")
    detroit_city = city("detroit", per_page=50, organizations=organizations)
    with serve(detroit_city, detroit) as server:
        load(detroit_city, server, tmp_path / "w.duckdb", DETROIT_WINDOW)
    chapel_hill = load_scf_issues(SCF / "scf_v2_issues_int_chapelhill_details_rt11386.json")
    # ... and a later version of a Detroit issue sends its rating as text.
    drift = FaultPlan(update_after_page={1: [{"id": 17411547, "rating": "3"}]})
    with serve(detroit_city, detroit + chapel_hill, faults=drift) as server:
        load(
            detroit_city, server, tmp_path / "w.duckdb", (datetime(2017, 1, 1, tzinfo=UTC), DETROIT_WINDOW[1])
        )
    warehouse = tmp_path / "w.duckdb"
    columns = {
        c for (c,) in query(warehouse, "select column_name from (describe raw_detroit.service_requests)")
    }
    assert {"questions", "votes", "vote_count", "comments_count", "assignee", "rating__v_text"} <= columns
    assert len(copies_by_id(warehouse, "detroit")) == 238
    assert set(copies_by_id(warehouse, "detroit").values()) == {1}
    known = next(i for i in chapel_hill if i["id"] == 387135)
    row = query(
        warehouse,
        "select json_extract_string(questions, '$[0].question'), vote_count, comments_count "
        "from raw_detroit.service_requests where source_id = '387135'",
    )
    assert row == [(known["questions"][0]["question"], known["vote_count"], known["comments_count"])]
    assert row[0][0] == "Describe items to be collected"
    assert query(
        warehouse,
        "select rating, rating__v_text from raw_detroit.service_requests where source_id = '17411547'",
    ) == [(None, "3")]


def test_issue_without_id_is_quarantined(detroit, tmp_path):
    anonymous = {k: v for k, v in detroit[0].items() if k != "id"}
    detroit_city = city("detroit")
    with serve(detroit_city, [*detroit[1:], anonymous]) as server:
        for _ in range(2):  # a rerun does not quarantine it twice
            load(detroit_city, server, tmp_path / "w.duckdb", DETROIT_WINDOW)
    assert len(copies_by_id(tmp_path / "w.duckdb", "detroit")) == 37
    (payload,) = query(tmp_path / "w.duckdb", "select payload from raw_detroit.rejected_service_requests")
    assert json.loads(payload[0])["address"] == detroit[0]["address"]


def test_unknown_place_fails_with_advice(detroit, tmp_path):
    wrong = city("detroit", place_url="detroit-mi")
    with ReplayServer() as server, pytest.raises(Exception) as err:
        server.mount("/detroit", SeeClickFixApi({"detroit": detroit}))
        load(wrong, server, tmp_path / "w.duckdb", DETROIT_WINDOW)
    cause = err.value
    while cause.__cause__ or cause.__context__:
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, SourceError)
    assert "HTTP 404" in str(cause) and "source.place_url" in str(cause) and "detroit-mi" in str(cause)


def test_no_reporter_name_or_description_reaches_the_logs(detroit, jersey_city, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    for city_id, issues, window in (
        ("detroit", detroit, DETROIT_WINDOW),
        ("jersey_city", jersey_city, JERSEY_CITY_WINDOW),
    ):
        entry = city(city_id, per_page=6)
        faults = FaultPlan(
            queue=[Fault(status=429), Fault(truncate=True), Fault(status=500), Fault(empty=True)]
        )
        with serve(entry, issues, faults=faults) as server:
            load(entry, server, tmp_path / "w.duckdb", window)
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "page 2 of issues in detroit" in caplog.text  # the source did log its progress
    names = {i["reporter"]["name"] for i in detroit}
    # Two-letter initials ("BH") could match anywhere; every longer name or text must not.
    descriptions = {i["description"] for i in detroit + jersey_city if len(i["description"] or "") >= 8}
    private = {n for n in names if len(n) >= 4} | descriptions
    assert "Andrea Nelson" in names and len(private) > 40
    assert not [text for text in private if text in logged]


def test_staging_builds_without_private_columns(detroit, jersey_city, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    for city_id, issues, window in (
        ("detroit", detroit, DETROIT_WINDOW),
        ("jersey_city", jersey_city, JERSEY_CITY_WINDOW),
    ):
        entry = city(city_id)
        with serve(entry, issues) as server:
            load(entry, server, warehouse, window)
    dbt_build(warehouse, " ".join(STAGING), tmp_path)
    statuses = query(
        warehouse,
        "select city_id, status, count(*), count(zip) from ("
        "select * from staging.stg_detroit__service_requests union all by name "
        "select * from staging.stg_jersey_city__service_requests) group by all order by all",
    )
    assert statuses == [
        ("detroit", "in_progress", 36, 36),
        ("detroit", "open", 2, 2),
        ("jersey_city", "closed", 15, 15),
        ("jersey_city", "in_progress", 1, 1),
        ("jersey_city", "open", 4, 4),
    ]
    detroit_row = query(
        warehouse,
        "select requested_at, requested_at_local, updated_at, service_name, department, zip, "
        "json_extract_string(extras, '$.acknowledged_at'), json_extract(extras, '$.request_type_id')::int "
        "from staging.stg_detroit__service_requests where request_id = '17411547'",
    )
    assert detroit_row == [
        (
            datetime(2024, 8, 31, 13, 25, 45, tzinfo=UTC),
            datetime(2024, 8, 31, 9, 25, 45),
            datetime(2024, 8, 31, 14, 7, 22, tzinfo=UTC),
            "Investigate Blocked Basin Street",
            "Detroit Water & Sewerage Dept.",
            "48238",
            "2024-08-31T14:07:21Z",
            25272,
        )
    ]
    jersey_row = query(
        warehouse,
        "select service_name, department, zip, closed_at, closed_at_local, status "
        "from staging.stg_jersey_city__service_requests where request_id = '20980365'",
    )
    # no request type on the reduced page: the summary names the service
    assert jersey_row == [
        (
            "Snow/Ice Removal on Sidewalk",
            None,
            "07304",
            datetime(2026, 2, 10, 16, 3, 43, tzinfo=UTC),
            datetime(2026, 2, 10, 11, 3, 43),
            "closed",
        )
    ]
    canonical = [
        "city_id", "request_id", "requested_at", "requested_at_local", "updated_at", "closed_at",
        "closed_at_local", "due_at", "status", "source_status", "status_notes", "channel", "service_name",
        "service_subtype", "service_code", "department", "address", "zip", "latitude", "longitude",
        "is_duplicate", "parent_request_id", "extras", "loaded_at",
    ]  # fmt: skip
    for model in STAGING:
        columns = [c for (c,) in query(warehouse, f"select column_name from (describe staging.{model})")]
        assert columns == canonical
        assert not PRIVATE_COLUMNS & set(columns)
        extras = query(warehouse, f"select string_agg(extras, ' ') from staging.{model}")[0][0]
        assert "reporter" not in extras and "Andrea Nelson" not in extras
