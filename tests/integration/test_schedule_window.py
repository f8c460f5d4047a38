"""The daily refresh's own runs (each city's load of one partition, then the models
over that day, as the `daily_refresh` sensor launches them) pass the day to dbt:
after the NYC sample's backfill, the refresh of the next day rewrites the spatial
placement of the requests changed in that day's window (with the lookback), and only
those. The refresh of the day after leaves the response-time rows that no longer
move with the clock (settled: no as_of shown) alone, and recomputes those that still
do."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pytest
from dagster import DagsterInstance
from dagster._core.storage.tags import PARTITION_NAME_TAG

from ingestion.registry import load_registry
from orchestration.daily import MODELS_JOB
from orchestration.launch import launch
from orchestration.resources import DBT_PROJECT_DIR
from tests.helpers.daily import run_daily_refresh
from tests.helpers.nyc_sample import serve_nyc_sample
from tests.helpers.registry import write_registry
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

NEXT_DAY = date(2012, 11, 22)
DAY_AFTER = date(2012, 11, 23)
LATE_MONTH_DAY = date(2012, 8, 15)
# Inside the first day's lookback (3 days), before the next day's.
LATE_PUBLISHED = date(2012, 11, 19)
NEW_REQUESTS = 5
# A median no request of the sample gives (35 years; the suites allow any median
# that is not negative), put on rows to see which a run rewrites.
MARK = 311311.311


# Rows a day's run reads: updated on the day or in the lookback before it.
IN_WINDOW = (
    "updated_at >= cast(? as timestamptz) - to_days(cast(? as integer)) "
    "and updated_at < cast(? as timestamptz) + interval 1 day"
)


def window(day: date) -> list:
    lookback_days = int(load_registry().city("nyc").source.lookback_hours / 24)
    return [day.isoformat(), lookback_days, day.isoformat()]


def placements(warehouse) -> dict[str, set[str]]:
    """Each request's dbt invocations in int_request_areas (one per layer row)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select request_id, joined_in_run from intermediate.int_request_areas").fetchall()
    runs: dict[str, set[str]] = {}
    for request_id, run in rows:
        runs.setdefault(request_id, set()).add(run)
    return runs


def new_requests(backfill, day: date, first: int) -> list[dict]:
    """NEW_REQUESTS copies of the feed's first records, created on `day` under new keys."""
    return [
        {**record, "unique_key": f"7{first + number:08d}", "created_date": f"{day.isoformat()}T10:00:00.000"}
        for number, record in enumerate(backfill.feed[:NEW_REQUESTS])
    ]


def late_open_requests(backfill, created: date, updated: date) -> list[dict]:
    """Two requests created on `created`, still open, first published on `updated`."""
    return [
        {
            **record,
            "unique_key": f"8{number:08d}",
            "created_date": f"{created.isoformat()}T09:00:00.000",
            "closed_date": None,
            "status": "Open",
            ":updated_at": f"{updated.isoformat()}T11:00:00.000Z",
        }
        for number, record in enumerate(backfill.feed[:2])
    ]


def daily_refresh(feed: list[dict], now: datetime, monkeypatch):
    """The daily refresh's runs at `now`, executed with `feed` served: the city's load
    request and the models' run."""
    with ReplayServer() as server:
        serve_nyc_sample(server, feed)
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        runs = run_daily_refresh(DagsterInstance.get(), now)
    (load, loaded), (models, built) = runs
    assert (load.job_name, models.job_name) == ("refresh_nyc", MODELS_JOB)
    assert loaded.success and built.success
    # The load run checks what it loaded; the models' run checks the models.
    raw_checks = {evaluation.check_name for evaluation in loaded.get_asset_check_evaluations()}
    assert {"source_ids_present_and_unique", "raw_socrata_suite", "fresh_within_cadence"} <= raw_checks
    assert not {"source_ids_present_and_unique"} & {
        evaluation.check_name for evaluation in built.get_asset_check_evaluations()
    }
    return load, built


def test_scheduled_days_rewrite_only_their_window(nyc_sample_backfill, tmp_path, dagster_home, monkeypatch):
    warehouse = nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    before = placements(warehouse)
    known_runs = set().union(*before.values())
    # New requests of the day, and two of August published late (read through the
    # lookback): a month of their own, which the day after leaves alone.
    feed = [
        *nyc_sample_backfill.feed,
        *new_requests(nyc_sample_backfill, NEXT_DAY, 0),
        *late_open_requests(nyc_sample_backfill, LATE_MONTH_DAY, LATE_PUBLISHED),
    ]
    request, result = daily_refresh(feed, datetime(2012, 11, 23, 6, tzinfo=UTC), monkeypatch)
    assert request.partition_key == NEXT_DAY.isoformat()

    with duckdb.connect(str(warehouse), read_only=True) as con:
        in_window = {
            row[0]
            for row in con.execute(
                f"select request_id from intermediate.int_service_requests where {IN_WINDOW}",
                window(NEXT_DAY),
            ).fetchall()
        }
    after = placements(warehouse)
    rewritten = {request_id for request_id, runs in after.items() if runs - known_runs}
    assert {f"7{number:08d}" for number in range(NEW_REQUESTS)} <= rewritten
    assert rewritten == in_window
    assert len(rewritten) < len(after)

    # The run's second dbt step starts from the parse its first one ended with: dbt
    # parses the project at most once a run, not once a step (keep_parse).
    (marts_log,) = (DBT_PROJECT_DIR / "target").glob(f"civic311_dbt_marts-{result.run_id[:7]}-*/dbt.log")
    assert "Unable to do partial parsing" not in marts_log.read_text()

    # The day after: mark every response-time row, then run that day's tick.
    with duckdb.connect(str(warehouse)) as con:
        # The months it must recompute whatever changed: a row there shows an as_of (its
        # open requests still move the figures) or holds an invalid duration. (The
        # city's as-of only moves on, so every settled row holds.)
        moving = set(
            con.execute(
                "select city_id, requested_month from marts.mart_response_times "
                "where as_of is not null or excluded_invalid_duration > 0"
            ).fetchall()
        )
        settled = con.execute(
            "select count(*) from marts.mart_response_times where as_of is null and open_requests > 0"
        ).fetchone()[0]
        con.execute(f"update marts.mart_response_times set km_median_hours_to_close = {MARK}")
    assert moving and settled, "the sample no longer has both a month still moving and a settled one"
    feed = [*feed, *new_requests(nyc_sample_backfill, DAY_AFTER, NEW_REQUESTS)]
    request, _ = daily_refresh(feed, datetime(2012, 11, 24, 6, tzinfo=UTC), monkeypatch)
    assert request.partition_key == DAY_AFTER.isoformat()

    with duckdb.connect(str(warehouse), read_only=True) as con:
        # ... and the months holding a request that changed in its window, or one now
        # dated in the future.
        future_dated = set(
            con.execute(
                "select distinct city_id, requested_month from marts.fct_service_requests "
                "where hours_to_close_null_reason = 'date_in_future'"
            ).fetchall()
        )
        changed = set(
            con.execute(
                f"select distinct city_id, requested_month from marts.fct_service_requests where {IN_WINDOW}",
                window(DAY_AFTER),
            ).fetchall()
        )
        rows = con.execute(
            "select city_id, requested_month, open_requests > 0, "
            f"km_median_hours_to_close is not distinct from {MARK} from marts.mart_response_times"
        ).fetchall()
    recomputed = changed | moving | future_dated
    left_alone = {(city, month) for city, month, _, marked in rows if marked}
    assert changed - moving and left_alone
    # Settled months (open requests, no as_of shown) are among those left alone ...
    assert any(is_open for *_, is_open, marked in rows if marked)
    # ... and exactly the months the run had to recompute were.
    assert {(city, month) for city, month, _, marked in rows if not marked} == recomputed
    assert left_alone.isdisjoint(recomputed)


def test_the_rebuild_job_recreates_a_mart_built_before_its_new_column(
    nyc_sample_backfill, tmp_path, dagster_home, monkeypatch
):
    """A warehouse whose response-time mart predates figures_settled_at: an incremental
    run stops on it, naming the rebuild; the rebuild job (a full refresh) recreates it."""
    warehouse = nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table marts.mart_response_times drop column figures_settled_at")

    with ReplayServer() as server:
        serve_nyc_sample(server, nyc_sample_backfill.feed)
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        stopped = launch("refresh_nyc", tags={PARTITION_NAME_TAG: NEXT_DAY.isoformat()})
    assert not stopped.success
    (failure,) = [event for event in stopped.all_events if event.event_type_value == "STEP_FAILURE"]
    assert "was built before it had figures_settled_at" in str(failure.event_specific_data.error)
    assert "rebuild job" in str(failure.event_specific_data.error)

    rebuilt = launch("rebuild", instance=DagsterInstance.get())
    assert rebuilt.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        settled = con.execute(
            "select count(*) from marts.mart_response_times where figures_settled_at is not null"
        ).fetchone()[0]
    assert settled > 0
