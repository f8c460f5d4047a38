"""Every registry city, from its recorded files, through its adapter and its
staging model into the one canonical `int_service_requests`."""

from __future__ import annotations

import duckdb
import pytest

from ingestion.registry import load_registry
from tests.helpers.dbt import dbt_build
from tests.helpers.samples import FEEDS
from tests.helpers.warehouse import copy_warehouse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def warehouse(api_samples_raw, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("all_cities")
    path = copy_warehouse(api_samples_raw, tmp_path)
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
