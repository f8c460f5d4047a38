"""Shared fixtures. Real recorded city data lives in ../shared/data/311 (never
copied into this repository); HTTP goes through the project's own replay server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "311"
NYC_SODA_SAMPLE = SHARED_DATA / "nyc" / "nyc311_soda_fhrw-4uyv_sample.json"


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


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    """A temporary working warehouse and Dagster home, wired through the environment."""
    path = tmp_path / "warehouse.duckdb"
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("CIVIC311_WAREHOUSE", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("CIVIC311_REPLAY_URL", raising=False)
    return path


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """Parse the dbt project once per session, as `dagster dev` would."""
    from orchestration.resources import dbt_project

    dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path
