"""A cut-down copy of the city registry for one test."""

from __future__ import annotations

from pathlib import Path

import yaml

from ingestion.registry import DEFAULT_REGISTRY, load_registry

# Every city of the packaged registry: a test that runs a command which prepares the dbt
# manifest (`civic311 bootstrap`, `dev`, `demo`) keeps them all, or it re-parses the
# manifest every test shares without the others (tests/conftest.py `shared_manifest_kept`).
EVERY_CITY = tuple(load_registry(DEFAULT_REGISTRY).ids)


def write_registry(path: Path, cities: tuple[str, ...] = ("nyc",), **source_overrides) -> Path:
    """The packaged registry cut down to `cities`, with source settings of the first changed."""
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    raw["cities"] = [c for c in raw["cities"] if c["id"] in cities]
    raw["cities"][0]["source"].update(source_overrides)
    path.write_text(yaml.safe_dump(raw))
    return path
