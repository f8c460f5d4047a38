"""A Dagster instance on PostgreSQL, used the way a user uses one: `civic311 dev
--postgres` creates and starts a throwaway cluster (tooling/postgres.py), the UI's own
`launchPartitionBackfill` backfills NYC's raw asset over days ending with the NYC
sample's, and the daemon splits the backfill into runs by the raw assets' multi-run
backfill policy. The runs, their partition ranges and one materialization per day are
in PostgreSQL (and no SQLite file is written), the sample's rows are in the warehouse,
the password is in no file or log, and the cluster stops with the UI."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest

from ingestion.registry import load_registry
from orchestration.assets.ingestion import raw_asset_key
from orchestration.definitions import build_definitions
from tests.helpers.data import NYC_SODA_SAMPLE_DAYS, REPO, nyc_soda_sample
from tests.helpers.warehouse import query
from tests.helpers.webserver import free_port, graphql, wait_for_code_location
from tooling.postgres import LocalCluster, Settings
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions }
  ... on PythonError { message } } }"""
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
# The last run's days: the backfill's first run ends the day before, so both runs load sample rows.
LAST_RUN_START = date(2012, 11, 18)


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


@pytest.fixture
def cluster_folder():
    """A folder for the cluster that the `postgres` user can reach when the tests run as
    root (pytest's own temporary folders are private to root); stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="civic311-pg-"))
    yield folder
    try:
        LocalCluster(folder, Settings.from_env({}, password_required=False)).stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_ui_backfill_runs_with_the_daemon_on_postgres(tmp_path, cluster_folder, dbt_manifest):
    # The packaged registry: the dbt manifest the session prepared follows it (a registry
    # of other cities would make `civic311 dev` parse dbt again, over the shared manifest).
    warehouse = tmp_path / "warehouse.duckdb"
    registry = load_registry()
    raw_nyc = build_definitions(registry, warehouse).resolve_assets_def(raw_asset_key(registry.city("nyc")))
    per_run = raw_nyc.backfill_policy.max_partitions_per_run
    first_day, last_day = LAST_RUN_START - timedelta(days=per_run), NYC_SODA_SAMPLE_DAYS[1]
    partitions = days(first_day, last_day)
    records = nyc_soda_sample()

    password = secrets.token_urlsafe(18)
    settings = Settings.from_env({"CIVIC311_PG_PASSWORD": password, "CIVIC311_PG_PORT": str(free_port())})
    port = free_port()
    log = tmp_path / "dev.log"
    civic311 = Path(sys.executable).with_name("civic311")
    with ReplayServer() as replay, log.open("w") as output:
        replay.add_dataset(
            "fhrw-4uyv", records, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
        )
        replay.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
        env = {
            **os.environ,
            **settings.environment(),
            "PATH": f"{civic311.parent}{os.pathsep}{os.environ['PATH']}",
            "CIVIC311_WAREHOUSE": str(warehouse),
            "CIVIC311_REPLAY_URL": replay.url,
        }
        dev = subprocess.Popen(  # noqa: S603
            [str(civic311), "dev", "--port", str(port), "--postgres", str(cluster_folder)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            entry = wait_for_code_location(port, dev)
            assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry

            launched = graphql(
                port,
                LAUNCH_BACKFILL,
                {
                    "params": {
                        "partitionNames": partitions,
                        "assetSelection": [{"path": ["raw", "nyc", "service_requests"]}],
                    }
                },
            )["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_id = launched["backfillId"]
            deadline = time.monotonic() + 600
            while (status := graphql(port, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"])[
                "status"
            ] not in FINISHED and time.monotonic() < deadline:
                time.sleep(2)
            assert status == {
                "__typename": "PartitionBackfill",
                "status": "COMPLETED_SUCCESS",
                "numPartitions": len(partitions),
            }, log.read_text()[-5000:]

            with closing(settings.connect()) as connection, connection.cursor() as cursor:
                cursor.execute(
                    "select r.status, start_tag.value, end_tag.value from runs r "
                    "join run_tags start_tag on start_tag.run_id = r.run_id "
                    "and start_tag.key = 'dagster/asset_partition_range_start' "
                    "join run_tags end_tag on end_tag.run_id = r.run_id "
                    "and end_tag.key = 'dagster/asset_partition_range_end' "
                    "where r.backfill_id = %s",
                    [backfill_id],
                )
                runs = sorted(cursor.fetchall(), key=lambda run: run[1])
                cursor.execute(
                    "select partition, count(*) from event_logs where dagster_event_type = "
                    "'ASSET_MATERIALIZATION' and asset_key = %s group by partition",
                    ['["raw", "nyc", "service_requests"]'],
                )
                materialized = dict(cursor.fetchall())
                cursor.execute("select count(*) from event_logs where event like %s", [f"%{password}%"])
                (events_with_password,) = cursor.fetchone()
        except BaseException:
            print(log.read_text()[-8000:])  # what `civic311 dev` said, shown with the failure
            raise
        finally:
            if dev.poll() is None:
                dev.send_signal(signal.SIGTERM)
            try:
                dev.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
                dev.wait()

    # Two runs, split as the backfill policy says: a full run of days, then the rest.
    assert runs == [
        ("SUCCESS", first_day.isoformat(), (LAST_RUN_START - timedelta(days=1)).isoformat()),
        ("SUCCESS", LAST_RUN_START.isoformat(), last_day.isoformat()),
    ]
    assert materialized == dict.fromkeys(partitions, 1)
    assert query(warehouse, "select count(*), count(distinct source_id) from raw_nyc.service_requests") == [
        (len(records), len(records))
    ]
    assert {row[0] for row in query(warehouse, "select source_id from raw_nyc.service_requests")} == {
        record["unique_key"] for record in records
    }

    # PostgreSQL held the instance: Dagster wrote no SQLite storage in its home.
    home = cluster_folder / "dagster_home"
    assert (home / "dagster.yaml").is_file()
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*.db")) == []
    # The password came from the environment only: no event, file or log line holds it.
    assert events_with_password == 0
    files = [path for path in cluster_folder.rglob("*") if path.is_file()]
    assert [path for path in files if password in path.read_text(errors="ignore")] == []
    assert password not in log.read_text()
    # The UI's exit stopped the cluster it started.
    assert dev.returncode == 0, log.read_text()[-3000:]
    assert not LocalCluster(cluster_folder, settings).running()
