"""Maps and exports drawn over the real boundary files in ../shared/data/311. Gap
values are derived from the layers' own attributes (NYC population, LA area), so
every figure below can be recomputed from the files."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from PIL import Image

from ingestion.geography import WGS84, read_layer
from ingestion.geography.maps import (
    CATEGORY_COLOURS,
    LABELLED_GAPS,
    NO_DATA,
    gap_choropleth,
    gap_subtitle,
    h3_cell_polygons,
    hotspot_map,
    place_labels,
    simplified_layer,
    write_geojson,
    write_geoparquet,
)
from tests.helpers.data import SHARED_DATA

NYC_MODZCTA = SHARED_DATA / "nyc" / "nyc_modzcta_with_population.geojson"
LA_COUNCILS = SHARED_DATA / "la" / "la_neighborhood_councils_2019.geojson"
CHICAGO_AREAS = SHARED_DATA / "chicago" / "chicago_community_areas.geojson"
PIXELS = (1200, 1200)  # 10 x 10 in at 120 dpi
MAP_ROWS = slice(180, 990)  # between the title block and the colour bar / legend band
CHICAGO_CITY_HALL = (41.8781, -87.6298)  # (lat, lng), in the Loop (community area 32)


@pytest.fixture(scope="module")
def nyc():
    areas = read_layer(
        NYC_MODZCTA, "modzcta", city_id="nyc", layer="modzcta", population="population_estimate"
    )
    return areas.assign(area_name=areas["area_id"])


@pytest.fixture(scope="module")
def chicago():
    return read_layer(CHICAGO_AREAS, "AREA_NUMBE", city_id="chicago", layer="community_areas")


def nyc_gaps(areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """gap_index = population / the median MODZCTA population (42,548); the five areas
    under 5,000 residents (parks, airports, the Financial District) get no index."""
    population = areas["population"].astype(float)
    gaps = pd.DataFrame(
        {
            "area_id": areas["area_id"],
            "gap_index": population / population.median(),
            "counted_requests": (population // 1000).astype(int),
        }
    )
    gaps.loc[population < 5000, "gap_index"] = None
    return gaps


def png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == PIXELS
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 20, "the map is blank"
    return pixels


def pixels_of(pixels: np.ndarray, colour: str) -> int:
    """Pixels of exactly `colour` ("#rrggbb") inside the map frame."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return int((pixels[MAP_ROWS] == rgb).all(axis=-1).sum())


def test_nyc_gap_choropleth(nyc, tmp_path):
    gaps = nyc_gaps(nyc)
    assert gaps["gap_index"].isna().sum() == 5
    assert sorted(gaps.loc[gaps["gap_index"].isna(), "area_id"]) == [
        "10004",
        "10006",
        "10464",
        "11697",
        "99999",
    ]
    assert (gaps["gap_index"] > 1.5).sum() == 50

    path = gap_choropleth(
        nyc,
        gaps,
        city_name="New York City",
        layer_label="Modified ZIP Code Tabulation Area",
        month=dt.date(2026, 10, 1),
        path=tmp_path / "maps" / "nyc_gaps.png",
    )
    assert path == tmp_path / "maps" / "nyc_gaps.png"
    pixels = png(path)
    assert pixels_of(pixels, NO_DATA["facecolor"]) > 1000  # the five areas without an index
    assert pixels_of(pixels, "#111111") > 500  # outlines of the 50 gaps


def test_la_gap_choropleth_has_no_grey_when_every_area_has_an_index(tmp_path):
    councils = read_layer(LA_COUNCILS, "nc_id", city_id="la", layer="neighborhood_councils")
    source = gpd.read_file(LA_COUNCILS)
    councils["area_name"] = councils["area_id"].map(
        dict(zip(source["nc_id"].astype(str), source["name"], strict=True))
    )
    assert councils.set_index("area_id").loc["47", "area_name"] == "LINCOLN HEIGHTS NC"
    # gap_index = the council's area / the median council's area (8.34 km²).
    square_km = councils.to_crs(councils.estimate_utm_crs()).area / 1e6
    gaps = pd.DataFrame(
        {"area_id": councils["area_id"], "gap_index": square_km / square_km.median(), "counted_requests": 10}
    )
    assert len(gaps) == 99 and (gaps["gap_index"] > 1.5).sum() == 25

    path = gap_choropleth(
        councils,
        gaps,
        city_name="Los Angeles",
        layer_label="Neighborhood Councils (2019)",
        month="2026-10",
        path=tmp_path / "la_gaps.png",
        synthetic=True,
    )
    pixels = png(path)
    # The map's band, below the subtitle (which lists the 19 gaps not labelled) and above
    # the legend (whose "no index" swatch is grey): a few anti-aliased edge pixels at most.
    body = pixels[int(0.25 * len(pixels)) : int(0.8 * len(pixels))]
    assert pixels_of(body, NO_DATA["facecolor"]) < 100
    assert pixels_of(pixels, "#111111") > 500


def test_every_outlined_gap_is_labelled_or_listed():
    names = [f"Area {n}" for n in range(20)]
    mapped = pd.DataFrame(
        {
            "area_id": [str(n) for n in range(20)],
            "area_name": names,
            "gap_index": [1.0 + n / 5 for n in range(19)] + [float("nan")],
            "counted_requests": 10,
        }
    )
    subtitle, labelled = gap_subtitle(mapped, 1.5, "Noise: the month's busiest category")
    gaps = mapped[mapped["gap_index"] > 1.5]
    assert len(gaps) == 16 and len(labelled) == LABELLED_GAPS
    assert list(mapped.loc[labelled, "gap_index"]) == sorted(gaps["gap_index"], reverse=True)[:LABELLED_GAPS]
    listed = subtitle.split("Also gaps, not labelled: ")[1]
    for row in gaps.drop(labelled).itertuples():
        assert f"{row.area_name} {row.gap_index:.1f}×" in listed
    assert "Area 0 " not in listed and "Noise: the month's busiest category" in subtitle
    assert subtitle.startswith("16 of 20 areas above 1.5× the city-wide median · 1 without an index")


def test_a_choropleth_needs_one_row_per_area(nyc, tmp_path):
    gaps = nyc_gaps(nyc)
    twice = pd.concat([gaps, gaps[gaps["area_id"] == "10001"]])
    with pytest.raises(ValueError, match=r"one row per area; \['10001'\] repeat"):
        gap_choropleth(
            nyc,
            twice,
            city_name="New York City",
            layer_label="MODZCTA",
            month="2026-10",
            path=tmp_path / "x.png",
        )
    assert not (tmp_path / "x.png").exists()


def test_h3_cells_are_drawn_lng_lat():
    cell = h3.latlng_to_cell(*CHICAGO_CITY_HALL, 8)
    cells = h3_cell_polygons([cell, cell, h3.latlng_to_cell(41.80, -87.60, 8)])
    assert list(cells["area_id"]) == [cell, h3.latlng_to_cell(41.80, -87.60, 8)]  # once each, in order
    assert cells.crs == WGS84
    polygon = cells.geometry.iloc[0]
    lat, lng = h3.cell_to_latlng(cell)
    assert polygon.is_valid and len(polygon.exterior.coords) == 7  # a hexagon, closed
    assert polygon.contains(shapely.Point(lng, lat))
    assert not polygon.contains(shapely.Point(lat, lng))
    xmin, ymin, xmax, ymax = polygon.bounds
    assert -87.64 < xmin < xmax < -87.61 and 41.87 < ymin < ymax < 41.89
    # The drawn hexagon has the cell's own area (0.73 km² at resolution 8).
    metres = cells.iloc[[0]].to_crs(cells.iloc[[0]].estimate_utm_crs()).area.iloc[0]
    assert metres / 1e6 == pytest.approx(h3.cell_area(cell, "km^2"), rel=0.01)

    with pytest.raises(ValueError, match="not H3 cells: \\['10001'\\]"):
        h3_cell_polygons(["10001"])


def test_chicago_hotspot_map(chicago, tmp_path):
    by_id = chicago.set_index("area_id")
    cell = h3.latlng_to_cell(*CHICAGO_CITY_HALL, 8)
    hotspots = gpd.GeoDataFrame(
        {
            "area_id": ["8", "25", cell],  # Near North Side, Austin, a cell in the Loop
            "category": ["street_condition", "noise", "graffiti"],
            "requests": [17, 42, 9],
            "expected": [2.375, 3.125, 0.5],
        },
        geometry=[
            by_id.loc["8", "geometry"],
            by_id.loc["25", "geometry"],
            h3_cell_polygons([cell]).geometry[0],
        ],
        crs=WGS84,
    )
    path = hotspot_map(
        chicago[["area_id", "geometry"]],
        hotspots,
        city_name="Chicago",
        week=dt.date(2026, 10, 12),
        path=tmp_path / "chicago_hotspots.png",
        layer_label="Community Areas",
    )
    pixels = png(path)
    # Colours follow the categories' requests: noise (42), street condition (17), graffiti (9).
    for colour in CATEGORY_COLOURS[:3]:
        assert pixels_of(pixels, colour) > 50, colour
    assert pixels_of(pixels, CATEGORY_COLOURS[3]) == 0

    quiet = hotspot_map(
        chicago[["area_id", "geometry"]],
        hotspots.iloc[0:0],
        city_name="Chicago",
        week="2026-10-19",
        path=tmp_path / "chicago_quiet.png",
        synthetic=True,
    )
    pixels = png(quiet)
    assert all(pixels_of(pixels, colour) == 0 for colour in CATEGORY_COLOURS)
    assert pixels_of(pixels, "#f3f3f0") > 100_000  # the 77 areas are still drawn


def test_maps_leave_no_open_figures(nyc, tmp_path):
    import matplotlib.pyplot as plt

    for month in ("2026-08", "2026-09"):
        gap_choropleth(
            nyc, nyc_gaps(nyc), city_name="New York City", layer_label="MODZCTA", month=month,
            path=tmp_path / f"{month}.png",
        )  # fmt: skip
    assert plt.get_fignums() == []


def test_exports_round_trip(nyc, tmp_path):
    frame = nyc[["area_id", "population", "geometry"]].copy()
    frame["loaded_at"] = pd.Timestamp("2026-10-01 08:00", tz="America/New_York")
    # An instant no row has (a mart's last_closed_at over open requests only).
    frame["closed_at"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    frame["requested_month"] = dt.date(2026, 10, 1)
    frame["gap_index"] = [decimal.Decimal(p) / decimal.Decimal(42548) for p in frame["population"]]
    geojson_path = write_geojson(frame, tmp_path / "exports" / "nyc_modzcta.geojson")
    parquet_path = write_geoparquet(frame, tmp_path / "exports" / "nyc_modzcta.parquet")

    document = json.loads(geojson_path.read_text())
    assert "crs" not in document  # RFC 7946: WGS84 is implied
    first = document["features"][0]
    assert first["properties"]["area_id"] == "10001" and first["properties"]["population"] == 23072
    assert first["properties"]["loaded_at"] == "2026-10-01T12:00:00Z"
    assert first["properties"]["requested_month"] == "2026-10-01"
    assert first["properties"]["closed_at"] is None
    assert first["properties"]["gap_index"] == pytest.approx(23072 / 42548)
    for feature in document["features"]:
        polygons = feature["geometry"]["coordinates"]
        if feature["geometry"]["type"] == "Polygon":
            polygons = [polygons]
        assert all(shapely.LinearRing(p[0]).is_ccw for p in polygons)  # RFC 7946 outer rings
        # Coordinates to 6 decimals.
        assert all(round(x, 6) == x for ring in polygons[0] for x, _ in ring)

    geojson = gpd.read_file(geojson_path)
    parquet = gpd.read_parquet(parquet_path)
    assert pq.read_schema(parquet_path).metadata[b"geo"]
    assert json.loads(pq.read_schema(parquet_path).metadata[b"geo"])["primary_column"] == "geometry"
    for reread in (geojson, parquet):
        assert reread.crs == WGS84
        assert list(reread["area_id"]) == list(frame["area_id"])
    # GeoJSON rounds each coordinate (a point within 1e-6 degrees); GeoParquet keeps them.
    assert (shapely.hausdorff_distance(geojson.geometry.values, frame.geometry.values) < 1e-6).all()
    same = shapely.equals_exact(
        shapely.normalize(parquet.geometry.values), shapely.normalize(frame.geometry.values), tolerance=1e-9
    )
    assert same.all()
    assert list(parquet["population"]) == list(frame["population"])
    assert parquet["loaded_at"].iloc[0] == pd.Timestamp("2026-10-01 12:00", tz="UTC")
    assert parquet["gap_index"].dtype == float


def test_a_layer_is_simplified_once_per_border(nyc):
    """NYC's MODZCTA simplified for a web map: far fewer points, every area kept and
    valid, each differing from its survey shape by under 2% of its area (measured: 0.16%
    at the median, 1.7% at most), neighbours still meeting."""
    simplified = simplified_layer(nyc)
    points = shapely.get_num_coordinates(nyc.geometry.values).sum()
    kept = shapely.get_num_coordinates(simplified.geometry.values).sum()
    assert kept < points / 3, (kept, points)
    assert list(simplified["area_id"]) == list(nyc["area_id"])
    assert shapely.is_valid(simplified.geometry.values).all()
    survey = shapely.area(nyc.geometry.values)
    differs = shapely.area(shapely.symmetric_difference(simplified.geometry.values, nyc.geometry.values))
    assert (differs / survey < 0.02).all(), (differs / survey).max()
    # A shared border is simplified once: the areas still tile what they tiled.
    union = shapely.union_all(simplified.geometry.values)
    assert abs(union.area - shapely.union_all(nyc.geometry.values).area) / union.area < 0.001
    overlaps = shapely.area(
        shapely.intersection(simplified.geometry.values[0], simplified.geometry.values[1:])
    )
    assert overlaps.sum() < 1e-9


def test_exports_need_a_crs(tmp_path):
    frame = gpd.GeoDataFrame({"area_id": ["a"]}, geometry=[shapely.box(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="no CRS"):
        write_geojson(frame, tmp_path / "x.geojson")
    with pytest.raises(ValueError, match="no CRS"):
        write_geoparquet(frame, tmp_path / "x.parquet")


def test_a_legend_of_long_category_names_stays_on_the_canvas():
    """The demo's week had 9 legend groups, some 56 characters long; 3 columns at 9 pt
    ran off both sides of the 1200 px map."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from ingestion.geography.maps import DPI, FIGSIZE_INCHES, fit_legend

    names = [
        "Parking", "Street condition", "Heat and hot water", "Homeless encampments and outreach",
        "Street lights and traffic signals", "Rodents and pests", "Water and sewer",
        "Graffiti and illegal postings", "Other categories",
    ]  # fmt: skip
    handles = [
        Line2D([], [], marker="o", linestyle="none", label=f"{name} (15 areas, 1,234 requests)")
        for name in names
    ]
    fig = Figure(figsize=(FIGSIZE_INCHES, FIGSIZE_INCHES), dpi=DPI)
    legend = fit_legend(fig, handles, centre=(0.5, 0.122))
    box = legend.get_window_extent(FigureCanvasAgg(fig).get_renderer())
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width
    assert len(legend.get_texts()) == 9 and legend.get_texts()[0].get_fontsize() >= 6.5


def test_labels_of_neighbouring_areas_do_not_cover_each_other(nyc):
    """Six adjacent Manhattan MODZCTAs, labelled as the gap map labels its widest gaps:
    drawn at their areas, the labels overlap (10032 over 10033 on the demo's map); placed,
    none covers another and none leaves the map."""
    import matplotlib.pyplot as plt

    crowded = nyc.set_index("area_id").loc[["10032", "10033", "10040", "10034", "10031", "10039"]]
    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    try:
        nyc.plot(ax=ax, facecolor="#eeeeee", edgecolor="white")
        ax.set_aspect("equal")
        points = [geometry.representative_point() for geometry in crowded.geometry]
        texts = [f"{area}\n2.4×" for area in crowded.index]
        drawn = [
            ax.text(p.x, p.y, t, fontsize=8, ha="center", va="center")
            for p, t in zip(points, texts, strict=True)
        ]
        fig.canvas.draw()
        boxes = [text.get_window_extent() for text in drawn]
        assert any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])  # the problem
        for text in drawn:
            text.remove()

        placed = place_labels(ax, points, texts, size=8)
        fig.canvas.draw()
        boxes = [text.get_window_extent() for text in placed]
        overlapping = [
            (i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j and a.overlaps(b)
        ]
        assert overlapping == []
        inside = ax.get_window_extent()
        assert all(
            inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            for box in boxes
        )
    finally:
        plt.close(fig)


def test_hotspot_labels_of_neighbouring_areas_do_not_cover_each_other(chicago, tmp_path, monkeypatch):
    """Twelve emerging hotspots in adjacent community areas of the North Side: every one
    is labelled, and no label covers another or leaves the map."""
    from ingestion.geography import maps

    neighbours = ["1", "2", "3", "4", "5", "6", "7", "13", "14", "15", "16", "77"]
    by_id = chicago.set_index("area_id").loc[neighbours]
    hotspots = gpd.GeoDataFrame(
        {
            "area_id": neighbours,
            "category": ["noise"] * len(neighbours),
            "requests": [20 + number for number in range(len(neighbours))],
            "expected": [2.5] * len(neighbours),
        },
        geometry=list(by_id.geometry),
        crs=WGS84,
    )
    seen = {}
    save = maps._save

    def boxes_then_save(fig, path):
        fig.canvas.draw()
        (ax,) = [ax for ax in fig.axes if ax.texts]
        labels = [text for text in ax.texts if re.fullmatch(r"\d+ vs \d+\.\d", text.get_text())]
        seen["boxes"] = [text.get_window_extent() for text in labels]
        seen["inside"] = ax.get_window_extent()
        return save(fig, path)

    monkeypatch.setattr(maps, "_save", boxes_then_save)
    hotspot_map(
        chicago[["area_id", "geometry"]],
        hotspots,
        city_name="Chicago",
        week=dt.date(2026, 10, 12),
        path=tmp_path / "crowded.png",
    )
    boxes, inside = seen["boxes"], seen["inside"]
    assert len(boxes) == len(neighbours)
    assert [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j and a.overlaps(b)] == []
    assert all(
        inside.x0 <= b.x0 and b.x1 <= inside.x1 and inside.y0 <= b.y0 and b.y1 <= inside.y1 for b in boxes
    )
