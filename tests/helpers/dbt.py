"""dbt run on its own by a test: its own target and log folders, so it never
touches the manifest Dagster reads."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from tests.helpers.data import REPO


def dbt(
    warehouse: Path,
    work_dir: Path,
    *args: str,
    project: Path = REPO / "dbt_project",
    window: tuple[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`dbt <args>` on `warehouse` and `project`, with its own target and log dirs under
    `work_dir`, so it never touches the manifest Dagster reads. The active registry
    (CIVIC311_CITIES) is passed as dbt vars, as civic311 passes it, unless `args` has `--vars`;
    `window` (first day, day after the last, YYYY-MM-DD) is the run window, as Dagster
    passes it (orchestration.resources.window_env); without it dbt has none.
    `environment` is set last, over all of these."""
    from orchestration.resources import dbt_vars, window_env

    if "--vars" not in args:
        args = (*args, "--vars", dbt_vars())
    days = tuple(date.fromisoformat(day) for day in window) if window else ()
    env = {
        **os.environ,
        **window_env(*days),
        "CIVIC311_WAREHOUSE": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        **(environment or {}),
    }
    return subprocess.run(  # noqa: S603 - fixed argv
        [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(work_dir / "dbt_target"),
            "--log-path",
            str(work_dir / "dbt_logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_dbt(
    warehouse: Path,
    select: str,
    work_dir: Path,
    dbt_vars: dict | None = None,
    window: tuple[str, str] | None = None,
    full_refresh: bool = False,
    exclude: str | None = None,
    unit_tests: bool = False,
) -> subprocess.CompletedProcess:
    """`dbt build --select <select>` into `warehouse`. Hands back the outcome, for builds
    that must fail; `dbt_build` is the one that must succeed. dbt's unit tests read
    fixed rows, never the warehouse's, so they run only with `unit_tests` (samples_built
    runs every one of them once a session). `window` is the run window (see `dbt`)."""
    from orchestration.resources import dbt_vars as registry_dbt_vars

    excluded = [*([exclude] if exclude else []), *([] if unit_tests else ["resource_type:unit_test"])]
    return dbt(
        warehouse,
        work_dir,
        "build",
        "--select",
        select,
        # A test runs only when all it reads is selected: a partial build (say
        # +int_service_requests) must not run a seed's test on unbuilt seeds.
        "--indirect-selection",
        "cautious",
        "--vars",
        registry_dbt_vars(**(dbt_vars or {})),
        *(["--full-refresh"] if full_refresh else []),
        *(["--exclude", " ".join(excluded)] if excluded else []),
        window=window,
    )


def dbt_build(warehouse: Path, select: str, work_dir: Path, **options) -> str:
    """`run_dbt` that fails the test with dbt's output when dbt fails; returns the output."""
    done = run_dbt(warehouse, select, work_dir, **options)
    assert done.returncode == 0, f"dbt build --select {select} failed:\n{done.stdout[-4000:]}"
    return done.stdout
