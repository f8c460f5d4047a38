"""Temporary warehouses and Dagster homes, and what tests read from them: rows,
content hashes of marts and datasets, file digests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

import duckdb
import pytest

from ingestion.geography.spatial import configure
from tests.helpers.data import REPO


def instance_folder(fallback: Path) -> Path:
    """A new Dagster instance folder, in memory (/dev/shm) where the machine has it, else
    `fallback`: the instance's SQLite event log commits every event on its own, and a
    ranged run over a few months writes thousands (one per asset per partition), each a
    sync to disk. The caller removes it."""
    memory = Path("/dev/shm")
    if memory.is_dir() and os.access(memory, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="civic311-dagster-", dir=memory))
    fallback.mkdir(parents=True)
    return fallback


def wire_warehouse(path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working warehouse and Dagster home (with the project's instance settings), set
    in the environment as `make demo` sets them."""
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("CIVIC311_WAREHOUSE", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("CIVIC311_REPLAY_URL", raising=False)
    return path


def copy_warehouse(source: Path, directory: Path) -> Path:
    """A private copy of a warehouse. The file keeps its name, because DuckDB names the
    catalog after the file and dbt's views refer to it."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.name
    shutil.copy(source, target)
    return target


def content_hash(
    con: duckdb.DuckDBPyConnection, table: str, exclude: Collection[str] = (), schema: str = "marts"
) -> tuple[int, str]:
    """Row count and an order-free hash of a mart's rows, doubles to 9 decimals
    (parallel sums may differ in the last bits between two runs), without the columns
    in `exclude` that it has (those that change from run to run, such as a load time)."""
    relation = f'{schema}."{table}"'
    selected = "*"
    if exclude:
        columns = {r[0] for r in con.execute(f"describe {relation}").fetchall()}
        dropped = sorted(columns & set(exclude))
        selected = "* exclude (" + ", ".join(f'"{c}"' for c in dropped) + ")" if dropped else "*"
    rows = con.execute(f"select {selected} from {relation}").fetchall()  # noqa: S608 - fixed names
    text = sorted(json.dumps([round(v, 9) if isinstance(v, float) else str(v) for v in row]) for row in rows)
    return len(rows), hashlib.sha256("\n".join(text).encode()).hexdigest()


# What differs between two builds of the same rows:
# load and build times, run and load ids, the snapshot's validity stamps.
BUILD_COLUMNS = {
    "_loaded_at", "_dlt_load_id", "_dlt_id", "loaded_at", "as_of", "dbt_valid_from", "dbt_valid_to",
    "dbt_updated_at", "dbt_scd_id", "published_at", "built_at", "joined_in_run", "load_id", "quarantined_at",
}  # fmt: skip


def mart_hashes(database: Path, schema: str = "marts") -> dict[str, tuple[int, str]]:
    """`content_hash` of every table in `schema` of a warehouse or a serving file,
    without BUILD_COLUMNS: two builds of the same rows give the same hashes."""
    with duckdb.connect(str(database), read_only=True) as con:
        configure(con)  # the spatial extension, for the geometry columns
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = ? order by 1", [schema]
        ).fetchall()
        return {table: content_hash(con, table, exclude=BUILD_COLUMNS, schema=schema) for (table,) in tables}


# Set by each load (dlt's load and row ids, civic311's load time), so two loads differ in them.
LOAD_COLUMNS = {"_loaded_at", "_dlt_load_id", "_dlt_id"}


def dataset_hash(warehouse: Path, schema: str) -> dict[str, tuple]:
    """Per table of a dataset (dlt's own tables aside): (rows, md5 of its sorted rows),
    with the columns that differ between two loads of the same rows left out."""
    hashes = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_name not like '\\_dlt%' escape '\\' order by 1",
                [schema],
            ).fetchall()
        ]
        for table in tables:
            columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns where table_schema = ? "
                    "and table_name = ? order by column_name",
                    [schema, table],
                ).fetchall()
                if r[0] not in LOAD_COLUMNS
            ]
            row = " || '|' || ".join(f"coalesce(cast(\"{c}\" as varchar), '<null>')" for c in columns)
            hashes[table] = con.execute(
                f'select count(*), md5(string_agg({row}, \'\\n\' order by {row})) from "{schema}"."{table}"'  # noqa: S608
            ).fetchone()
    return hashes


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes: a served file must keep every byte when nothing is published."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(warehouse: Path, sql: str, params=None) -> list[tuple]:
    """Rows of one query against a warehouse, opened read-only."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
