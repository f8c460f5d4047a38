"""Facts and marts built window by window, as Dagster's daily partitions build
them, equal a full refresh over the same data: the proof that an incremental run
rewrites everything its window touches and nothing else needs rewriting.

The real NYC SODA sample arrives month by month through the replay server and
the Socrata adapter. Between two windows the portal changes three requests (a
hand-off to another agency, a closing and a reopening), so the history and the
marts built on it have something to catch. The as-of time moves with each
window, as the clock does in production, so the figures that depend on it
(Kaplan-Meier censoring, backlog ages) must be refreshed even where nothing
changed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import duckdb
import pytest

from ingestion.pipeline import city_pipeline, run_source
from ingestion.registry import load_registry
from ingestion.replay import ReplayServer
from ingestion.sources import source_for
from tests.conftest import NYC_SODA_SAMPLE, dbt_build, write_registry

pytestmark = pytest.mark.integration

# The sample's requests were created (and, in the replay, last updated) June-November 2012.
WINDOWS = [date(2012, month, 1) for month in range(6, 13)]
CHANGES_ARRIVE_IN = date(2012, 9, 1)
CHANGED_AT = "2012-09-14T15:30:00.000Z"
INCREMENTAL_MODELS = [
    "fct_service_requests",
    "fct_request_events",
    "mart_response_times",
    "mart_service_gaps",
    "mart_hotspots",
    "mart_demand_timing",
    "mart_cross_department",
    "mart_department_handoffs",
    "mart_department_joint_spikes",
]


def as_of(day: date) -> str:
    return f"{day.isoformat()} 00:00:00+00"


def content_hash(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """Row count and an order-free hash of a table's rows, doubles to 9 decimals
    (parallel sums may differ in the last bits between two runs)."""
    rows = con.execute(f"select * from marts.{table}").fetchall()  # noqa: S608 - fixed names
    text = sorted(json.dumps([round(v, 9) if isinstance(v, float) else str(v) for v in row]) for row in rows)
    return len(rows), hashlib.sha256("\n".join(text).encode()).hexdigest()


def changes(records: list[dict]) -> tuple[dict, dict, dict]:
    """Three June requests the portal changes in September: one handed from its agency
    to another, one closed, one reopened."""
    june = [r for r in records if r["created_date"].startswith("2012-06")]
    closed = [r for r in june if r.get("closed_date")]
    still_open = [r for r in june if not r.get("closed_date")]
    handed, reopened = closed[0], closed[1]
    to_close = still_open[0] if still_open else closed[2]
    new_agency = "DSNY" if handed["agency"] != "DSNY" else "DOT"
    return (
        {"unique_key": handed["unique_key"], "agency": new_agency, ":updated_at": CHANGED_AT},
        {
            "unique_key": to_close["unique_key"],
            "status": "Closed",
            "closed_date": "2012-09-14T11:00:00.000",
            ":updated_at": CHANGED_AT,
        },
        {
            "unique_key": reopened["unique_key"],
            "status": "Open",
            "closed_date": "",
            ":updated_at": CHANGED_AT,
        },
    )


def test_window_by_window_equals_a_full_refresh(tmp_path, monkeypatch):
    registry_file = write_registry(tmp_path / "cities.yaml", page_size=1000, requests_per_minute=None)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry_file))
    city = load_registry().city("nyc")
    warehouse = tmp_path / "warehouse.duckdb"
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    handed, closing, reopening = changes(records)

    with ReplayServer() as server:
        dataset = server.add_dataset(
            "fhrw-4uyv", records, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
        )
        server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
        for start, end in zip(WINDOWS, WINDOWS[1:], strict=False):
            if start == CHANGES_ARRIVE_IN:
                dataset.apply_changes(inserts=[], updates=[handed, closing, reopening])
            window = (
                datetime(start.year, start.month, 1, tzinfo=UTC),
                datetime(end.year, end.month, 1, tzinfo=UTC),
            )
            source = source_for(city, *window, base_url=city.base_url(server.url), backoff_seconds=0.01)
            run_source(city_pipeline(city, warehouse), source).raise_on_failed_jobs()
            dbt_build(
                warehouse,
                "civic311",
                tmp_path / "incremental",
                dbt_vars={"min_date": start.isoformat(), "max_date": end.isoformat(), "as_of": as_of(end)},
            )

    with duckdb.connect(str(warehouse), read_only=True) as con:
        incremental = {t: content_hash(con, t) for t in INCREMENTAL_MODELS}
        events = con.execute(
            "select request_id, event_type, from_department_id, to_department_id "
            "from marts.fct_request_events "
            "where event_type in ('reassigned', 'reopened') or (event_type = 'closed' and request_id = ?) "
            "order by request_id, event_seq",
            [closing["unique_key"]],
        ).fetchall()
        fct_rows = con.execute("select count(*) from marts.fct_service_requests").fetchone()[0]

    # History caught the portal's three changes, each on its own request.
    assert (handed["unique_key"], "reassigned") in {(r[0], r[1]) for r in events}
    assert (reopening["unique_key"], "reopened") in {(r[0], r[1]) for r in events}
    assert (closing["unique_key"], "closed") in {(r[0], r[1]) for r in events}
    assert fct_rows == len(records)
    assert all(n > 0 for t, (n, _) in incremental.items() if t != "mart_department_joint_spikes"), incremental

    dbt_build(
        warehouse, "civic311", tmp_path / "full", dbt_vars={"as_of": as_of(WINDOWS[-1])}, full_refresh=True
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        full = {t: content_hash(con, t) for t in INCREMENTAL_MODELS}
    assert incremental == full


def test_a_window_rewrites_only_what_changed_in_it(tmp_path, monkeypatch):
    """A row outside the window is left as it was, so an incremental run does not
    quietly recompute everything (which would make the equality above trivial)."""
    registry_file = write_registry(tmp_path / "cities.yaml", page_size=1000, requests_per_minute=None)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry_file))
    city = load_registry().city("nyc")
    warehouse = tmp_path / "warehouse.duckdb"
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    with ReplayServer() as server:
        server.add_dataset(
            "fhrw-4uyv", records, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
        )
        server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
        source = source_for(
            city,
            datetime(2012, 6, 1, tzinfo=UTC),
            datetime(2012, 12, 1, tzinfo=UTC),
            base_url=city.base_url(server.url),
            backoff_seconds=0.01,
        )
        run_source(city_pipeline(city, warehouse), source).raise_on_failed_jobs()
    select = "+fct_service_requests service_categories"
    dbt_build(warehouse, select, tmp_path / "first", dbt_vars={"as_of": as_of(date(2012, 12, 1))})
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_service_requests set channel = 'marker'")
    window = {"min_date": "2012-11-01", "max_date": "2012-12-01", "as_of": as_of(date(2012, 12, 1))}
    dbt_build(warehouse, select, tmp_path / "window", dbt_vars=window)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rewritten = dict(
            con.execute(
                "select updated_at >= timestamptz '2012-10-29 00:00:00+00', count(*) "
                "from marts.fct_service_requests where channel is distinct from 'marker' group by 1"
            ).fetchall()
        )
        in_window = con.execute(
            "select count(*) from marts.fct_service_requests "
            "where updated_at >= timestamptz '2012-10-29 00:00:00+00'"
        ).fetchone()[0]
    # Every request of the window (and its 3-day lookback) was rewritten, and nothing else.
    assert in_window > 50
    assert rewritten == {True: in_window}
