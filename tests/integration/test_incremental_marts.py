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

import json
from datetime import UTC, date, datetime

import duckdb
import pytest

from ingestion.pipeline import load_source
from ingestion.registry import load_registry
from ingestion.sources import source_for
from tests.helpers.data import NYC_SODA_SAMPLE
from tests.helpers.dbt import dbt_build
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import content_hash
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

# The sample's requests were created (and, in the replay, last updated) from June to
# 21 November 2012, almost all on 18-21 November: one window up to the 19th, then
# daily partitions, and a later window in which the portal changes three requests.
# Then two windows with no change, weeks apart: in the first, the open requests pass
# 30 days and the rows of most groups settle (no figure moves with the as-of any
# more, so they show none); the second leaves those rows as they were.
WINDOWS = [
    date(2012, 6, 1),
    date(2012, 11, 19),
    date(2012, 11, 20),
    date(2012, 11, 21),
    date(2012, 11, 22),
    date(2012, 11, 25),
    date(2012, 11, 26),
    date(2013, 1, 16),
    date(2013, 2, 20),
]
CHANGES_ARRIVE_IN = date(2012, 11, 25)
CHANGED_AT = "2012-11-25T15:30:00.000Z"
LATER = "2026-11-01 00:00:00+00"
INCREMENTAL_MODELS = [
    "fct_service_requests",
    "fct_request_events",
    "mart_response_times",
    "mart_response_times_by_type",
    "mart_service_gaps",
    "mart_hotspots",
    "mart_demand_timing",
    "mart_cross_department",
    "mart_department_handoffs",
    "mart_department_joint_spikes",
]


def utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def as_of(day: date) -> str:
    return f"{day.isoformat()} 00:00:00+00"


def changes(records: list[dict]) -> tuple[dict, dict, dict]:
    """Three requests of 18-19 November the portal changes on the 25th: one handed from
    its agency to another, one closed, one reopened."""
    early = [r for r in records if r["created_date"][:10] in ("2012-11-18", "2012-11-19")]
    closed = [r for r in early if r.get("closed_date")]
    still_open = [r for r in records if not r.get("closed_date")]
    handed, reopened, to_close = closed[0], closed[1], still_open[0]
    new_agency = "DSNY" if handed["agency"] != "DSNY" else "DOT"
    return (
        {"unique_key": handed["unique_key"], "agency": new_agency, ":updated_at": CHANGED_AT},
        {
            "unique_key": to_close["unique_key"],
            "status": "Closed",
            "closed_date": "2012-11-25T11:00:00.000",
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
            source = source_for(
                city, utc(start), utc(end), base_url=city.base_url(server.url), backoff_seconds=0.01
            )
            load_source(city, source, warehouse).raise_on_failed_jobs()
            dbt_build(
                warehouse,
                "civic311",
                tmp_path / "incremental",
                window=(start.isoformat(), end.isoformat()),
                dbt_vars={"as_of": as_of(end)},
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
        # Groups with open requests, by whether they still show an as_of, and whether
        # the instant they settled.
        shown = {
            mart: {
                (moving, settled): n
                for moving, settled, n in con.execute(
                    f"select as_of is not null, figures_settled_at is not null, count(*) "  # noqa: S608
                    f"from marts.{mart} where open_requests > 0 group by all"
                ).fetchall()
            }
            for mart in ("mart_response_times", "mart_response_times_by_type", "mart_service_gaps")
        }

    # History caught the portal's three changes, each on its own request.
    assert (handed["unique_key"], "reassigned") in {(r[0], r[1]) for r in events}
    assert (reopening["unique_key"], "reopened") in {(r[0], r[1]) for r in events}
    assert (closing["unique_key"], "closed") in {(r[0], r[1]) for r in events}
    assert fct_rows == len(records)
    assert all(n > 0 for t, (n, _) in incremental.items() if t != "mart_department_joint_spikes"), incremental
    # Settled rows were left alone by the last run, and are what a full refresh gives.
    # Every group with open requests either moves (an as_of) or says when it settled.
    assert all(counts.get((False, True), 0) > 0 for counts in shown.values()), shown
    assert all(set(counts) <= {(True, False), (False, True)} for counts in shown.values()), shown

    dbt_build(
        warehouse, "civic311", tmp_path / "full", dbt_vars={"as_of": as_of(WINDOWS[-1])}, full_refresh=True
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        full = {t: content_hash(con, t) for t in INCREMENTAL_MODELS}
    assert incremental == full


def test_a_window_rewrites_only_what_changed_in_it(tmp_path, monkeypatch):
    """A row outside the window is left as it was, so an incremental run does not
    quietly recompute everything (which would make the equality above trivial).
    The as-of time is after every date in the sample: a request closed after the
    as-of time is rechecked on every run, by design."""
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
        load_source(city, source, warehouse).raise_on_failed_jobs()
    select = "+fct_service_requests"
    dbt_build(warehouse, select, tmp_path / "first", dbt_vars={"as_of": LATER})
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_service_requests set channel = 'marker'")
    # One daily partition, without lookback: the 19 requests last updated on 21 November.
    dbt_build(
        warehouse,
        select,
        tmp_path / "window",
        window=("2012-11-21", "2012-11-22"),
        dbt_vars={"lookback_days": 0, "as_of": LATER},
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rewritten = dict(
            con.execute(
                "select updated_at >= timestamptz '2012-11-21 00:00:00+00', count(*) "
                "from marts.fct_service_requests where channel is distinct from 'marker' group by 1"
            ).fetchall()
        )
        in_window = con.execute(
            "select count(*) from marts.fct_service_requests "
            "where updated_at >= timestamptz '2012-11-21 00:00:00+00'"
        ).fetchone()[0]
    # Every request of the window was rewritten, and nothing else.
    assert in_window == 19
    assert rewritten == {True: in_window}
