"""Socrata cities beyond NYC, through the replay server, dlt and their staging
models: San Francisco's recorded SODA records, Los Angeles's year-per-dataset
layout, and Chicago's duplicate flags."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pytest

from ingestion.pipeline import load_source
from ingestion.registry import load_registry
from ingestion.sources import source_for
from tests.helpers.data import SHARED_DATA
from tests.helpers.dbt import dbt_build
from tests.helpers.samples import CHICAGO_ROWS
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

SF_SODA = SHARED_DATA / "sf" / "sf311_vw6y-z8j6_soda_records_2021-07-10_1771.json"
LA_EXPORT = SHARED_DATA / "la" / "myla311_2017_subset.csv"


def _load(city, server, warehouse, start, end):
    source = source_for(city, start=start, end=end, base_url=city.base_url(server.url), backoff_seconds=0.01)
    load_source(city, source, warehouse).raise_on_failed_jobs()


def test_san_francisco_soda_records(tmp_path):
    city = load_registry().city("sf")
    records = json.loads(SF_SODA.read_text())
    warehouse = tmp_path / "warehouse.duckdb"
    with ReplayServer() as server:
        server.add_dataset(
            "vw6y-z8j6",
            records,
            id_field="service_request_id",
            updated_at_fields=("updated_datetime",),
            prefix="/sf",
        )
        _load(city, server, warehouse, datetime(2021, 7, 10, tzinfo=UTC), datetime(2021, 7, 12, tzinfo=UTC))
    dbt_build(warehouse, "stg_sf__service_requests", tmp_path)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*), count(distinct source_id) from raw_sf.service_requests"
        ).fetchone() == (
            1771,
            1771,
        )
        stg = "staging.stg_sf__service_requests"
        statuses = dict(con.execute(f"select status, count(*) from {stg} group by 1").fetchall())  # noqa: S608
        row = con.execute(
            f"select requested_at_local, requested_at, closed_at, service_name, service_subtype, department, "  # noqa: S608
            f"channel, latitude, json_extract_string(extras, '$.neighborhood') from {stg} "
            "where request_id = '14011783'"
        ).fetchone()
        duplicates = con.execute(f"select count(*) from {stg} where is_duplicate").fetchone()[0]  # noqa: S608
        parents = con.execute(f"select count(*) from {stg} where parent_request_id is not null").fetchone()[0]  # noqa: S608
    assert statuses == {"closed": 937, "open": 834}
    # 2021-07-02 11:52 in San Francisco is PDT (UTC-7).
    assert row == (
        datetime(2021, 7, 2, 11, 52),
        datetime(2021, 7, 2, 18, 52, tzinfo=UTC),
        datetime(2021, 7, 10, 16, 18, tzinfo=UTC),
        "Street and Sidewalk Cleaning",
        "Hazardous Materials",
        "DPW Ops Queue",
        "web",
        37.7318411,
        "Mission Terrace",
    )
    # 83 status notes say the case is a duplicate ("Case is a Duplicate ..."); 38 name a case
    # ("previously reported as 14041850"), 29 of them another case rather than the note's own.
    assert duplicates == 83
    assert parents == 29


def test_los_angeles_reads_each_years_dataset(tmp_path):
    city = load_registry().city("la")
    warehouse = tmp_path / "warehouse.duckdb"
    with ReplayServer() as server:
        for year, dataset_id in city.source.datasets_by_year.items():
            records = LA_EXPORT if year == 2017 else []
            server.add_dataset(
                dataset_id,
                records,
                id_field="srnumber",
                updated_at_fields=("updateddate", "closeddate", "createddate"),
                created_field="createddate",
                prefix="/la",
            )
        _load(city, server, warehouse, datetime(2017, 12, 1, tzinfo=UTC), datetime(2019, 4, 1, tzinfo=UTC))
        asked = {r.path.rsplit("/", 1)[-1].removesuffix(".json") for r in server.requests}
    dbt_build(warehouse, "stg_la__service_requests", tmp_path)

    # A load ending in 2019 reads every dataset of 2015-2019 (requests of each can still change).
    assert asked == {city.source.datasets_by_year[y] for y in range(2015, 2020)}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*), count(distinct source_id) from raw_la.service_requests"
        ).fetchone() == (
            9999,
            9999,
        )
        stg = "staging.stg_la__service_requests"
        statuses = dict(con.execute(f"select source_status, count(*) from {stg} group by 1").fetchall())  # noqa: S608
        canonical = dict(con.execute(f"select status, count(*) from {stg} group by 1").fetchall())  # noqa: S608
        row = con.execute(
            f"select requested_at_local, requested_at, closed_at, service_name, channel, zip, "  # noqa: S608
            f"json_extract_string(extras, '$.neighborhood_council_name') from {stg} "
            "where request_id = '1-870704831'"
        ).fetchone()
    assert statuses == {"Closed": 9739, "Cancelled": 246, "Referred Out": 9, "Open": 5}
    assert canonical == {"closed": 9739, "other": 246, "in_progress": 9, "open": 5}
    # 11:59:58 PM on New Year's Eve in Los Angeles (PST, UTC-8) is 07:59:58 UTC on January 1.
    assert row == (
        datetime(2017, 12, 31, 23, 59, 58),
        datetime(2018, 1, 1, 7, 59, 58, tzinfo=UTC),
        datetime(2018, 4, 9, 16, 18, 35, tzinfo=UTC),
        "Homeless Encampment",
        "call",
        "90026",
        "GREATER ECHO PARK ELYSIAN NC",
    )


def test_chicago_duplicates_departments_and_dst(tmp_path):
    city = load_registry().city("chicago")
    warehouse = tmp_path / "warehouse.duckdb"
    with ReplayServer() as server:
        server.add_dataset(
            "v6vf-nfxy",
            CHICAGO_ROWS,
            id_field="sr_number",
            updated_at_fields=("last_modified_date",),
            prefix="/chicago",
        )
        _load(city, server, warehouse, datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC))
    dbt_build(warehouse, "stg_chicago__service_requests", tmp_path)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select request_id, requested_at, status, is_duplicate, parent_request_id, department, "
            "json_extract_string(extras, '$.created_department'), json_extract(extras, '$.legacy_record'), "
            "latitude from staging.stg_chicago__service_requests order by request_id"
        ).fetchall()
    first, second, third = rows
    assert first[2:4] == ("closed", False) and first[5] == "CDOT - Department of Transportation"
    assert first[6] == "311 City Services"
    assert second[3:5] == (True, "SR24-00000001")
    assert third[2] == "other" and third[7] == "true" and third[8] is None  # 0,0 means no location
    # 2024-03-10 03:30 is after Chicago's spring-forward jump (CDT, UTC-5); 01:30 before it (CST, UTC-6).
    assert first[1] == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    assert second[1] == datetime(2024, 3, 10, 8, 30, tzinfo=UTC)
    # 2024-11-03 01:30 happens twice in Chicago; the second (CST) occurrence is taken.
    assert third[1] == datetime(2024, 11, 3, 7, 30, tzinfo=UTC)
