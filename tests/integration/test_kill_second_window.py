"""The daily pattern, killed: a load killed part-way is finished by the next day's load.

A warehouse holds window 1 from a clean run. The load of window 2 is SIGKILLed
inside normalize (after one of several extracted files) or inside load (after one
of several load jobs); then the next day's load, of window 3, runs. Window 3's read
does not reach into window 2, so window 2's rows can only come from the package the
killed run left behind. Each window must then be in the table exactly once, and the
dataset equal a clean run of windows 1, 2 and 3.

The same rerun with `ingestion.pipeline.finish_pending` disabled (in the child only)
must lose a window: that is what shows these tests test the recovery.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from tests.helpers.data import NYC_SODA_SAMPLE, REPO, SHARED_DATA
from tests.helpers.killable_load import RECOVERY_DISABLED
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import dataset_hash, query
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

# dlt starts a new file every 400 rows, so a window's package holds several files and
# load jobs, as a large load's does.
SEVERAL_FILES = {"DATA_WRITER__FILE_MAX_ITEMS": "400"}
MID_STEP_POINTS = ("mid_normalize", "mid_load_jobs")


@dataclass
class Daily:
    """One city's feed in three windows, and the warehouse folder that gets window 1."""

    registry: Path
    city_id: str
    table: str
    windows: list[list[str]]  # each window's feed arguments for killable_load
    window_ids: list[frozenset[str]]  # the source ids each window delivers
    options: list[str]
    window1: Path

    @property
    def dataset(self) -> str:
        return f"raw_{self.city_id}"

    def load(self, folder: Path, window: int, *options: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "tests.helpers.killable_load", str(self.registry), self.city_id]
        argv += [str(folder / "warehouse.duckdb"), *self.windows[window - 1], *self.options, *options]
        env = {**os.environ, **SEVERAL_FILES}
        return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # noqa: S603

    def rows_by_window(self, folder: Path) -> list[tuple[int, int]]:
        """Per window: (its ids in the table, its rows in the table); then (0, rows of no window)."""
        counted = Counter(
            dict(
                query(
                    folder / "warehouse.duckdb",
                    f'select source_id, count(*) from "{self.dataset}"."{self.table}" group by 1',  # noqa: S608
                )
            )
        )
        per_window = [(len(ids & counted.keys()), sum(counted[i] for i in ids)) for ids in self.window_ids]
        elsewhere = sum(counted.values()) - sum(rows for _, rows in per_window)
        return [*per_window, (0, elsewhere)]

    def exactly_once(self, *windows: int) -> list[tuple[int, int]]:
        """What `rows_by_window` gives when `windows` are loaded once each and nothing else."""
        loaded = [len(ids) if w in windows else 0 for w, ids in enumerate(self.window_ids, start=1)]
        return [(n, n) for n in loaded] + [(0, 0)]


def _socrata(folder: Path, server: ReplayServer) -> Daily:
    """NYC's SODA sample by day of request: up to 19 November 2012, the 20th, the 21st."""
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    server.add_dataset(
        "fhrw-4uyv", records, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
    )
    server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
    days = ("2012-06-26", "2012-11-20", "2012-11-21", "2012-11-22")
    # The replay stamps :updated_at from created_date; no lookback, so window 3's read
    # starts where window 2 ends.
    registry = write_registry(folder / "cities.yaml", cities=("nyc",), page_size=200, lookback_hours=0)
    return Daily(
        registry,
        "nyc",
        "service_requests",
        windows=[
            [server.url, f"{start}T00:00:00+00:00", f"{end}T00:00:00+00:00"] for start, end in pairwise(days)
        ],
        window_ids=[
            frozenset(r["unique_key"] for r in records if start <= r["created_date"][:10] < end)
            for start, end in pairwise(days)
        ],
        options=[],
        window1=folder / "window1",
    )


def _export(folder: Path) -> Daily:
    """LA's MyLA311 export cut into three files of 3,333 requests, loaded one a day."""
    header, *lines = (SHARED_DATA / "la" / "myla311_2017_subset.csv").read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    parts = []
    for number in range(3):
        part = folder / f"myla311_2017_part{number + 1}.csv"
        part.write_bytes(header + b"".join(lines[number * third : (number + 1) * third]))
        parts.append(part)
    return Daily(
        write_registry(folder / "cities.yaml", cities=("la",)),
        "la",
        "service_requests_export",
        windows=[[f"file:{part}", "-", "-"] for part in parts],
        window_ids=[frozenset(row["SRNumber"] for row in csv.DictReader(part.open())) for part in parts],
        # Batches of 1,000 rows, so a part makes several files as a large export does.
        options=["--export-batch-rows", "1000"],
        window1=folder / "window1",
    )


def _copy(folder: Path, target: Path) -> Path:
    """A copy of a warehouse folder: the warehouse and dlt's working files beside it."""
    shutil.copytree(folder, target)
    return target


@pytest.fixture(scope="module", params=("export", "socrata"))
def daily(request, tmp_path_factory) -> Iterator[Daily]:
    folder = tmp_path_factory.mktemp(request.param)
    with ReplayServer() as server:
        feed = _socrata(folder, server) if request.param == "socrata" else _export(folder)
        done = feed.load(feed.window1, 1)
        assert done.returncode == 0, done.stderr[-3000:]
        yield feed


@pytest.fixture(scope="module")
def clean(daily, tmp_path_factory) -> dict[str, tuple]:
    """The dataset after windows 2 and 3 load without a kill."""
    folder = _copy(daily.window1, tmp_path_factory.mktemp("clean") / "warehouse")
    for window in (2, 3):
        done = daily.load(folder, window)
        assert done.returncode == 0, done.stderr[-3000:]
    assert daily.rows_by_window(folder) == daily.exactly_once(1, 2, 3)
    return dataset_hash(folder / "warehouse.duckdb", daily.dataset)


@pytest.fixture(scope="module", params=MID_STEP_POINTS)
def killed(daily, request, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A warehouse folder where window 2's load was killed at a mid-step point."""
    folder = _copy(daily.window1, tmp_path_factory.mktemp(request.param) / "warehouse")
    return folder, daily.load(folder, 2, request.param)


def test_the_kill_lands_mid_step_and_leaves_window_2_unloaded(daily, killed):
    folder, run = killed
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    progress = re.search(r"after (\d+) of (\d+)", run.stderr)
    assert progress, run.stderr[-3000:]
    done, total = map(int, progress.groups())
    assert done == 1 < total, progress.group()
    assert daily.rows_by_window(folder) == daily.exactly_once(1)


def test_the_next_window_finishes_the_killed_one(daily, clean, killed, tmp_path):
    folder = _copy(killed[0], tmp_path / "warehouse")
    rerun = daily.load(folder, 3)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert daily.rows_by_window(folder) == daily.exactly_once(1, 2, 3)
    assert dataset_hash(folder / "warehouse.duckdb", daily.dataset) == clean


def test_without_finish_pending_a_window_is_lost(daily, killed, tmp_path):
    folder = _copy(killed[0], tmp_path / "warehouse")
    rerun = daily.load(folder, 3, "--no-recovery")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert RECOVERY_DISABLED in rerun.stderr
    # dlt's own run() loads what the killed run left and drops the window it was
    # given; a run that never sees the package loses the killed window instead.
    assert daily.rows_by_window(folder) in (daily.exactly_once(1, 2), daily.exactly_once(1, 3))
