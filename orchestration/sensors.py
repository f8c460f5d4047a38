"""Sensors. `dead_runs` frees what a killed run left claimed in the Dagster instance.

A run killed outright (SIGKILL, the OOM killer, a pulled plug) never ends: it stays
STARTED, keeping its `duckdb_warehouse` pool slot and its place among the
concurrent runs, so every later run waits for that pool forever. Dagster's own
run monitoring cannot see it: the default run launcher has no worker health
check, and runs executed in process (the demo, the tests) have no launcher.
"""

from __future__ import annotations

import os

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def release_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every started run whose processes (the run worker and each step's,
    from the run's events) are all gone, and free its pool slots; returns their ids.
    Only for an instance stored in SQLite, whose runs all live on this machine."""
    if not isinstance(instance.run_storage, SqliteRunStorage):
        return []
    released = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        started = instance.all_logs(
            run.run_id, of_type={DagsterEventType.RUN_START, DagsterEventType.STEP_START}
        )
        pids = {entry.dagster_event.pid for entry in started if entry.dagster_event} - {None}
        if not pids or any(_alive(pid) for pid in pids):
            continue
        instance.report_run_failed(
            run,
            f"The run's processes ({', '.join(map(str, sorted(pids)))}) are gone: it was killed. "
            "civic311 marked it failed and freed its duckdb_warehouse slot; rerun its partitions.",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


@sensor(name="dead_runs", minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING)
def dead_runs_sensor(context: SensorEvaluationContext) -> SkipReason:
    """Under `dagster dev`: once a minute, release the runs that were killed."""
    released = release_dead_runs(context.instance)
    return SkipReason(f"released killed runs: {', '.join(released)}" if released else "no killed run")
