"""Boundary layers in the registry: declared once, checked at load, errors that name the fix."""

from __future__ import annotations

import pytest

from ingestion.registry import RegistryError, load_registry, parse_registry


def registry_with(layers: list[dict]) -> dict:
    raw = load_registry().model_dump(mode="json", exclude_none=True)
    la = next(c for c in raw["cities"] if c["id"] == "la")
    la["boundaries"] = layers
    return raw


def layer(**changes) -> dict:
    base = {
        "name": "neighborhood_council",
        "label": "Neighborhood council",
        "source": {"path": "data/nc.geojson"},
        "key": "nc_id",
        "vintage": "2019",
    }
    return {**base, **changes}


def test_the_packaged_registry_declares_the_sample_cities_layers():
    registry = load_registry()
    assert [b.name for b in registry.city("nyc").boundaries] == [
        "modzcta",
        "community_district",
        "council_district",
    ]
    assert registry.city("sf").layer("analysis_neighborhood").key == "nhood"
    # chicago_open311 shares Chicago's layers (YAML anchors), but its feed reports no
    # community area, so it reads no code for one.
    assert [
        layer.model_copy(update={"reported_code": None}) for layer in registry.city("chicago").boundaries
    ] == (registry.city("chicago_open311").boundaries)
    reported = {
        (city.id, layer.name): layer.reported_code
        for city in registry.cities
        for layer in city.boundaries
        if layer.reported_code
    }
    assert reported == {
        ("nyc", "community_district"): "community_district",
        ("chicago", "community_area"): "community_area",
        ("la", "neighborhood_council"): "neighborhood_council",
    }


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([layer(source={"path": "a.geojson", "url": "https://example.org/a.geojson"})], "exactly one of url"),
        ([layer(name="zip")], "built-in layer"),
        ([layer(), layer()], "appears twice"),
        ([layer(vintage="last year")], "year (or date)"),
        ([layer(population={"source": {"path": "p.csv"}, "vintage": "2020"})], "key_column and value_column"),
        ([layer(reported_code="$.nc")], "the key of the city's staging extras"),
    ],
)
def test_a_bad_layer_is_refused_with_the_city_the_field_and_the_fix(layers, message):
    with pytest.raises(RegistryError) as error:
        parse_registry(registry_with(layers))
    text = str(error.value)
    assert "city 'la'" in text
    assert "boundaries" in text
    assert message in text


def test_a_missing_layer_is_named_with_the_layers_the_city_has():
    with pytest.raises(RegistryError, match="has no boundary layer 'wards'; it has: neighborhood_council"):
        load_registry().city("la").layer("wards")
