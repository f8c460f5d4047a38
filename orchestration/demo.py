"""`civic311 demo`: one Dagster run over the demo window, then a short summary."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import duckdb
from dagster import DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from ingestion.pipeline import warehouse_path

JOB_NAME = "daily_refresh"


def run_partition_range(
    first: date,
    last: date,
    defs=None,
    instance: DagsterInstance | None = None,
    job_name: str = JOB_NAME,
):
    """Run a partitioned job once over partitions first..last (inclusive), as a backfill would."""
    if defs is None:
        # Built now, not imported: the module-level `defs` fixed its warehouse
        # when first imported, and the environment may have changed since.
        from orchestration.definitions import build_definitions

        defs = build_definitions()
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        instance=instance or DagsterInstance.get(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        raise_on_error=False,
    )


def summary(warehouse: Path, city_id: str) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        layers = [
            ("raw", f"raw_{city_id}.service_requests"),
            ("staging", f"staging.stg_{city_id}__service_requests"),
            ("intermediate", "intermediate.int_service_requests"),
            ("marts", "marts.fct_service_requests"),
        ]
        counts = [(name, con.execute(f"select count(*) from {t}").fetchone()[0]) for name, t in layers]  # noqa: S608
        first, last, open_share = con.execute(
            "select min(requested_at_local), max(requested_at_local), avg((status = 'open')::int) "
            "from marts.fct_service_requests where city_id = ?",
            [city_id],
        ).fetchone()
        top = con.execute(
            """
            select service_name, count(*) as requests,
                   median(hours_to_close) as median_hours_to_close
            from marts.fct_service_requests
            where city_id = ?
            group by service_name
            order by requests desc
            limit 8
            """,
            [city_id],
        ).fetchall()
    lines = [
        "",
        "civic311 demo: SYNTHETIC NYC-shaped data (generated, not real 311 records)",
        "",
        "Rows per layer:",
        *(f"  {name:<13}{n:>10,}" for name, n in counts),
        "",
        f"Requested: {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} (city local time); "
        f"{open_share:.1%} still open",
        "",
        f"  {'service type':<30}{'requests':>10}{'median h to close':>20}",
        *(f"  {t:<30}{n:>10,}{(f'{h:.1f}' if h is not None else '-'):>20}" for t, n, h in top),
        "",
        f"Warehouse: {warehouse}",
        "Next: `make dev` opens the Dagster UI on http://127.0.0.1:3000 over this warehouse.",
    ]
    return "\n".join(lines)


def run_demo(city_id: str, replay_url: str, start: date, end: date) -> int:
    os.environ["CIVIC311_REPLAY_URL"] = replay_url
    from orchestration.resources import dbt_project

    dbt_project.preparer.prepare(dbt_project)
    result = run_partition_range(start, end - timedelta(days=1), job_name=f"refresh_{city_id}")
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        print(f"civic311 demo: the run failed at {', '.join(failed) or 'a check'}; see the log above.")
        return 1
    print(summary(warehouse_path(), city_id))
    return 0
