"""A cut-down copy of the city registry for one test."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.helpers.data import REPO


def write_registry(path: Path, cities: tuple[str, ...] = ("nyc",), **source_overrides) -> Path:
    """The packaged registry cut down to `cities`, with source settings of the first changed."""
    raw = yaml.safe_load((REPO / "ingestion" / "cities.yaml").read_text())
    raw["cities"] = [c for c in raw["cities"] if c["id"] in cities]
    raw["cities"][0]["source"].update(source_overrides)
    path.write_text(yaml.safe_dump(raw))
    return path
