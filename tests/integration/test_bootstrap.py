"""`civic311 bootstrap`, then the daily refresh: no gap, no overlap.

On the real NYC sample: an export taken at noon UTC on 2012-11-20 (the requests whose
latest change came before) goes through `civic311 bootstrap`; then the daily refresh's own
run requests, from the day the bootstrap names, load the rest through the replay. The
marts equal those of one full build over every request (content hash, the columns that
change from run to run left out), and each request is counted once, though the export
and the API both hold the requests of the morning of the 20th. Also: the errors of a
bad city, an unreadable file and a city without export support.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterInstance

from ingestion.registry import load_registry
from orchestration.bootstrap import bootstrap, carry_on_day, newest_change
from tests.helpers.daily import run_daily_refresh
from tests.helpers.data import NYC_SODA_SAMPLE, REPO
from tests.helpers.registry import EVERY_CITY, write_registry
from tests.helpers.warehouse import instance_folder, mart_hashes, query, wire_warehouse
from tooling.replay import ReplayServer
from tooling.replay.records import system_stamp

pytestmark = pytest.mark.integration

# The export is taken part-way through a day; the sample's requests changed up to the
# end of the next day are the history this test follows.
EXPORT_TAKEN_AT = datetime(2012, 11, 20, 12, tzinfo=UTC)
HISTORY_END = datetime(2012, 11, 22, tzinfo=UTC)


def changed_at(record: dict) -> datetime:
    """When the portal last changed a request: the latest of NYC's change fields (the
    registry's export.updated_at_fields), NYC wall clock, in UTC. The export loader
    reads a file's rows the same way; the replay stamps `:updated_at` with it."""
    nyc = load_registry().city("nyc")
    local = ZoneInfo(nyc.timezone)
    moments = [datetime.fromisoformat(record[f]) for f in nyc.export.updated_at_fields if record.get(f)]
    return max(moments).replace(tzinfo=local).astimezone(UTC)


def history() -> list[dict]:
    """The sample's requests last changed before HISTORY_END, as recorded."""
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    return [record for record in records if changed_at(record) < HISTORY_END]


def served(records: list[dict]) -> list[dict]:
    """The records as the portal's API serves them: stamped when they last changed."""
    return [{**r, ":updated_at": system_stamp(changed_at(r).replace(tzinfo=None))} for r in records]


def civic311_bootstrap(*arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    return subprocess.run(  # noqa: S603 - fixed argv
        [str(Path(sys.executable).with_name("civic311")), "bootstrap", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
    )


def test_after_a_bootstrap_the_daily_refresh_carries_on_with_no_gap_and_no_overlap(
    tmp_path, dagster_home, monkeypatch, request
):
    records = history()
    exported = [r for r in records if changed_at(r) < EXPORT_TAKEN_AT]
    later = [r for r in records if changed_at(r) >= EXPORT_TAKEN_AT]
    # Requests changed on the export's last day both before and after it was taken.
    assert {changed_at(r).date() for r in exported} & {changed_at(r).date() for r in later}
    # Every city, NYC's pages changed: the bootstrap prepares the manifest every test shares.
    registry = write_registry(tmp_path / "cities.yaml", cities=EVERY_CITY, page_size=400)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry))
    nyc = load_registry().city("nyc")

    # One full build over every request: the whole history as one export.
    everything = tmp_path / "everything.json"
    everything.write_text(json.dumps(records))
    full_home = instance_folder(tmp_path / "full_home")
    request.addfinalizer(lambda: shutil.rmtree(full_home, ignore_errors=True))
    full = wire_warehouse(tmp_path / "full" / "warehouse.duckdb", full_home, monkeypatch)
    assert bootstrap(nyc, [everything]).success

    # The export taken at noon, through the command.
    export = tmp_path / "export.json"
    export.write_text(json.dumps(exported))
    warehouse = wire_warehouse(tmp_path / "bootstrapped" / "warehouse.duckdb", dagster_home, monkeypatch)
    done = civic311_bootstrap("--city", "nyc", "--from-file", str(export))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first_day = carry_on_day(newest_change(warehouse, nyc))
    assert first_day == EXPORT_TAKEN_AT.date()
    assert f"carries on from partition {first_day}" in done.stdout
    assert f"{len(exported):,} read, {len(exported):,} loaded" in done.stdout
    assert "checks run." in done.stdout and "FAILED" not in done.stdout

    # The daily refresh's own runs, a day at a time, from that day to the history's end:
    # the city's load, then the models (no command here prepares the manifest again).
    only_nyc = write_registry(tmp_path / "nyc.yaml", page_size=400)
    monkeypatch.setenv("CIVIC311_CITIES", str(only_nyc))
    instance = DagsterInstance.get()
    days = [first_day + timedelta(days=n) for n in range((HISTORY_END.date() - first_day).days)]
    with ReplayServer() as server:
        server.add_dataset("fhrw-4uyv", served(records), id_field="unique_key", prefix="/nyc")
        server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        for day in days:
            tick_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).replace(hour=6)
            (load, loaded), (models, built) = run_daily_refresh(instance, tick_at)
            assert (load.job_name, load.partition_key, models.job_name) == (
                "refresh_nyc",
                day.isoformat(),
                "refresh_models",
            )
            assert loaded.success and built.success, day

    # The export and the API both hold the morning's requests; each is counted once.
    (overlap,) = query(
        warehouse,
        "select count(*) from raw_nyc.service_requests_export "
        "join raw_nyc.service_requests using (source_id)",
    )[0]
    assert overlap > 0
    assert query(
        warehouse,
        "select count(*), count(distinct request_id) from marts.fct_service_requests where city_id = 'nyc'",
    ) == query(
        full,
        "select count(*), count(distinct request_id) from marts.fct_service_requests where city_id = 'nyc'",
    )
    (counted,) = query(warehouse, "select count(*) from marts.fct_service_requests")[0]
    (held,) = query(warehouse, "select count(*) from quarantine.service_requests")[0]
    assert counted + held == len(records)
    # dim_city holds a row per registry city: the daily refresh's registry is NYC's alone.
    carried_on, built = mart_hashes(warehouse), mart_hashes(full)
    assert carried_on.pop("dim_city")[0] == 1 and built.pop("dim_city")[0] == len(EVERY_CITY)
    assert carried_on == built
    nyc_city = "select * from marts.dim_city where city_id = 'nyc'"
    assert query(warehouse, nyc_city) == query(full, nyc_city)


def first_line(done: subprocess.CompletedProcess) -> str:
    return done.stderr.strip().splitlines()[-1]


def test_bootstrap_errors_name_the_city_the_file_and_the_fix(tmp_path, warehouse):
    unknown = civic311_bootstrap("--city", "atlantis", "--from-file", str(NYC_SODA_SAMPLE))
    assert unknown.returncode == 2
    assert "unknown city 'atlantis'" in first_line(unknown) and "Fix: give --city" in first_line(unknown)

    missing = tmp_path / "311_Service_Requests.csv"
    gone = civic311_bootstrap(
        "--city", "nyc", "--from-file", str(NYC_SODA_SAMPLE), "--from-file", str(missing)
    )
    assert gone.returncode == 2
    assert (
        "nyc" in first_line(gone)
        and str(missing) in first_line(gone)
        and "check the path" in first_line(gone)
    )
    # A bad second file stops the bootstrap before the first is loaded.
    assert not warehouse.exists()

    no_export = civic311_bootstrap("--city", "toronto", "--from-file", str(NYC_SODA_SAMPLE))
    assert no_export.returncode == 2
    assert "toronto: the registry has no export block" in first_line(no_export)
    assert "Fix: add an `export:` block" in first_line(no_export)
