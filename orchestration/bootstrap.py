"""`civic311 bootstrap`: a city's history from its portal exports, then one full build.

Each export file is loaded as `civic311 load` loads it, then the `rebuild` job runs
once on the Dagster instance in DAGSTER_HOME: every dbt model from all of raw (no
window), every check, and the publish. It is an ordinary Dagster run, launched from
the workspace's code location (orchestration/launch.py), so the UI lists it under the
job. The progress display (orchestration/progress.py: rows read, models built,
checks run) follows the load's batches and the run's events as they are stored.

The daily refresh then carries on from the UTC day of the export's newest change
(`carry_on_day`), that day included: an export may stop part-way through its last
day, and the API's rows of that day merge with the export's on (city_id, source_id),
the newest version winning, so each request is counted once (docs/design.md,
"Bootstrapping a city's history").
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance
from rich.console import Console

from ingestion.pipeline import warehouse_path
from ingestion.registry import City
from ingestion.sources.exports import EXPORT_TABLE, ExportSummary, load_export
from ingestion.sources.exports.files import ExportFile
from ingestion.warehouse_lock import warehouse_lock
from orchestration.daily import TICK_HOUR, day_to_refresh
from orchestration.launch import launch
from orchestration.progress import Display

JOB_NAME = "rebuild"
PUBLISH_KEY = ("serving", "marts")


@dataclass
class Bootstrap:
    """What one bootstrap did: per-phase seconds, rows, the run, and where the daily refresh carries on."""

    city_id: str
    loads: list[ExportSummary] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str = ""
    success: bool = False
    models_built: int = 0
    checks_run: int = 0
    failed_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    newest_change: datetime | None = None
    # dbt's output and the run's log lines, kept out of the terminal's display (None: shown live).
    log: Path | None = None

    @property
    def rows_read(self) -> int:
        return sum(load.rows_read for load in self.loads)

    @property
    def rows_loaded(self) -> int:
        return sum(load.rows_loaded for load in self.loads)

    @property
    def rows_quarantined(self) -> int:
        return sum(load.rows_quarantined for load in self.loads)


def carry_on_day(newest_change: datetime) -> date:
    """The first daily partition the daily refresh must load after an export whose newest
    change is `newest_change`: that change's UTC day, as the export may stop part-way
    through it. Rows of that day already in the export merge with the API's."""
    return newest_change.astimezone(UTC).date()


def first_scheduled_day(now: datetime) -> date:
    """The partition the daily refresh loads next after `now`: at its next 06:00 UTC, the
    day before (the day it loads at an earlier hour may be loaded already)."""
    tick = now.astimezone(UTC).replace(hour=TICK_HOUR, minute=0, second=0, microsecond=0)
    if tick <= now:
        tick += timedelta(days=1)
    return day_to_refresh(tick)


def load_files(city: City, paths: Sequence[Path], warehouse: Path, display: Display, done: Bootstrap) -> None:
    """Every file, after checking each can be read (so a bad second file stops the
    bootstrap before the first is loaded). The display counts rows read."""
    for path in paths:
        ExportFile.open(city, path)
    started = time.perf_counter()
    for number, path in enumerate(paths, 1):
        display.phase(f"loading export {number} of {len(paths)}")
        done.loads.append(load_export(city, path, warehouse, on_read=display.add_rows))
    done.seconds["load"] = time.perf_counter() - started
    done.newest_change = newest_change(warehouse, city)


def newest_change(warehouse: Path, city: City) -> datetime | None:
    """The newest `source_updated_at` of the city's export table."""
    with warehouse_lock(warehouse), duckdb.connect(str(warehouse), read_only=True) as con:
        (newest,) = con.execute(
            f"select max(source_updated_at) from raw_{city.id}.{EXPORT_TABLE}"  # noqa: S608 - registry id
        ).fetchone()
    return newest


def run_rebuild(instance: DagsterInstance, display: Display, done: Bootstrap) -> None:
    """The rebuild job, launched from the workspace's code location and executed in this
    process (its executor runs every step here), while the display follows its events."""
    from orchestration.resources import prepare_dbt_manifest

    prepare_dbt_manifest()
    result = launch(JOB_NAME, instance=instance, display=display)
    done.run_id = result.run_id
    done.models_built, done.checks_run = display.models_built, display.checks_run
    done.success = result.success
    done.failed_steps = [event.step_key for event in result.all_events if event.is_step_failure]
    done.failed_checks = [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        + (f" ({evaluation.description})" if evaluation.description else "")
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    ]
    done.seconds.update(step_seconds(instance, done.run_id))


def step_seconds(instance: DagsterInstance, run_id: str) -> dict[str, float]:
    """The run's wall time split by what its steps did: dbt (steps that materialized
    models, with their dbt tests), checks (steps that only evaluated checks), the
    publish, and Dagster's own time (the run's wall time outside any step)."""
    kinds = {
        DagsterEventType.RUN_START,
        DagsterEventType.RUN_SUCCESS,
        DagsterEventType.RUN_FAILURE,
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
        DagsterEventType.ASSET_MATERIALIZATION,
    }
    starts: dict[str, float] = {}
    spent: dict[str, float] = {}
    phase: dict[str, str] = defaultdict(lambda: "checks")
    run_start = run_end = None
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event.event_type == DagsterEventType.RUN_START:
            run_start = entry.timestamp
        elif event.event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            run_end = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            phase[event.step_key] = "publish" if tuple(event.asset_key.path) == PUBLISH_KEY else "dbt"
        elif event.step_key in starts:
            spent[event.step_key] = entry.timestamp - starts[event.step_key]
    seconds = {"dbt": 0.0, "checks": 0.0, "publish": 0.0}
    for step, step_time in spent.items():
        seconds[phase[step]] += step_time
    if run_start is not None and run_end is not None:
        seconds["dagster"] = max(0.0, run_end - run_start - sum(spent.values()))
    return seconds


def bootstrap(
    city: City, paths: Sequence[Path], console: Console | None = None, verbose: bool = False
) -> Bootstrap:
    """Load the files, then run the rebuild job on the instance in DAGSTER_HOME."""
    warehouse = warehouse_path()
    instance = DagsterInstance.get()
    display = Display("bootstrap", verbose=verbose, console=console)
    done = Bootstrap(city.id, log=display.log)
    with display.shown():
        load_files(city, paths, warehouse, display, done)
        run_rebuild(instance, display, done)
    return done


def report_lines(done: Bootstrap, city: City, now: datetime | None = None) -> list[str]:
    """What the bootstrap prints at the end: time per phase, rows, failures with
    their fix, and from which day the daily refresh carries on."""
    names = {
        "load": "load",
        "dbt": "dbt models",
        "checks": "checks",
        "publish": "publish",
        "dagster": "Dagster",
    }
    lines = [f"civic311 bootstrap {city.id}: time per phase"]
    lines += [f"  {names[phase]:<11}{seconds:8.1f} s" for phase, seconds in done.seconds.items()]
    lines.append(f"  {'total':<11}{sum(done.seconds.values()):8.1f} s")
    lines.append(
        f"Rows: {done.rows_read:,} read, {done.rows_loaded:,} loaded into raw_{city.id}.{EXPORT_TABLE}, "
        f"{done.rows_quarantined:,} quarantined (`civic311 quarantine --city {city.id}` counts them by rule)"
    )
    lines.append(f"Run {done.run_id}: {done.models_built} models built, {done.checks_run} checks run.")
    if not done.success:
        lines.append("FAILED: nothing new was published.")
        lines += [f"  failed check {check}" for check in done.failed_checks]
        lines += [f"  failed step {step}" for step in done.failed_steps if not done.failed_checks]
        lines.append(
            "Fix: docs/quality.md says what each check guards and how to correct it; after the fix, "
            f"run `civic311 bootstrap --city {city.id}` again with the same files (reloading a file "
            f"changes nothing). The run's log: {done.log}, and `make dev` shows run {done.run_id}."
        )
        return lines
    lines.append("Published: the serving file and Parquet hold the marts.")
    if done.newest_change is None:
        lines.append("The exports hold no change time: load the city's raw partitions with a backfill.")
        return lines
    first = carry_on_day(done.newest_change)
    scheduled = first_scheduled_day(now or datetime.now(UTC))
    lines.append(
        f"The exports' newest change is {done.newest_change.astimezone(UTC):%Y-%m-%d %H:%M} UTC: the daily "
        f"refresh carries on from partition {first} (that day's API rows merge with the export's, "
        "the newest version of each request winning)."
    )
    if first < scheduled:
        # One run over the days, as a backfill from the job's page makes it
        # (`dagster job backfill` would launch a run of the whole job per day).
        last = scheduled - timedelta(days=1)
        lines.append(
            f"The daily refresh loads {scheduled} next; load {first} to {last} first, in one run: "
            f"`civic311 refresh --city {city.id} --from {first} --to {last}`, or in the UI, "
            f"the job refresh_{city.id}, Materialize all, over those days."
        )
    return lines
