"""Fixtures over the real samples: the raw loads are slow enough to do once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import dbt_build
from tests.integration.samples import build_samples_raw, load_boundaries, replay_registry


@pytest.fixture(scope="session")
def samples_raw(tmp_path_factory) -> Path:
    """Every real sample in raw (read-only: tests copy it with `copy_warehouse`)."""
    return build_samples_raw(tmp_path_factory.mktemp("samples_raw"))


def copy_warehouse(source: Path, directory: Path) -> Path:
    """A private copy of a warehouse. The file keeps its name, because DuckDB names the
    catalog after the file and dbt's views refer to it."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.name
    shutil.copy(source, target)
    return target


# The marts over the samples are built as of one fixed instant, after every sample date.
SAMPLES_AS_OF = "2026-11-01 00:00:00+00"


@pytest.fixture(scope="session")
def samples_built(samples_raw, tmp_path_factory) -> Path:
    """Every real sample, and every city's boundary layers, through the whole dbt
    project: seeds, models, snapshot, tests (read-only: copy it before changing anything)."""
    work = tmp_path_factory.mktemp("samples_built")
    warehouse = copy_warehouse(samples_raw, work)
    load_boundaries(replay_registry(work), warehouse, work / "boundary_cache")
    dbt_build(warehouse, "civic311", work, dbt_vars={"as_of": SAMPLES_AS_OF})
    return warehouse
