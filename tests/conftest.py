"""Shared fixtures. Real recorded city data lives in ../shared/data/311 (never
copied into this repository); HTTP goes through the project's own replay server."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from ingestion.replay.records import derive_updated_at

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "311"
NYC_SODA_SAMPLE = SHARED_DATA / "nyc" / "nyc311_soda_fhrw-4uyv_sample.json"
# The UTC days on which `nyc_soda_sample`'s requests last changed (2012-11-15 09:24 to
# 11-21 02:18): a run over these daily partitions serves every request. No wider:
# Dagster stores events for every asset and partition of a run, and those dominate
# the time of a ranged run.
NYC_SODA_SAMPLE_DAYS = (date(2012, 11, 15), date(2012, 11, 21))
# The sample's one request made before November (2012-06-26), closed on 2012-11-20.
NYC_SODA_SAMPLE_JUNE_REQUEST = "24445939"


def nyc_soda_sample() -> list[dict]:
    """The NYC SODA sample, for a replay that stamps :updated_at from created_date. The
    June request carries its closing day instead, as the portal stamps a row when it
    changes: the sample's days are then 7, not 149, and that request arrives in a later
    window than its month, as a late closing does."""
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    for record in records:
        if record["unique_key"] == NYC_SODA_SAMPLE_JUNE_REQUEST:
            record[":updated_at"] = derive_updated_at(record, ("closed_date",))
    return records


def pytest_configure(config):
    if not SHARED_DATA.is_dir():
        raise pytest.UsageError(
            f"the real city samples are missing: expected {SHARED_DATA} (the shared/ folder "
            "beside this clone). The tests replay those recorded records."
        )


def write_registry(path: Path, cities: tuple[str, ...] = ("nyc",), **source_overrides) -> Path:
    """The packaged registry cut down to `cities`, with source settings of the first changed."""
    raw = yaml.safe_load((REPO / "ingestion" / "cities.yaml").read_text())
    raw["cities"] = [c for c in raw["cities"] if c["id"] in cities]
    raw["cities"][0]["source"].update(source_overrides)
    path.write_text(yaml.safe_dump(raw))
    return path


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


@pytest.fixture
def dagster_home(tmp_path) -> Iterator[Path]:
    """A Dagster instance folder (`instance_folder`) for one test."""
    home = instance_folder(tmp_path / "dagster_home")
    yield home
    shutil.rmtree(home, ignore_errors=True)


def wire_warehouse(path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working warehouse and Dagster home (with the project's instance settings), set
    in the environment as `make demo` sets them."""
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("CIVIC311_WAREHOUSE", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("CIVIC311_REPLAY_URL", raising=False)
    return path


@pytest.fixture
def warehouse(tmp_path, dagster_home, monkeypatch) -> Path:
    """A temporary working warehouse and Dagster home, wired through the environment."""
    return wire_warehouse(tmp_path / "warehouse.duckdb", dagster_home, monkeypatch)


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """Parse the dbt project once per session, as `dagster dev` would."""
    from orchestration.resources import dbt_project

    dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path


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


def dbt(
    warehouse: Path, work_dir: Path, *args: str, project: Path = REPO / "dbt_project"
) -> subprocess.CompletedProcess:
    """`dbt <args>` on `warehouse` and `project`, with its own target and log dirs under
    `work_dir`, so it never touches the manifest Dagster reads. The active registry
    (CIVIC311_CITIES) is passed as dbt vars, as civic311 passes it, unless `args` has `--vars`."""
    from orchestration.resources import dbt_vars

    env = {**os.environ, "CIVIC311_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    if "--vars" not in args:
        args = (*args, "--vars", dbt_vars())
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
    full_refresh: bool = False,
    exclude: str | None = None,
    unit_tests: bool = False,
) -> subprocess.CompletedProcess:
    """`dbt build --select <select>` into `warehouse`. Hands back the outcome, for builds
    that must fail; `dbt_build` is the one that must succeed. dbt's unit tests read
    fixed rows, never the warehouse's, so they run only with `unit_tests` (samples_built
    runs every one of them once a session)."""
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
    )


def dbt_build(warehouse: Path, select: str, work_dir: Path, **options) -> str:
    """`run_dbt` that fails the test with dbt's output when dbt fails; returns the output."""
    done = run_dbt(warehouse, select, work_dir, **options)
    assert done.returncode == 0, f"dbt build --select {select} failed:\n{done.stdout[-4000:]}"
    return done.stdout
