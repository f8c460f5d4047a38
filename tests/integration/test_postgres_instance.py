"""A Dagster instance on PostgreSQL, used the way a user uses one: `civic311 dev
--postgres` creates and starts a throwaway cluster (tooling/postgres.py), and the UI's
own `launchPartitionBackfill` backfills NYC's raw asset and everything downstream of
it (the dbt models with their checks, the publish) over days ending with the NYC
sample's, on a warehouse that already holds Boston's recorded requests (of 2022),
built through every model. The daemon splits the raw days into runs by the raw
assets' multi-run backfill policy, then runs the unpartitioned models once, over
the backfill's days.

Then the same days again from refresh_nyc's page (Materialize all: a job backfill): the
daemon splits them into the same runs, each of the whole job over its days.

The first test reads the instance: the runs, their partition ranges and the
materializations are in PostgreSQL (and no SQLite file is written), the password is
in no file or log, and the cluster stops with the UI. The next checks the job
backfill's runs. The third compares the marts (after the asset backfill, and after
the job backfill) and the published serving file with those of one full build of the
same recorded requests (content hash): a lost raw day, or a models' run whose window
misses some of the backfill's days, gives other marts. The fourth shows the models'
run had a window: it left Boston's requests as the build before placed them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, EventLogEntry, deserialize_value
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ingestion.pipeline import load_source
from ingestion.registry import load_registry
from ingestion.sources import source_for
from orchestration.assets.ingestion import raw_asset_key
from orchestration.definitions import build_definitions
from orchestration.launch import launch
from orchestration.partitions import PARTITIONS_PER_RUN_ENV
from orchestration.serving import serving_path
from tests.helpers.data import NYC_SODA_SAMPLE_DAYS, nyc_soda_sample
from tests.helpers.dbt import dbt
from tests.helpers.nyc_sample import serve_nyc_sample
from tests.helpers.samples import END, FEEDS, START, replay_registry
from tests.helpers.warehouse import instance_folder, mart_hashes, query, wire_warehouse
from tests.helpers.webserver import (
    CIVIC311,
    free_port,
    launch_backfill,
    launch_job_backfill,
    start_dev,
    stop_dev,
    wait_for_backfill,
    wait_for_code_location,
)
from tooling.postgres import LocalCluster, Settings
from tooling.replay import ReplayServer
from tooling.replay.catalog import mount_city

pytestmark = pytest.mark.integration

# The last raw run's days. The first run ends the day before and holds the sample's
# requests of 11-15, further before this day than the models' 3-day lookback (dbt's
# lookback_days): a models' run windowed on the last run's days alone misses them.
LAST_RUN_START = date(2012, 11, 20)


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class BackfillRecords:
    """One finished backfill as PostgreSQL holds it: its status, runs and their events."""

    status: dict
    # (status, first partition, last partition) of each run, in launch order.
    runs: list[tuple[str, str | None, str | None]]
    # asset key -> partition -> materializations
    materialized: dict[str, dict[str | None, int]]
    # run index (in `runs`) -> check execution status -> count
    checks: dict[int, dict[str, int]]
    # asset key:check name of every check that failed in a run of the backfill
    failed_checks: list[str]
    # What each failed step and run said (step key: message), to show with a failure.
    failures: list[str]
    events_with_password: int

    def why(self, log: str) -> str:
        """The backfill's status, runs and failures, then the end of the UI's log."""
        said = "\n".join(self.failures) or "no step or run failure recorded"
        return f"{self.status}\nruns {self.runs}\n{said}\n--- the UI's log, its end:\n{log[-3000:]}"


@dataclass(frozen=True)
class UiBackfill:
    """What the UI's backfills left: the asset backfill's records, then those of a job
    backfill of the same days (refresh_nyc's page) launched after it, and the folders
    they wrote."""

    partitions: list[str]
    selection: set[str]
    records: list[dict]
    assets: BackfillRecords
    job: BackfillRecords
    # The dbt invocation that placed Boston's requests before the backfill.
    placed_before: str
    # The marts right after the asset backfill, before the job backfill.
    asset_backfill_marts: dict
    password: str
    warehouse: Path
    full_build: Path
    cluster_folder: Path
    settings: Settings
    log: str
    returncode: int


def load_boston(warehouse: Path, work: Path) -> None:
    """Boston's recorded requests in raw, as its adapter loads them from the replay."""
    boston = replay_registry(work).city("boston")
    with ReplayServer() as server:
        mount_city(server, boston, FEEDS["boston"][0])
        source = source_for(boston, START, END, base_url=boston.base_url(server.url), backoff_seconds=0.01)
        load_source(boston, source, warehouse).raise_on_failed_jobs()


def full_build(
    warehouse: Path, first: date, last: date, replay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One full build of the same source data, in this process on an instance of its
    own: Boston's requests, NYC's raw days in one run, then the `rebuild` job, which
    builds every model from all of raw with no window, runs every check and publishes
    (what `civic311 bootstrap` runs after its load)."""
    load_boston(warehouse, warehouse.parent)
    home = instance_folder(warehouse.parent / "dagster_home")
    try:
        wire_warehouse(warehouse, home, monkeypatch)
        monkeypatch.setenv("CIVIC311_REPLAY_URL", replay_url)
        registry = load_registry()
        nyc = registry.city("nyc")
        with DagsterInstance.get() as instance:
            raw = launch(
                f"refresh_{nyc.id}",
                instance=instance,
                asset_selection=[raw_asset_key(nyc)],
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
                    ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
                },
            )
            assert raw.success
            assert launch("rebuild", instance=instance).success
    finally:
        shutil.rmtree(home, ignore_errors=True)


def instance_records(settings: Settings, backfill_id: str, password: str, status: dict) -> BackfillRecords:
    """The backfill's runs, materializations and check executions, read from PostgreSQL."""
    with closing(settings.connect()) as connection, connection.cursor() as cursor:
        cursor.execute(
            "select r.run_id, r.status, start_tag.value, end_tag.value from runs r "
            "left join run_tags start_tag on start_tag.run_id = r.run_id "
            "and start_tag.key = %s "
            "left join run_tags end_tag on end_tag.run_id = r.run_id "
            "and end_tag.key = %s "
            "where r.backfill_id = %s order by r.id",
            [ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG, backfill_id],
        )
        runs = cursor.fetchall()
        run_ids = [run[0] for run in runs]
        cursor.execute(
            "select asset_key, partition, count(*) from event_logs where dagster_event_type = "
            "'ASSET_MATERIALIZATION' and run_id = any(%s) group by asset_key, partition",
            [run_ids],
        )
        materialized: dict[str, dict[str | None, int]] = {}
        for asset_key, partition, count in cursor.fetchall():
            materialized.setdefault(asset_key, {})[partition] = count
        cursor.execute(
            "select run_id, execution_status, count(*) from asset_check_executions "
            "where run_id = any(%s) group by run_id, execution_status",
            [run_ids],
        )
        checks: dict[int, dict[str, int]] = {}
        for run_id, execution_status, count in cursor.fetchall():
            checks.setdefault(run_ids.index(run_id), {})[execution_status] = count
        cursor.execute(
            "select distinct asset_key, check_name from asset_check_executions "
            "where run_id = any(%s) and execution_status = 'FAILED' order by 1, 2",
            [run_ids],
        )
        failed_checks = [f"{asset_key}:{check_name}" for asset_key, check_name in cursor.fetchall()]
        cursor.execute(
            "select event from event_logs where run_id = any(%s) "
            "and dagster_event_type in ('STEP_FAILURE', 'RUN_FAILURE') order by id",
            [run_ids],
        )
        failures = [failure_said(event) for (event,) in cursor.fetchall()]
        cursor.execute("select count(*) from event_logs where event like %s", [f"%{password}%"])
        (events_with_password,) = cursor.fetchone()
    return BackfillRecords(
        status=status,
        runs=[tuple(run[1:]) for run in runs],
        materialized=materialized,
        checks=checks,
        failed_checks=failed_checks,
        failures=failures,
        events_with_password=events_with_password,
    )


def failure_said(serialized: str) -> str:
    """A STEP_FAILURE or RUN_FAILURE event as "step: message" (the error's own message)."""
    entry = deserialize_value(serialized, EventLogEntry)
    event = entry.dagster_event
    error = getattr(event.event_specific_data, "error", None) if event else None
    message = error.message.strip() if error is not None else entry.user_message
    return f"{entry.step_key or 'run'}: {message[:1500]}"


@pytest.fixture(scope="module")
def ui_backfill(tmp_path_factory, dbt_manifest) -> Iterator[UiBackfill]:
    # The packaged registry: the dbt manifest the session prepared follows it (a registry
    # of other cities would make `civic311 dev` parse dbt again, over the shared manifest).
    tmp_path = tmp_path_factory.mktemp("ui_backfill")
    # A folder the `postgres` user can reach when the tests run as root (pytest's own
    # temporary folders are private to root); stopped and removed after.
    cluster_folder = Path(tempfile.mkdtemp(prefix="civic311-pg-"))
    warehouse = tmp_path / "backfill" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    full_warehouse = tmp_path / "full" / "warehouse.duckdb"
    full_warehouse.parent.mkdir()
    registry = load_registry()
    defs = build_definitions(registry, warehouse)
    nyc = registry.city("nyc")
    # 31 days per raw run, not the default year: two runs over a month and some days.
    per_run = 31
    first_day, last_day = LAST_RUN_START - timedelta(days=per_run), NYC_SODA_SAMPLE_DAYS[1]
    partitions = days(first_day, last_day)
    # NYC's raw asset and everything downstream: the dbt models (with their checks) and
    # the publish. Not the maps: they have their own job and read the boundary layers.
    downstream = AssetSelection.assets(raw_asset_key(nyc)).downstream() - AssetSelection.groups("maps")
    selection = downstream.resolve(defs.resolve_asset_graph())
    records = nyc_soda_sample()

    password = secrets.token_urlsafe(18)
    settings = Settings.from_env({"CIVIC311_PG_PASSWORD": password, "CIVIC311_PG_PORT": str(free_port())})
    port = free_port()
    log = tmp_path / "dev.log"
    try:
        with ReplayServer() as replay, log.open("w") as output, pytest.MonkeyPatch.context() as monkeypatch:
            serve_nyc_sample(replay, records)
            env = {
                **os.environ,
                **settings.environment(),
                "PATH": f"{CIVIC311.parent}{os.pathsep}{os.environ['PATH']}",
                "CIVIC311_WAREHOUSE": str(warehouse),
                "CIVIC311_REPLAY_URL": replay.url,
                PARTITIONS_PER_RUN_ENV: str(per_run),
            }
            dev = start_dev(port, cluster_folder, env, output)
            try:
                # While the UI starts: Boston's requests, through every model. The
                # backfill's models' run is then incremental: it rewrites what its
                # window holds, and leaves Boston's rows alone.
                load_boston(warehouse, warehouse.parent)
                built = dbt(warehouse, tmp_path, "build", "--exclude-resource-type", "unit_test")
                assert built.returncode == 0, built.stdout[-3000:]
                [(placed_before,)] = query(
                    warehouse, "select distinct joined_in_run from intermediate.int_request_areas"
                )

                entry = wait_for_code_location(port, dev)
                assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
                backfill_id = launch_backfill(port, [key.path for key in sorted(selection)], partitions)

                # While the daemon works: the full build to compare with.
                full_build(full_warehouse, first_day, last_day, replay.url, monkeypatch)

                def finished(backfill_id: str) -> BackfillRecords:
                    status = wait_for_backfill(port, backfill_id, dev, timeout=600, poll=2)
                    return instance_records(settings, backfill_id, password, status)

                asset_backfill = finished(backfill_id)
                asset_backfill_marts = mart_hashes(warehouse)
                # The same days again, from refresh_nyc's page: runs of the whole job.
                job_backfill = finished(launch_job_backfill(port, "refresh_nyc", partitions))
            except BaseException:
                print(log.read_text()[-8000:])  # what `civic311 dev` said, shown with the failure
                raise
            finally:
                stop_dev(dev)
        yield UiBackfill(
            partitions=partitions,
            selection={key.to_string() for key in selection},
            records=records,
            warehouse=warehouse,
            full_build=full_warehouse,
            password=password,
            cluster_folder=cluster_folder,
            settings=settings,
            log=log.read_text(),
            returncode=dev.returncode,
            placed_before=placed_before,
            asset_backfill_marts=asset_backfill_marts,
            assets=asset_backfill,
            job=job_backfill,
        )
    finally:
        try:
            LocalCluster(cluster_folder, Settings.from_env({}, password_required=False)).stop()
        finally:
            shutil.rmtree(cluster_folder, ignore_errors=True)


RAW = '["raw", "nyc", "service_requests"]'


def completed(backfill: UiBackfill) -> dict:
    """A backfill's status (BACKFILL_STATUS) once it has completed over every partition."""
    return {
        "__typename": "PartitionBackfill",
        "status": "COMPLETED_SUCCESS",
        "numPartitions": len(backfill.partitions),
    }


def runs_of_days(backfill: UiBackfill) -> list[tuple[str, str, str]]:
    """The successful runs the backfill policy splits the days into: a full run of days, then the rest."""
    first_day, last_day = backfill.partitions[0], backfill.partitions[-1]
    return [
        ("SUCCESS", first_day, (LAST_RUN_START - timedelta(days=1)).isoformat()),
        ("SUCCESS", LAST_RUN_START.isoformat(), last_day),
    ]


def test_a_ui_backfill_runs_with_the_daemon_on_postgres(ui_backfill):
    backfill, assets = ui_backfill, ui_backfill.assets
    assert assets.status == completed(backfill), assets.why(backfill.log)
    # The raw days in runs split as the backfill policy says (a full run of days, then
    # the rest), then one run of the unpartitioned models, which carries no partition.
    assert assets.runs == [*runs_of_days(backfill), ("SUCCESS", None, None)]
    # One materialization per raw day; one of every model and of the publish.
    assert assets.materialized[RAW] == dict.fromkeys(backfill.partitions, 1)
    assert {key: count for key, count in assets.materialized.items() if key != RAW} == {
        key: {None: 1} for key in backfill.selection if key != RAW
    }
    # Every check of the models' run ran, and passed.
    assert set(assets.checks[2]) == {"SUCCEEDED"}, assets.checks
    records = backfill.records
    assert query(
        backfill.warehouse, "select count(*), count(distinct source_id) from raw_nyc.service_requests"
    ) == [(len(records), len(records))]
    assert {
        row[0] for row in query(backfill.warehouse, "select source_id from raw_nyc.service_requests")
    } == {record["unique_key"] for record in records}

    # PostgreSQL held the instance: Dagster wrote no SQLite storage in its home.
    home = backfill.cluster_folder / "dagster_home"
    assert (home / "dagster.yaml").is_file()
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*.db")) == []
    # The password came from the environment only: no event, file or log line holds it.
    assert assets.events_with_password == 0
    files = [path for path in backfill.cluster_folder.rglob("*") if path.is_file()]
    assert [path for path in files if backfill.password in path.read_text(errors="ignore")] == []
    assert backfill.password not in backfill.log
    # The UI's exit stopped the cluster it started.
    assert backfill.returncode == 0, backfill.log[-3000:]
    assert not LocalCluster(backfill.cluster_folder, backfill.settings).running()


def test_a_job_backfill_runs_the_whole_job_over_each_runs_days(ui_backfill):
    backfill, job = ui_backfill, ui_backfill.job
    assert job.status == completed(backfill), job.why(backfill.log)
    # The job's backfill policy is its raw assets': the same runs of days, each of them
    # the whole job (its raw load, checks, dbt models and publish) over its days.
    assert job.runs == runs_of_days(backfill)
    assert job.materialized[RAW] == dict.fromkeys(backfill.partitions, 1)
    # Every model and the publish once per run (the job also builds the models that do
    # not read NYC's raw rows).
    others = {key: count for key, count in job.materialized.items() if key != RAW}
    assert backfill.selection - {RAW} <= set(others)
    assert {str(count) for count in others.values()} == {str({None: 2})}
    # Each run ran its checks, the blocking gates among them. The asset backfill's raw
    # runs failed the same one: the 2012 sample is not fresh (a warning, not a gate).
    assert set(job.checks) == {0, 1}
    models_checks = backfill.assets.checks[2]["SUCCEEDED"]
    assert all(statuses["SUCCEEDED"] > models_checks for statuses in job.checks.values())
    assert job.failed_checks == backfill.assets.failed_checks == [f"{RAW}:fresh_within_cadence"]
    assert job.events_with_password == 0


def test_the_ui_backfill_gives_the_marts_of_one_full_build(ui_backfill):
    warehouse, full = ui_backfill.warehouse, ui_backfill.full_build
    assert ui_backfill.asset_backfill_marts == mart_hashes(full)
    # The job backfill of the same days after it changed nothing.
    assert mart_hashes(warehouse) == mart_hashes(full)
    # And the publish served the same marts.
    served = mart_hashes(serving_path(warehouse))
    assert served == mart_hashes(serving_path(full))
    # Not two empty builds: every recorded NYC request reached the marts or the quarantine.
    (counted,) = query(warehouse, "select count(*) from marts.fct_service_requests where city_id = 'nyc'")[0]
    (held,) = query(warehouse, "select count(*) from quarantine.service_requests where city_id = 'nyc'")[0]
    assert counted + held == len(ui_backfill.records)
    (boston,) = query(warehouse, "select count(*) from marts.fct_service_requests where city_id = 'boston'")[
        0
    ]
    assert boston > 0
    assert served["fct_service_requests"][0] == counted + boston


def test_the_models_run_rewrote_only_the_backfills_window(ui_backfill):
    # Boston's requests changed in 2022, long after the backfill's days: the models'
    # run left their placement as the build before made it (a run without a window
    # places every request again), and placed every NYC request anew.
    placed = query(
        ui_backfill.warehouse,
        "select city_id, joined_in_run = ?, count(distinct request_id) from intermediate.int_request_areas "
        "group by all order by all",
        [ui_backfill.placed_before],
    )
    (counted,) = query(
        ui_backfill.warehouse, "select count(*) from marts.fct_service_requests where city_id = 'nyc'"
    )[0]
    assert placed == [("boston", True, FEEDS["boston"][1]), ("nyc", False, counted)]
