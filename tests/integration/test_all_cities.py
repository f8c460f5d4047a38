"""Every registry city, from its recorded files, through its adapter and its
staging model into the one canonical `int_service_requests`."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest
import yaml

from ingestion.pipeline import city_pipeline, run_source
from ingestion.registry import load_registry
from ingestion.replay import ReplayServer
from ingestion.replay.catalog import mount_city
from ingestion.replay.seeclickfix import SeeClickFixApi, load_scf_issues
from ingestion.sources import source_for
from tests.conftest import NYC_SODA_SAMPLE, REPO, SHARED_DATA, dbt_build
from tests.integration.test_socrata_cities import CHICAGO_ROWS

pytestmark = pytest.mark.integration

D = SHARED_DATA
# city -> (recorded files, distinct requests they hold)
FEEDS = {
    "nyc": ([NYC_SODA_SAMPLE], 1000),
    "sf": ([D / "sf" / "sf311_vw6y-z8j6_soda_records_2021-07-10_1771.json"], 1771),
    "la": ([D / "la" / "myla311_2017_subset.csv"], 9999),
    "boston": ([D / "boston" / "boston311_2022_jan_100.csv"], 100),
    "boston_open311": (sorted((D / "boston" / "open311").glob("*.json")), 4112),
    "chicago_open311": (
        [D / "open311" / "chicago_2014_requests_extended.json", D / "open311" / "chicago_2014_requests.json"],
        52,
    ),
    "bloomington": ([D / "open311" / "bloomington_2012_requests.json"], 21),
    "toronto": ([D / "open311" / "toronto_2018_requests.xml"], 2),
    "detroit": (None, 38),  # the Detroit issues of the nationwide SeeClickFix pages
    "jersey_city": ([D / "seeclickfix" / "scf_v2_issues_jerseycity_page1_envelope.json"], 20),
    "chicago": (None, 3),  # no recorded v6vf-nfxy rows: the three written in test_socrata_cities
}
START, END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def _registry(tmp_path):
    raw = yaml.safe_load((REPO / "ingestion" / "cities.yaml").read_text())
    for city in raw["cities"]:
        # The replay sets no rate limit; the pacing cities need live would only slow the test.
        city["source"]["requests_per_minute"] = None
    path = tmp_path / "cities.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_registry(path)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("all_cities")
    registry = _registry(tmp_path)
    assert set(FEEDS) == set(registry.ids)
    path = tmp_path / "warehouse.duckdb"
    with ReplayServer() as server:
        for city in registry.cities:
            files, _ = FEEDS[city.id]
            if city.id == "chicago":
                server.add_dataset("v6vf-nfxy", CHICAGO_ROWS, id_field="sr_number", prefix="/chicago")
            elif city.id == "detroit":
                # The nationwide pages hold many places; Detroit's are those with its address.
                pages = sorted((D / "seeclickfix").glob("scf_v2_issues_nationwide_*.json"))
                issues = [
                    i for p in pages for i in load_scf_issues(p) if "Detroit" in (i.get("address") or "")
                ]
                server.mount("/detroit", SeeClickFixApi({"detroit": issues}))
            else:
                mount_city(server, city, files)
            source = source_for(city, START, END, base_url=city.base_url(server.url), backoff_seconds=0.01)
            run_source(city_pipeline(city, path), source).raise_on_failed_jobs()
    dbt_build(path, "+int_service_requests", tmp_path)
    return path


def test_every_city_lands_in_the_canonical_model(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = dict(
            con.execute(
                "select city_id, count(*) from intermediate.int_service_requests group by 1"
            ).fetchall()
        )
        unique = con.execute(
            "select count(*) = count(distinct (city_id, request_id)) from intermediate.int_service_requests"
        ).fetchone()[0]
        columns = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'intermediate' "
                "and table_name = 'int_service_requests' order by ordinal_position"
            ).fetchall()
        ]
        statuses = {
            r[0]
            for r in con.execute("select distinct status from intermediate.int_service_requests").fetchall()
        }
        untimed = con.execute(
            "select city_id, count(*) from intermediate.int_service_requests "
            "where requested_at is null group by 1"
        ).fetchall()
    assert counts == {city: n for city, (_, n) in FEEDS.items()}
    assert unique
    assert columns[:3] == ["city_id", "request_id", "requested_at"] and columns[-2:] == [
        "extras",
        "loaded_at",
    ]
    assert statuses <= {"open", "in_progress", "closed", "other"}
    # Boston's Open311 pages hold a few requests with no requested time; every other city has one.
    assert {city for city, _ in untimed} <= {"boston_open311"}


def test_each_city_reads_its_own_wall_clock(warehouse):
    registry = load_registry()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select city_id, any_value(requested_at), any_value(requested_at_local) "
            "from intermediate.int_service_requests where requested_at is not null group by 1"
        ).fetchall()
    for city_id, instant, local in rows:
        expected = instant.astimezone(registry.city(city_id).tz).replace(tzinfo=None)
        assert local == expected, city_id
