"""A Dagster run of a civic311 job that can die by SIGKILL inside the publish; run as
a child process.

    python -m tests.helpers.killable_run JOB [--days FIRST LAST] [--as-of AS_OF] [--kill-at POINT]

The warehouse, registry, Dagster home and replay come from the environment
(CIVIC311_WAREHOUSE, CIVIC311_CITIES, DAGSTER_HOME, CIVIC311_REPLAY_URL), as in
any run. The job runs in process, with the in-process executor, over the
partitions FIRST..LAST. AS_OF pins the instant the dbt models treat as now (the
`as_of` var), as a backfill pins it, so two runs at different times build the
same marts. The kill points wrap orchestration.serving.publish from here, never
from production code:

    publish_copy   after the first table of the new publish is written as Parquet
    before_swap    the new serving file complete, just before os.replace swaps it in

The kills inside dbt are made by the test, which watches dbt's log and kills
this process's group (this process and the dbt it started).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import date

KILL_POINTS = ("publish_copy", "before_swap")


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class _DyingConnection:
    """A DuckDB connection that dies right after its first COPY has finished."""

    def __init__(self, connection) -> None:
        self._connection = connection

    def execute(self, sql: str, *args, **kwargs):
        result = self._connection.execute(sql, *args, **kwargs)
        if sql.lstrip().lower().startswith("copy "):
            _die()
        return result

    def __getattr__(self, name: str):
        return getattr(self._connection, name)


class _Module:
    """A module seen through a few replaced attributes."""

    def __init__(self, module, **replaced) -> None:
        self._module, self._replaced = module, replaced

    def __getattr__(self, name: str):
        return self._replaced[name] if name in self._replaced else getattr(self._module, name)


def _install(kill_at: str) -> None:
    import duckdb

    from orchestration import serving

    # Each replaces what orchestration.serving sees of a module, nothing else.
    if kill_at == "publish_copy":
        original_connect = duckdb.connect

        def connect(database=":memory:", *args, **kwargs):
            connection = original_connect(database, *args, **kwargs)
            # The publish writes its new serving file as `.<serving name>.<publish id>`.
            if os.path.basename(str(database)).startswith(f".{serving.SERVING_NAME}."):
                return _DyingConnection(connection)
            return connection

        serving.duckdb = _Module(duckdb, connect=connect)
    elif kill_at == "before_swap":
        original_replace = os.replace

        def replace(source, target, *args, **kwargs):
            if os.path.basename(str(target)) == serving.SERVING_NAME:
                _die()
            return original_replace(source, target, *args, **kwargs)

        serving.os = _Module(os, replace=replace)


def _pin_as_of(as_of: str) -> None:
    from orchestration.assets import transformation

    registry_vars = transformation.dbt_vars

    def pinned(**extra):
        return registry_vars(**extra, as_of=as_of)

    transformation.dbt_vars = pinned


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    parser.add_argument("--days", nargs=2, type=date.fromisoformat, metavar=("FIRST", "LAST"))
    parser.add_argument("--as-of")
    parser.add_argument("--kill-at", choices=KILL_POINTS)
    args = parser.parse_args(argv)
    if args.kill_at:
        _install(args.kill_at)
    if args.as_of:
        _pin_as_of(args.as_of)
    from orchestration.launch import launch, launch_days

    result = launch_days(args.job, *args.days) if args.days else launch(args.job)
    failed = [event.step_key for event in result.all_events if event.is_step_failure]
    print(f"run {result.run_id}: {'success' if result.success else 'failed at ' + ', '.join(failed)}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
