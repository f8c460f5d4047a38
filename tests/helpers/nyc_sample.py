"""The NYC sample's Dagster backfill: its feed (with requests whose clock is off),
the run, and the finished run's folders that tests restore a copy of."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from dagster import JobExecutionResult

from orchestration.launch import launch_days
from tests.helpers.data import NYC_SODA_SAMPLE_DAYS
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import wire_warehouse
from tooling.replay import ReplayServer
from tooling.replay.records import system_stamp

# A day after the NYC sample's days whose window (with NYC's 72 h lookback) holds only
# the requests `future_dated` stamps on it.
BAD_DAY = date(2012, 12, 1)
BAD_ROWS = 40


def future_dated(records: list[dict]) -> list[dict]:
    """Copies of real requests, made in 2031 by their clock and changed on BAD_DAY: a
    feed whose clock is off."""
    bad = []
    for n, record in enumerate(records[:BAD_ROWS]):
        row = {k: v for k, v in record.items() if not k.startswith(":")}
        row["unique_key"] = f"9{n:08d}"
        row["created_date"] = "2031-06-01T10:00:00.000"
        row[":updated_at"] = system_stamp(datetime(2012, 12, 1, 10))  # naive UTC, as Socrata stamps
        bad.append(row)
    return bad


def serve_nyc_sample(server: ReplayServer, feed: list[dict]) -> None:
    """`feed` as NYC's historical dataset on the replay, stamped from created_date; the
    current dataset answers empty."""
    server.add_dataset(
        "fhrw-4uyv", feed, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
    )
    server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")


def run_nyc_sample(
    feed: list[dict],
    registry_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    days: tuple[date, date] = NYC_SODA_SAMPLE_DAYS,
) -> JobExecutionResult:
    """`feed` served as NYC's historical dataset (the current one answers empty), then
    one refresh_nyc run over `days`, as a backfill runs it, on the instance in
    DAGSTER_HOME, launched from the workspace's code location (into the warehouse the
    environment names)."""
    write_registry(registry_file, page_size=400)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry_file))
    with ReplayServer() as server:
        serve_nyc_sample(server, feed)
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        return launch_days("refresh_nyc", *days)


@dataclass(frozen=True)
class Backfill:
    """A finished Dagster run, its feed, and the folders it wrote: the warehouse's (the
    serving file and dlt's working files beside it) and the Dagster home."""

    result: JobExecutionResult
    feed: list[dict]
    warehouse: Path
    dagster_home: Path

    def restore(self, folder: Path, dagster_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """Private copies of both folders, wired through the environment as the
        `warehouse` fixture wires its own; returns the copied warehouse."""
        shutil.copytree(self.warehouse.parent, folder, symlinks=True)
        shutil.copytree(self.dagster_home, dagster_home, dirs_exist_ok=True)
        return wire_warehouse(folder / self.warehouse.name, dagster_home, monkeypatch)
