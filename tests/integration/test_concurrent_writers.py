"""Two writers at once: each waits its turn on the warehouse's lock and nothing is lost.

Two `civic311 load` processes of different NYC exports start 0.1, 0.5 and 1 s apart
into one warehouse; a load with `--wait 0` gives up at once with the lock's line and
leaves nothing behind; and a CLI load starts while a Dagster raw step holds the lock.
In every case both files' rows are in the warehouse exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from ingestion.pipeline import load_source, working_root
from ingestion.registry import load_registry
from ingestion.sources import source_for
from ingestion.warehouse_lock import lock_path, warehouse_lock
from orchestration.assets.ingestion import build_raw_assets
from orchestration.resources import build_resources
from tests.helpers.data import NYC_SODA_SAMPLE, REPO, SHARED_DATA
from tests.helpers.registry import write_registry
from tooling.replay import Fault, FaultPlan, ReplayServer

pytestmark = pytest.mark.integration

ANIMALS = SHARED_DATA / "nyc" / "nyc311_export_illegal_animal_2010_2025.csv"
MIXED = SHARED_DATA / "nyc" / "nyc311_mixed_2010_2020_sample.csv"
PARTITION = "2012-11-20"


def _ids(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["Unique Key"] for row in csv.DictReader(handle)}


def _load(path: Path, *extra: str) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "orchestration.cli",
        "load",
        "--city",
        "nyc",
        *extra,
        "--from-file",
        str(path),
    ]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _stored(warehouse: Path, table: str) -> tuple[int, set[str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(f"select source_id from raw_nyc.{table}").fetchall()  # noqa: S608
    return len(rows), {row[0] for row in rows}


def _wait_for_holder(warehouse: Path, holder: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while holder not in (lock_path(warehouse).read_text() if lock_path(warehouse).exists() else ""):
        assert time.monotonic() < deadline, f"the lock never showed {holder!r}"
        time.sleep(0.02)


def _no_run_left(warehouse: Path) -> None:
    runs = working_root(warehouse) / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())


@pytest.fixture(scope="module")
def expected() -> set[str]:
    return _ids(ANIMALS) | _ids(MIXED)


@pytest.mark.parametrize("gap", [0.1, 0.5, 1.0])
def test_two_loads_started_apart_both_land_exactly_once(warehouse, expected, gap):
    first = _load(ANIMALS)
    time.sleep(gap)
    second = _load(MIXED)
    done = [_finish(first), _finish(second)]
    assert [code for code, _, _ in done] == [0, 0], [err[-2000:] for _, _, err in done]
    rows, ids = _stored(warehouse, "service_requests_export")
    assert rows == len(ids) == len(expected) and ids == expected
    # Whichever came second waited for the other, and said who it was waiting for.
    waited = [err for _, _, err in done if "is being written by pid" in err]
    assert len(waited) <= 1 and all("waiting as long as it takes" in err for err in waited)
    assert all("Traceback" not in err for _, _, err in done)
    _no_run_left(warehouse)


def test_a_load_told_not_to_wait_gives_up_with_the_holder_and_loses_nothing(warehouse):
    assert _finish(_load(ANIMALS))[0] == 0
    # Another writer (this test process, by the same OS lock) holds the warehouse.
    with warehouse_lock(warehouse, command="a writer of the test"):
        code, out, err = _finish(_load(MIXED, "--wait", "0"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"is being written by pid {os.getpid()} (a writer of the test) since " in err
    assert "--wait SECONDS" in err
    rows, ids = _stored(warehouse, "service_requests_export")
    assert rows == len(ids) and ids == _ids(ANIMALS)
    _no_run_left(warehouse)
    # Nothing of the refused load is pending anywhere: run again, it loads in full.
    assert _finish(_load(MIXED, "--wait", "0"))[0] == 0
    assert _stored(warehouse, "service_requests_export")[1] == _ids(ANIMALS) | _ids(MIXED)


def test_a_cli_load_during_a_dagster_raw_step_waits_for_it(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=100)))
    city = load_registry().city("nyc")
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    # The first page is answered 8 s late, so the raw step holds the lock that long.
    server = ReplayServer(faults=FaultPlan(queue=[Fault(delay=8.0)]))
    server.add_dataset("fhrw-4uyv", records, updated_at_fields=("created_date",), prefix="/nyc")
    server.add_dataset("erm2-nwe9", [], prefix="/nyc")
    cli: dict[str, tuple[int, str, str]] = {}

    def load_during_the_step() -> None:
        _wait_for_holder(warehouse, "dagster run")
        cli["done"] = _finish(_load(MIXED))

    with server:
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        loader = threading.Thread(target=load_during_the_step)
        loader.start()
        result = materialize(
            [build_raw_assets(city, warehouse)],
            partition_key=PARTITION,
            resources=build_resources(),
            instance=DagsterInstance.get(),
        )
        loader.join(timeout=300)
        # The same window loaded alone, into a warehouse of its own: what the step must hold.
        start = datetime.fromisoformat(PARTITION).replace(tzinfo=UTC)
        source = source_for(
            city, start=start, end=start + timedelta(days=1), base_url=city.base_url(server.url)
        )
        clean = tmp_path / "clean" / "warehouse.duckdb"
        load_source(city, source, clean).raise_on_failed_jobs()

    assert result.success
    code, _, err = cli["done"]
    assert code == 0, err[-2000:]
    assert f"is being written by pid {os.getpid()} (dagster run {result.run_id}, step raw_nyc)" in err
    rows, ids = _stored(warehouse, "service_requests_export")
    assert rows == len(ids) and ids == _ids(MIXED)
    raw_rows, raw_ids = _stored(warehouse, "service_requests")
    clean_rows, clean_ids = _stored(clean, "service_requests")
    assert raw_rows == len(raw_ids) == clean_rows > 0 and raw_ids == clean_ids
    _no_run_left(warehouse)
