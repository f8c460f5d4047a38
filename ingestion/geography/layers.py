"""A boundary layer as civic311 keeps it: one row per area key, valid polygons in
WGS84, whatever the source file's projection, and the population where the
layer carries one.

Sources differ in ways a spatial join must not see: a file projected in Web
Mercator, a polygon that crosses itself, an area split over several features
(SF's analysis neighbourhoods come as 195 census tracts). `normalise_layer`
irons these out once, so every join reads the same shape of table."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from ingestion.redact import RedactedError

WGS84 = "EPSG:4326"
POLYGONAL = ("Polygon", "MultiPolygon")


class LayerError(RedactedError, ValueError):
    """A boundary layer that cannot be used as declared; the message says what to fix."""


def _polygonal(geometry):
    """The polygonal part of a repaired geometry: make_valid may return a collection
    holding lines or points where a ring touched itself."""
    if geometry is None or geometry.geom_type in POLYGONAL:
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in POLYGONAL]
    return shapely.union_all(parts) if parts else None


def normalise_layer(
    frame: gpd.GeoDataFrame,
    key: str,
    *,
    city_id: str,
    layer: str,
    population: str | None = None,
    assumed_crs: str = WGS84,
) -> gpd.GeoDataFrame:
    """One row per `key` value (`area_id`, text), WGS84, valid polygons; `parts` counts
    the source features dissolved into each area and `population` (when named) is
    their sum. A file without a CRS is read as `assumed_crs` (GeoJSON's is WGS84)."""
    where = f"{city_id}: boundary layer {layer!r}"
    missing = [c for c in (key, population) if c and c not in frame.columns]
    if missing:
        available = ", ".join(c for c in frame.columns if c != frame.geometry.name)
        raise LayerError(
            f"{where} has no property {missing[0]!r}; it has {available}. "
            "Set the layer's key (or population) in the registry to one of these."
        )
    if frame[key].isna().any():
        rows = int(frame[key].isna().sum())
        raise LayerError(
            f"{where}: {rows} feature(s) have no {key!r}, so they cannot be an area. "
            "Fix the file or choose a key every feature has."
        )
    if frame.crs is None:
        frame = frame.set_crs(assumed_crs)
    frame = frame.to_crs(WGS84)

    geometry = shapely.make_valid(frame.geometry.values)
    areas = gpd.GeoDataFrame(
        {
            "area_id": frame[key].astype(str).str.strip(),
            "population": frame[population] if population else None,
            "parts": 1,
        },
        geometry=[_polygonal(g) for g in geometry],
        crs=WGS84,
    )
    empty = areas.geometry.isna() | areas.geometry.is_empty
    if empty.any():
        ids = sorted(areas.loc[empty, "area_id"].unique())[:5]
        raise LayerError(
            f"{where}: area(s) {ids} have no polygon after repair. Fix or drop them in the file."
        )
    dissolved = areas.dissolve(
        by="area_id",
        aggfunc={"parts": "sum", "population": "sum" if population else "first"},
        as_index=False,
    )
    if not population:
        dissolved["population"] = None
    return dissolved[["area_id", "population", "parts", "geometry"]]


def read_layer(
    path: Path | str,
    key: str,
    *,
    city_id: str,
    layer: str,
    population: str | None = None,
) -> gpd.GeoDataFrame:
    """`normalise_layer` over a file geopandas can read (GeoJSON, GeoPackage, Shapefile ...)."""
    path = Path(path)
    if not path.exists():
        raise LayerError(
            f"{city_id}: boundary layer {layer!r} file {path} does not exist. Check its source path."
        )
    return normalise_layer(gpd.read_file(path), key, city_id=city_id, layer=layer, population=population)


MIN_PIECE_VERTICES = 16
MAX_HALVINGS = 40


def subdivide(geometry, max_vertices: int = 64, _depth: int = 0) -> list:
    """`geometry` cut into pieces of at most `max_vertices` coordinates, halving its
    bounding box along the longer side until each piece is small enough.

    Point-in-polygon work grows with the vertices tested and the bounding boxes
    that match: a ZIP area traced in 2,000 vertices is a slow candidate for every
    point near it. Small pieces with tight boxes let the spatial index settle most
    points against one short ring (NYC MODZCTA: 178 areas, 80k vertices, become
    about 2,600 pieces, and a join runs several times faster). The pieces cover the
    area exactly; a point on a cut line touches two pieces of the same area.

    A piece cut from a corner of a ring can need a dozen coordinates however small
    it gets, so `max_vertices` must be at least 16; and after 40 halvings (a box
    2^-20 of the area's size each way) a piece is kept as it is."""
    if max_vertices < MIN_PIECE_VERTICES:
        raise ValueError(f"subdivide: max_vertices must be at least {MIN_PIECE_VERTICES}, not {max_vertices}")
    if shapely.get_num_coordinates(geometry) <= max_vertices or _depth >= MAX_HALVINGS:
        return [geometry]
    xmin, ymin, xmax, ymax = geometry.bounds
    if xmax - xmin >= ymax - ymin:
        middle = (xmin + xmax) / 2
        halves = [(xmin, ymin, middle, ymax), (middle, ymin, xmax, ymax)]
    else:
        middle = (ymin + ymax) / 2
        halves = [(xmin, ymin, xmax, middle), (xmin, middle, xmax, ymax)]
    pieces = []
    for box in halves:
        part = _polygonal(shapely.clip_by_rect(geometry, *box))
        if part is not None and not part.is_empty:
            pieces.extend(subdivide(part, max_vertices, _depth + 1))
    return pieces
