"""Expensive read-only fixtures built once per test run, even when pytest-xdist runs
the suite in several worker processes (`make test` runs two)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of the whole run: under xdist each worker's base temp folder
    (`popen-gw0`, ...) sits in it, so every worker sees the same one."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """`build(folder)`'s path, built in `name`'s folder of the run by the first worker
    that asks, while the others wait on a file lock and then read the same result.
    What it builds must stay read-only: tests copy it before changing anything. A build
    that failed is tried again by the next worker that asks (and fails there too)."""
    root = run_folder(tmp_path_factory)
    done = root / f"{name}.built"
    with FileLock(root / f"{name}.lock"):
        if done.exists():
            return Path(done.read_text())
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        built = build(folder)
        done.write_text(str(built))
        return built
