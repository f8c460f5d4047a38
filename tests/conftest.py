"""Shared fixtures and pytest hooks; the helpers they use live in tests/helpers.
Real recorded city data lives in ../shared/data/311 (never copied into this
repository); HTTP goes through the project's own replay server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.data import SHARED_DATA
from tests.helpers.warehouse import instance_folder, wire_warehouse


def pytest_configure(config):
    if not SHARED_DATA.is_dir():
        raise pytest.UsageError(
            f"the real city samples are missing: expected {SHARED_DATA} (the shared/ folder "
            "beside this clone). The tests replay those recorded records."
        )


@pytest.fixture
def dagster_home(tmp_path) -> Iterator[Path]:
    """A Dagster instance folder (`instance_folder`) for one test."""
    home = instance_folder(tmp_path / "dagster_home")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def warehouse(tmp_path, dagster_home, monkeypatch) -> Path:
    """A temporary working warehouse and Dagster home, wired through the environment."""
    return wire_warehouse(tmp_path / "warehouse.duckdb", dagster_home, monkeypatch)


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The dbt manifest, parsed first when missing or stale, as `civic311 dev` does: the
    code location parses nothing when it loads, so every test that builds it needs this."""
    from orchestration.resources import prepare_dbt_manifest

    return prepare_dbt_manifest()
