"""The common failures of `civic311 load` each print one line and exit 2: a read-only
warehouse folder or file, a full disk, and a warehouse written by a newer DuckDB.
`--debug` shows the traceback instead. (A held lock: test_concurrent_writers.py.)"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from tests.helpers.data import REPO, SHARED_DATA

pytestmark = pytest.mark.integration

BOSTON_CSV = SHARED_DATA / "boston" / "boston311_2022_jan_100.csv"
# The storage versions DuckDB 1.5 reads end at 68; a newer DuckDB writes a higher one.
NEWER_STORAGE_VERSION = 69


def _load(warehouse: Path, *options: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "orchestration.cli", *options, "load", "--city", "boston"]
    env = {**os.environ, "CIVIC311_WAREHOUSE": str(warehouse)}
    return subprocess.run(  # noqa: S603
        [*argv, "--from-file", str(BOSTON_CSV)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line(done: subprocess.CompletedProcess, *said: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr[-3000:]
    assert done.stderr.startswith("civic311 load: ") and "Traceback" not in done.stderr
    for words in said:
        assert words in done.stderr, done.stderr


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Nobody may write `path`: root ignores permission bits, so as root the file is made immutable."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)  # noqa: S603, S607
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)  # noqa: S603, S607
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def _checksum(block: bytes) -> int:
    """DuckDB's checksum of a header block: the xor of each 8-byte word times a constant."""
    total = 5381
    for (word,) in struct.iter_unpack("<Q", block):
        total ^= (word * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return total


def test_a_read_only_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        done = _load(folder / "warehouse.duckdb")
    _one_line(done, f"{folder}/warehouse.duckdb.lock: cannot write here", "CIVIC311_WAREHOUSE")


def test_a_read_only_warehouse_file_is_one_line(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    with read_only(warehouse):
        done = _load(warehouse)
    _one_line(done, f"{warehouse}: cannot write here", "writable")


def test_a_warehouse_of_a_newer_duckdb_is_one_line_and_left_as_it_is(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table kept as select 1 as id")
    header = bytearray(warehouse.read_bytes()[:4096])
    assert header[8:12] == b"DUCK"
    header[12:20] = struct.pack("<Q", NEWER_STORAGE_VERSION)
    header[0:8] = struct.pack("<Q", _checksum(bytes(header[8:4096])))
    with warehouse.open("r+b") as handle:
        handle.write(header)
    before = warehouse.read_bytes()
    done = _load(warehouse)
    _one_line(
        done, f"{warehouse}: the file was written by a newer DuckDB than this civic311's {duckdb.__version__}"
    )
    assert warehouse.read_bytes() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="a small disk to fill is a tmpfs mount, which needs root")
def test_a_full_disk_is_one_line_and_the_next_load_finishes(tmp_path):
    disk = tmp_path / "small"
    disk.mkdir()
    # Room for the warehouse's first blocks, not for the 100 rows and their WAL.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], check=True)  # noqa: S603, S607
    try:
        done = _load(disk / "warehouse.duckdb")
        _one_line(done, "the disk is full (no space left on device)", "CIVIC311_WAREHOUSE")
        # Room again: the next load finishes what the failed one left, and loads the file once.
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # noqa: S603, S607
        assert _load(disk / "warehouse.duckdb").returncode == 0
        with duckdb.connect(str(disk / "warehouse.duckdb"), read_only=True) as con:
            assert con.execute(
                "select count(*), count(distinct source_id) from raw_boston.service_requests_export"
            ).fetchone() == (100, 100)
    finally:
        subprocess.run(["umount", str(disk)], check=True)  # noqa: S603, S607


def test_debug_shows_the_traceback(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        done = _load(folder / "warehouse.duckdb", "--debug")
    assert done.returncode == 1 and "Traceback" in done.stderr and "PermissionError" in done.stderr
