"""dim_city, the plausibility test and the response-time exclusions read the seeds
cities.csv and staff_channels.csv; they must say what the registry says."""

from __future__ import annotations

import csv

from ingestion.registry import load_registry
from tests.helpers.data import REPO


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
        assert int(row["closed_on_creation_seconds"]) == city.metrics.closed_on_creation_seconds, (
            f"set {city.id}'s closed_on_creation_seconds in dbt_project/seeds/cities.csv to the registry's "
            f"metrics.closed_on_creation_seconds, {city.metrics.closed_on_creation_seconds}"
        )


def test_staff_channel_seed_matches_the_registry():
    with (REPO / "dbt_project" / "seeds" / "staff_channels.csv").open(newline="") as f:
        seeded = sorted((row["city_id"], row["channel"]) for row in csv.DictReader(f))
    declared = sorted(
        (city.id, channel) for city in load_registry().cities for channel in city.metrics.staff_channels
    )
    assert seeded == declared, (
        "dbt_project/seeds/staff_channels.csv must list each city's registry metrics.staff_channels, "
        f"one row per channel: add {sorted(set(declared) - set(seeded))}, "
        f"remove {sorted(set(seeded) - set(declared))}"
    )
