"""Shared fixtures and pytest hooks; the helpers they use live in tests/helpers.
Real recorded city data lives in ../shared/data/311 (never copied into this
repository); HTTP goes through the project's own replay server."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion.registry import DEFAULT_REGISTRY, load_registry
from tests.helpers.data import SHARED_DATA
from tests.helpers.warehouse import instance_folder, wire_warehouse

# Session fixtures whose value lives in one process (an in-process Dagster result): the
# test files that use one run on one xdist worker, so the fixture runs once.
ONE_WORKER_FIXTURES = ("nyc_sample_backfill",)


def one_worker_groups(tests: Path) -> dict[str, str]:
    """Test file (node id) -> the ONE_WORKER_FIXTURES name it uses, read from the files'
    text: the xdist controller schedules by node id and collects no tests itself."""
    groups = {}
    for path in sorted(tests.rglob("test_*.py")):
        text = path.read_text()
        for name in ONE_WORKER_FIXTURES:
            if re.search(rf"\b{name}\b", text):
                groups[path.relative_to(tests.parent).as_posix()] = name
    return groups


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (`make test`): each test file on one worker, so a module-scoped
    fixture is built once, and the files in `one_worker_groups` together on one worker.
    (pytest-xdist 3.8's `loadgroup` cannot rename pytest 9's node ids, so its
    `xdist_group` marks group nothing.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    groups = one_worker_groups(Path(__file__).parent)

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            test_file = super()._split_scope(nodeid)
            return groups.get(test_file, test_file)

    return SharedFixtureScheduling(config, log)


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


@pytest.fixture(autouse=True)
def shared_manifest_kept(dbt_manifest) -> Iterator[None]:
    """Fail the test that re-parsed the dbt manifest every test shares with a registry of
    other cities (a command that prepares it, under a cut-down CIVIC311_CITIES): tests on
    the other xdist worker would load an asset graph without those cities' models. The
    test keeps every city instead (tests/helpers/registry.py EVERY_CITY)."""
    from orchestration.resources import manifest_follows_registry

    written = dbt_manifest.stat().st_mtime_ns
    yield
    if dbt_manifest.stat().st_mtime_ns != written:
        packaged = load_registry(DEFAULT_REGISTRY)
        assert manifest_follows_registry(dbt_manifest, packaged), (
            f"{dbt_manifest}, which every test shares, was re-parsed during this test without "
            "every city of the packaged registry (by this test, or one beside it on the other "
            "worker): give that test's registry every city (write_registry(..., cities=EVERY_CITY))"
        )
