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

# Session fixtures whose value lives in one process (an in-process Dagster result): the
# tests using them share one xdist worker, so the fixture runs once.
ONE_WORKER_FIXTURES = ("nyc_sample_backfill",)


def xdist_group(item: pytest.Item) -> str | None:
    """The worker group of a test under `--dist loadgroup` (`make test`): the fixture's
    name for ONE_WORKER_FIXTURES, the module's path for a test using a module- or
    class-scoped fixture (built once, on one worker, for all the module's tests), else
    none (any worker)."""
    for name in ONE_WORKER_FIXTURES:
        if name in item.fixturenames:
            return name
    scopes = {definitions[-1].scope for definitions in item._fixtureinfo.name2fixturedefs.values()}
    if scopes & {"module", "class", "package"}:
        return item.nodeid.split("::")[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


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
