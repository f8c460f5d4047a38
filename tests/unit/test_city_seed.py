"""dim_city and the plausibility test read the seed cities.csv; it must say what the
registry says."""

from __future__ import annotations

import csv

from ingestion.registry import load_registry
from tests.conftest import REPO


def test_city_seed_matches_the_registry():
    with (REPO / "dbt_project" / "seeds" / "cities.csv").open(newline="") as f:
        seeded = {row["city_id"]: row for row in csv.DictReader(f)}
    registry = load_registry()
    missing = sorted(set(registry.ids) - set(seeded))
    assert not missing, f"add these registry cities to dbt_project/seeds/cities.csv: {missing}"
    assert sorted(seeded) == sorted(registry.ids)
    for city in registry.cities:
        row = seeded[city.id]
        assert (row["city_name"], row["timezone"], row["protocol"]) == (
            city.name,
            city.timezone,
            city.source.protocol,
        ), city.id
        box = city.bbox
        seeded_box = tuple(float(row[side]) for side in ("south", "west", "north", "east"))
        assert seeded_box == (box.south, box.west, box.north, box.east), city.id
