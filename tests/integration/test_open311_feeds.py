"""The Open311 source end to end: the real recorded GeoReport files served by the
replay, read by the dlt source into a temporary DuckDB, then the staging models."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion.pipeline import city_pipeline
from ingestion.registry import load_registry
from ingestion.sources import source_for
from ingestion.sources.timestamps import parse_instant
from tests.helpers.data import SHARED_DATA
from tests.helpers.dbt import dbt_build
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import query
from tooling.replay import Fault, FaultPlan, ReplayServer
from tooling.replay.open311 import Open311Api, load_open311_records

pytestmark = pytest.mark.integration

OPEN311 = SHARED_DATA / "open311"
BOSTON = SHARED_DATA / "boston" / "open311"
BOSTON_FIRST_PULL = [
    "bos_open311_dangerous__dangerous.json",
    "bos_open311_illegal-parking__responses--0-1000--aa.json",
    "bos_open311_other__other--ai.json",
    "bos_open311_sidewalk-not-shovelled__responses--sidewalk-not-shovelled--aa.json",
]
# Re-pulls of "Other" requests in April 2020, the later one last.
BOSTON_REPULL = [
    "bos_open311_updated-other__25-apr-other.json",
    "bos_open311_updated-other__25-apr-other-late.json",
]
# Open in the first pull (or the first re-pull), closed in a later one.
CLOSED_BY_REPULL = {"101002727397", "101002717523", "101003262491"}
KEY = "key-" + "b07e55" * 4
STAGING = [
    "stg_chicago_open311__service_requests",
    "stg_bloomington__service_requests",
    "stg_toronto__service_requests",
    "stg_boston_open311__service_requests",
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def registry_city(city_id: str, **source):
    """The registry's city, without its client-side pacing (the replay sets no rate limit)."""
    city = load_registry().city(city_id)
    source = {"requests_per_minute": None, **source}
    return city.model_copy(update={"source": city.source.model_copy(update=source)})


def recorded(*names: str, folder: Path = OPEN311) -> list[dict]:
    return [r for name in names for r in load_open311_records(folder / name)]


def load(city, server: ReplayServer, warehouse: Path, start: datetime, end: datetime) -> None:
    source = source_for(city, start, end, base_url=city.base_url(server.url), backoff_seconds=0.01)
    city_pipeline(city, warehouse).run(source).raise_on_failed_jobs()


def table_state(warehouse: Path, schema: str, table: str = "service_requests") -> list[tuple]:
    """Every row and value, without what changes from load to load."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            f"select * exclude (_loaded_at, _dlt_load_id) from {schema}.{table} order by source_id"
        ).fetchall()


def spans(server: ReplayServer, after: str = "start_date", before: str = "end_date") -> list[tuple]:
    return sorted(
        {
            (parse_instant(r.query[after], UTC), parse_instant(r.query[before], UTC))
            for r in server.requests
            if after in r.query
        }
    )


# -- Chicago ------------------------------------------------------------------------------


def test_chicago_extended_json_keeps_notes_and_reruns_identically(tmp_path):
    chicago = registry_city("chicago_open311", page_size=20)
    warehouse = tmp_path / "w.duckdb"
    api = Open311Api(recorded("chicago_2014_requests_extended.json"), window_field="updated")
    with ReplayServer() as server:
        server.mount("/chicago_open311", api)
        load(chicago, server, warehouse, utc(2015, 9, 1), utc(2015, 11, 1))
        first = table_state(warehouse, "raw_chicago_open311")
        load(chicago, server, warehouse, utc(2015, 9, 1), utc(2015, 11, 1))
        requests_log = server.requests

    assert query(
        warehouse, "select count(*), count(distinct source_id) from raw_chicago_open311.service_requests"
    ) == [(50, 50)]
    assert table_state(warehouse, "raw_chicago_open311") == first  # the rerun changed nothing
    data = [r for r in requests_log if r.path.endswith("/requests.json")]
    assert data and all(r.query["extensions"] == "true" and "updated_after" in r.query for r in data)

    ((status, name, agency, notes, extended, attributes, updated_at),) = query(
        warehouse,
        "select status, service_name, agency_responsible, notes, extended_attributes, attributes, "
        "source_updated_at from raw_chicago_open311.service_requests where source_id = '14-00684314'",
    )
    assert (status, name, agency) == ("closed", "Pothole in Street", "Division of In-House Construction CDOT")
    notes = json.loads(notes)  # nested values are kept as JSON text
    assert [n["type"] for n in notes] == [
        "opened",
        "activity",
        "follow_on_created",
        "follow_on_created",
        "follow_on_closed",
        "follow_on_closed",
        "closed",
    ]
    assert notes[2]["extended_attributes"]["service_request_id"] == "14-01225670"
    assert json.loads(extended) == {"channel": "phone", "police": "6", "zip": "60620", "ward": "21"}
    assert json.loads(attributes) == {"WHEREIST": "TRAFFIC"}
    assert updated_at == utc(2015, 10, 10, 15, 15, 40)  # 10:15:40-05:00


def test_chicago_basic_json(tmp_path):
    chicago = registry_city("chicago_open311")
    warehouse = tmp_path / "w.duckdb"
    with ReplayServer() as server:
        server.mount(
            "/chicago_open311", Open311Api(recorded("chicago_2014_requests.json"), window_field="updated")
        )
        load(chicago, server, warehouse, utc(2014, 7, 12), utc(2014, 7, 13))
    rows = query(
        warehouse,
        "select source_id, status, status_notes, service_name, lat, source_updated_at "
        "from raw_chicago_open311.service_requests order by source_id",
    )
    assert rows == [
        (
            "14-01100627",
            "open",
            "Locked",
            "Building Violation",
            41.759712056258536,
            utc(2014, 7, 12, 16, 8, 20),
        ),
        ("14-01100669", "open", None, "Alley Light Out", 41.858724777757864, utc(2014, 7, 12, 16, 8, 21)),
    ]


# -- Bloomington ------------------------------------------------------------------------------


def test_bloomington_requests_services_new_fields_and_type_drift(tmp_path):
    bloomington = registry_city("bloomington")
    warehouse = tmp_path / "w.duckdb"
    api = Open311Api(
        recorded("bloomington_2012_requests.json"),
        services=recorded("bloomington_2012_services.json"),
        jurisdiction_id="bloomington.in.gov",
    )
    with ReplayServer() as server:
        server.mount("/bloomington", api)
        load(bloomington, server, warehouse, utc(2012, 5, 22), utc(2012, 5, 24))
        assert all(r.query.get("jurisdiction_id") == "bloomington.in.gov" for r in server.requests)
        counts = query(
            warehouse,
            "select count(*), count(distinct source_id), count(lat), count(*) filter (where lat = 0) "
            "from raw_bloomington.service_requests",
        )
        # 21 requests; 2 without a location (null) and 6 with 0/0.
        assert counts == [(21, 21, 19, 6)]
        services = query(
            warehouse,
            "select count(*), count(distinct source_id), max(service_name) filter (where source_id = "
            "'4e090d24992b941e78000027') from raw_bloomington.services",
        )
        assert services == [(46, 46, "Graffiti")]

        # Upstream adds a field and starts sending lat as text: a new column and a variant.
        api.apply_changes(
            [],
            [
                {
                    "service_request_id": "4fbd3beeb1fe2c9f5c000001",
                    "lat": "39.146551871103",
                    "service_notice": "Crew scheduled",
                    "updated_datetime": "2012-05-23T16:00:00-04:00",
                }
            ],
        )
        load(bloomington, server, warehouse, utc(2012, 5, 22), utc(2012, 5, 24))
    drift = query(
        warehouse,
        "select lat, lat__v_text, service_notice, status from raw_bloomington.service_requests "
        "where source_id = '4fbd3beeb1fe2c9f5c000001'",
    )
    assert drift == [(None, "39.146551871103", "Crew scheduled", "open")]
    assert query(warehouse, "select count(*) from raw_bloomington.service_requests") == [(21,)]


# -- Toronto (XML) ------------------------------------------------------------------------------


def test_toronto_xml_requests_and_giessen_xml_services(tmp_path):
    toronto = registry_city("toronto")
    warehouse = tmp_path / "w.duckdb"
    api = Open311Api(
        recorded("toronto_2018_requests.xml"),
        services=recorded("giessen_services.xml"),
        jurisdiction_id="toronto.ca",
        supports_paging=False,
        format_default="xml",
    )
    with ReplayServer() as server:
        server.mount("/toronto", api)
        load(toronto, server, warehouse, utc(2018, 7, 30), utc(2018, 7, 31))
        paths = {r.path for r in server.requests}
        assert all("page" not in r.query for r in server.requests)
    assert paths == {"/toronto/requests.xml", "/toronto/services.xml"}
    rows = query(
        warehouse,
        "select source_id, source_updated_at, updated_datetime, expected_datetime, address_id, lat, zipcode "
        "from raw_toronto.service_requests order by source_id",
    )
    # <updated_datetime/> is empty: requested_datetime (00:01 EDT) stands in as the change stamp.
    assert rows == [
        (
            "101005420892",
            utc(2018, 7, 30, 4, 1),
            None,
            "2018-08-03T00:01:00-04:00",
            "13459430",
            "43.691104288",
            None,
        ),
        (
            "101005420894",
            utc(2018, 7, 30, 4, 1),
            None,
            "2018-08-03T00:01:00-04:00",
            "13458509",
            "43.695823056",
            None,
        ),
    ]
    services = query(warehouse, "select source_id, service_name from raw_toronto.services order by source_id")
    assert len(services) == 8 and services[0] == ("010", "Ampel defekt")


def test_an_open_ended_run_reads_past_now_and_the_next_resumes_from_the_cursor(tmp_path):
    toronto = registry_city("toronto")
    warehouse = tmp_path / "w.duckdb"
    api = Open311Api(recorded("toronto_2018_requests.xml"), supports_paging=False, format_default="xml")
    with ReplayServer() as server:
        server.mount("/toronto", api)
        pipeline = city_pipeline(toronto, warehouse)
        base_url = toronto.base_url(server.url)
        pipeline.run(source_for(toronto, base_url=base_url, backoff_seconds=0.001)).raise_on_failed_jobs()
        first_run = spans(server)
        seen = len(server.requests)
        pipeline.run(source_for(toronto, base_url=base_url, backoff_seconds=0.001)).raise_on_failed_jobs()
        second_run = sorted(
            {
                (r.query["start_date"], r.query["end_date"])
                for r in server.requests[seen:]
                if "start_date" in r.query
            }
        )
    assert query(warehouse, "select count(*) from raw_toronto.service_requests") == [(2,)]
    # From civic311's default start, in <= 90-day steps, to a day past the run.
    assert first_run[0][0] == utc(2000, 1, 1) and first_run[-1][1] > datetime.now(UTC)
    assert all(b - a <= timedelta(days=90) for a, b in first_run)
    # The next run starts at the newest change seen (00:01 EDT) minus the 30-day lookback.
    assert second_run[0][0] == "2018-06-30T04:01:00Z"


# -- Boston ------------------------------------------------------------------------------------


def boston_api() -> Open311Api:
    return Open311Api(recorded(*BOSTON_FIRST_PULL, folder=BOSTON), jurisdiction_id="cityofboston.gov")


def repull(api: Open311Api) -> None:
    for name in BOSTON_REPULL:
        api.apply_changes([], recorded(name, folder=BOSTON))


def boston_counts(warehouse: Path) -> tuple:
    (loaded,) = query(
        warehouse, "select count(*), count(distinct source_id) from raw_boston_open311.service_requests"
    )
    (quarantined,) = query(
        warehouse,
        "select count(*), min(rule) from raw_boston_open311.rejected_service_requests",
    )
    return loaded, quarantined


def test_boston_pages_duplicates_quarantine_and_repull(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    boston = registry_city("boston_open311")
    warehouse = tmp_path / "w.duckdb"
    api = boston_api()
    with ReplayServer() as server:
        server.mount("/boston_open311", api)
        load(boston, server, warehouse, utc(2016, 1, 1), utc(2020, 5, 1))
        # 544 + 949 + 1000 + 949 distinct ids; each illegal-parking and sidewalk page repeats
        # 50 requests (overlapping pages) and holds one "submitted" row without an id.
        assert boston_counts(warehouse) == ((3442, 3442), (2, "missing_service_request_id"))
        assert "2 requests without service_request_id quarantined" in caplog.text
        assert "submitted" not in caplog.text  # a count, never the content
        before = dict(
            query(
                warehouse,
                "select source_id, status from raw_boston_open311.service_requests where source_id in (?, ?)",
                ["101002727397", "101002717523"],
            )
        )
        # The 4-year window was read in <= 90-day queries covering it without gaps.
        windows = spans(server)
        assert windows[0][0] == utc(2015, 12, 2) and windows[-1][1] == utc(2020, 5, 1)
        assert all(b - a <= timedelta(days=90) for a, b in windows)
        assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
        assert all(r.status == 200 for r in server.requests)

        repull(api)
        load(boston, server, warehouse, utc(2018, 9, 1), utc(2020, 5, 1))
        after_repull = table_state(warehouse, "raw_boston_open311")
        load(boston, server, warehouse, utc(2018, 9, 1), utc(2020, 5, 1))
        rerun = table_state(warehouse, "raw_boston_open311")

    assert before == {"101002727397": "open", "101002717523": "open"}
    assert boston_counts(warehouse) == ((4112, 4112), (4, "missing_service_request_id"))
    closed = query(
        warehouse,
        "select source_id, status, source_updated_at from raw_boston_open311.service_requests "
        "where source_id in (?, ?, ?) order by source_id",
        sorted(CLOSED_BY_REPULL),
    )
    assert closed == [
        ("101002717523", "closed", utc(2020, 4, 22, 15, 35, 2)),
        ("101002727397", "closed", utc(2020, 4, 22, 17, 32, 6)),
        ("101003262491", "closed", utc(2020, 4, 26, 0, 56, 45)),
    ]
    assert rerun == after_repull  # rerunning the window changes nothing


def test_the_key_travels_in_a_header_and_never_in_logs(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv("CIVIC311_BOSTON_OPEN311_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    boston = registry_city("boston_open311")
    warehouse = tmp_path / "w.duckdb"
    api = Open311Api(
        recorded(BOSTON_FIRST_PULL[0], folder=BOSTON), jurisdiction_id="cityofboston.gov", api_key=KEY
    )
    with ReplayServer(faults=FaultPlan(queue=[Fault(status=429), Fault(status=500)])) as server:
        server.mount("/boston_open311", api)
        load(boston, server, warehouse, utc(2019, 10, 1), utc(2020, 3, 1))
        logged = server.requests
    assert query(warehouse, "select count(*) from raw_boston_open311.service_requests") == [(544,)]
    assert logged and all(r.had_credential and "X-Api-Key" in r.header_names for r in logged)
    out, err = capfd.readouterr()
    assert "requests.json" in caplog.text  # the source did log its progress
    assert KEY not in caplog.text + out + err + repr(logged)
    assert all(KEY not in str(r.query) for r in logged)


# -- chaos --------------------------------------------------------------------------------------


CHAOS = [
    Fault(status=429, retry_after=0.01),
    Fault(status=429),
    Fault(),
    Fault(status=500),
    Fault(status=503),
    Fault(),
    Fault(delay=0.6),  # longer than the client's 0.3 s timeout
    Fault(truncate=True),
    Fault(),
    Fault(empty=True),
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_faults_and_changes_between_pages_lose_and_repeat_nothing(tmp_path, fmt):
    chicago = registry_city("chicago_open311", page_size=7, format=fmt, timeout_seconds=0.3)
    warehouse = tmp_path / "w.duckdb"
    records = recorded("chicago_2014_requests_extended.json")
    # New requests arrive (stamped after every recorded one) and an already-read one changes.
    inserted = [
        dict(
            records[n],
            service_request_id=f"15-0990000{n}",
            requested_datetime=f"2015-10-20T09:0{n}:00-05:00",
            updated_datetime=f"2015-10-20T09:0{n}:00-05:00",
            notes=[],
        )
        for n in (1, 2)
    ]
    changed = {
        "service_request_id": "14-00011080",
        "status": "open",
        "updated_datetime": "2015-10-21T08:00:00-05:00",
    }
    plan = FaultPlan(queue=list(CHAOS), insert_after_page={2: inserted}, update_after_page={3: [changed]})
    api = Open311Api(records, window_field="updated", format_default=fmt)
    with ReplayServer(faults=plan) as server:
        server.mount("/chicago_open311", api)
        load(chicago, server, warehouse, utc(2015, 9, 1), utc(2015, 11, 1))
        statuses = [r.status for r in server.requests if r.path.endswith(f"requests.{fmt}")]
        pages = server.pages_served
        expected = {r["service_request_id"] for r in api.snapshot()}
        loaded = query(
            warehouse, "select source_id, count(*) from raw_chicago_open311.service_requests group by 1"
        )
        changed_row = (
            "select status, source_updated_at from raw_chicago_open311.service_requests where source_id = ?"
        )
        # The change came after its page was read (the order is by requested_datetime):
        # this run kept the version it read, and the next run over the window reads the change.
        assert query(warehouse, changed_row, ["14-00011080"]) == [("closed", utc(2015, 10, 1, 17, 44, 55))]
        load(chicago, server, warehouse, utc(2015, 9, 1), utc(2015, 11, 1))
    # 50 recorded + 2 inserted requests in pages of 7: at least 8 pages. (A page the client
    # gave up on after its timeout may or may not be counted by then, so no exact number.)
    assert len(expected) == 52 and pages >= 8
    assert {source_id for source_id, _ in loaded} == expected  # no gaps
    assert {n for _, n in loaded} == {1}  # no duplicates
    assert {429, 500, 503} <= set(statuses)
    assert query(warehouse, changed_row, ["14-00011080"]) == [("open", utc(2015, 10, 21, 13))]
    assert query(warehouse, "select count(*) from raw_chicago_open311.service_requests") == [(52,)]


# -- staging ------------------------------------------------------------------------------------


def test_staging_models_build_over_the_loaded_feeds(tmp_path, monkeypatch):
    warehouse = tmp_path / "w.duckdb"
    boston = boston_api()
    repull(boston)
    feeds = [
        (
            "chicago_open311",
            Open311Api(
                recorded("chicago_2014_requests_extended.json", "chicago_2014_requests.json"),
                window_field="updated",
            ),
            utc(2014, 7, 1),
            utc(2015, 11, 1),
        ),
        (
            "bloomington",
            Open311Api(recorded("bloomington_2012_requests.json"), jurisdiction_id="bloomington.in.gov"),
            utc(2012, 5, 22),
            utc(2012, 5, 24),
        ),
        (
            "toronto",
            Open311Api(
                recorded("toronto_2018_requests.xml"),
                jurisdiction_id="toronto.ca",
                supports_paging=False,
                format_default="xml",
            ),
            utc(2018, 7, 30),
            utc(2018, 7, 31),
        ),
        ("boston_open311", boston, utc(2016, 1, 1), utc(2020, 5, 1)),
    ]
    with ReplayServer() as server:
        for city_id, api, start, end in feeds:
            server.mount(f"/{city_id}", api)
            load(registry_city(city_id), server, warehouse, start, end)

    # A registry of these four cities: the staged rows' contract then reads just their models.
    cities = tuple(feed[0] for feed in feeds)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", cities=cities)))
    output = dbt_build(warehouse, " ".join([*STAGING, "assert_staged_requests_keep_the_contract"]), tmp_path)
    assert "PASS=5" in output  # 4 views + the staged rows' contract

    counts = {
        model: query(warehouse, f"select count(*), count(distinct request_id) from staging.{model}")[0]
        for model in STAGING
    }
    assert counts == {
        "stg_chicago_open311__service_requests": (52, 52),
        "stg_bloomington__service_requests": (21, 21),
        "stg_toronto__service_requests": (2, 2),
        "stg_boston_open311__service_requests": (4112, 4112),
    }

    chicago = query(
        warehouse,
        "select request_id, requested_at, requested_at_local, closed_at, closed_at_local, status, channel, "
        "zip, department, is_duplicate, parent_request_id, extras "
        "from staging.stg_chicago_open311__service_requests "
        "where request_id in ('14-00684314', '14-02155558') order by request_id",
    )
    assert chicago[0][:11] == (
        "14-00684314",
        utc(2014, 5, 10, 0, 2, 21),
        datetime(2014, 5, 9, 19, 2, 21),
        utc(2015, 10, 10, 15, 15, 40),
        datetime(2015, 10, 10, 10, 15, 40),
        "closed",
        "phone",
        "60620",
        "Division of In-House Construction CDOT",
        False,
        None,
    )
    assert json.loads(chicago[0][11]) == {
        "ward": "21",
        "police": "6",
        "police_district": None,
        "address_id": None,
        "service_notice": None,
        "postal_code": None,
    }
    assert chicago[1][9:11] == (True, "15-05164921")  # extended_attributes.duplicate / parent

    assert query(
        warehouse,
        "select count(*) filter (where latitude is null), count(*) filter (where zip = '47401'), "
        "count(*) filter (where status = 'closed'), count(closed_at) "
        "from staging.stg_bloomington__service_requests",
    ) == [(8, 5, 3, 3)]

    toronto = query(
        warehouse,
        "select request_id, requested_at_local, due_at, updated_at, closed_at, zip, status, extras "
        "from staging.stg_toronto__service_requests order by request_id",
    )
    assert toronto[0][:7] == (
        "101005420892",
        datetime(2018, 7, 30, 0, 1),
        utc(2018, 8, 3, 4, 1),
        utc(2018, 7, 30, 4, 1),
        None,
        None,
        "open",
    )
    assert json.loads(toronto[0][7])["address_id"] == "13459430"

    # Boston: the newest version of every id, as the recorded files have it.
    newest: dict[str, dict] = {}
    for record in recorded(*BOSTON_FIRST_PULL, *BOSTON_REPULL, folder=BOSTON):
        key = record.get("service_request_id")
        stamp = parse_instant(record["updated_datetime"], UTC)
        if key and (key not in newest or stamp >= parse_instant(newest[key]["updated_datetime"], UTC)):
            newest[key] = record
    expected_closed = sum(1 for r in newest.values() if r["status"] == "closed")
    boston_rows = query(
        warehouse,
        "select count(*) filter (where status = 'closed'), count(closed_at), "
        "max(closed_at) filter (where request_id = '101002727397') "
        "from staging.stg_boston_open311__service_requests",
    )
    assert boston_rows == [(expected_closed, expected_closed, utc(2020, 4, 22, 17, 32, 6))]
