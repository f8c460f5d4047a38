"""A city's maps and area exports, read from the warehouse's marts.

For the city's first boundary layer (its headline geography):
    <out>/<city>/service_gaps.png   gap index by area, latest month, busiest category
    <out>/<city>/hotspots.png       emerging hotspots of the latest week (areas and H3 cells)
and, for every boundary layer, the area-level marts:
    <out>/<city>/service_gaps_<layer>.geojson   latest month, each area-category with a gap index
    <out>/<city>/hotspots_<layer>.geojson       latest week, each emerging area-category
    <out>/<city>/service_gaps_<layer>.parquet   every month (no geometry: join the areas on area_id)
    <out>/<city>/hotspots_<layer>.parquet       every week (the same)
    <out>/<city>/areas_<layer>.parquet          the layer's areas, GeoParquet, full precision
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import shapely

from ingestion.geography.maps import (
    NO_HOTSPOTS,
    gap_choropleth,
    h3_cell_polygons,
    hotspot_map,
    simplified_layer,
    write_geojson,
    write_geoparquet,
)
from ingestion.registry import City

# Set to "1" by `civic311 demo` and `civic311 dev` over the demo's generated feed:
# the maps drawn from the warehouse then say the data is synthetic.
SYNTHETIC_ENV = "CIVIC311_SYNTHETIC_DATA"


@dataclass
class CityMaps:
    city_id: str
    layer: str
    month: str | None = None
    category: str | None = None
    week: str | None = None
    emerging: int = 0
    # Why the hotspot map shows none: too little history, or a quiet week.
    quiet: str | None = None
    pngs: dict[str, Path] = field(default_factory=dict)
    exports: dict[str, Path] = field(default_factory=dict)


def boundary_areas(con: duckdb.DuckDBPyConnection, city_id: str, layer: str) -> gpd.GeoDataFrame:
    frame = con.execute(
        """select area_id, area_name, population, area_km2, vintage, geometry_wkb
        from geography.boundaries where city_id = ? and layer = ? order by area_id""",
        [city_id, layer],
    ).df()
    geometry = shapely.from_wkb(frame.pop("geometry_wkb").map(bytes))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def _category_names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("select category_id, category_name from reference.service_categories").fetchall())


def render_city_maps(warehouse: Path, city: City, out_dir: Path, *, synthetic: bool = False) -> CityMaps:
    """Draw and export `city`'s maps from the marts in `warehouse` (opened read-only)."""
    layer = city.boundaries[0]
    target = out_dir / city.id
    target.mkdir(parents=True, exist_ok=True)
    done = CityMaps(city_id=city.id, layer=layer.name)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = _category_names(con)
        (loaded,) = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'geography' and table_name = 'boundaries'"
        ).fetchone()
        areas = (
            {each.name: boundary_areas(con, city.id, each.name) for each in city.boundaries} if loaded else {}
        )
        if layer.name not in areas or areas[layer.name].empty:
            raise ValueError(
                f"{city.id}: boundary layer {layer.name!r} has no areas in geography.boundaries; "
                f"load it first (the refresh_boundaries job, or its asset geography/boundaries "
                f"with config cities: [{city.id}])"
            )
        _gap_map(con, city, layer.name, layer.label, areas[layer.name], names, target, synthetic, done)
        _hotspot_map(con, city, layer.name, layer.label, areas[layer.name], names, target, synthetic, done)
        for name, shapes in areas.items():
            if not shapes.empty:  # a declared layer not loaded yet has nothing to export
                _exports(con, city.id, name, shapes, target, done)
    return done


def _gap_map(con, city, layer, label, areas, names, target, synthetic, done: CityMaps) -> None:
    latest = con.execute(
        "select max(requested_month) from marts.mart_service_gaps where city_id = ? and layer = ?",
        [city.id, layer],
    ).fetchone()[0]
    gaps = pd.DataFrame(columns=["area_id", "gap_index", "counted_requests"])
    if latest is not None:
        # One figure per area: the month's busiest category across the city.
        done.category, busiest, everything = con.execute(
            """select category_id, sum(counted_requests), sum(sum(counted_requests)) over ()
            from marts.mart_service_gaps
            where city_id = ? and layer = ? and requested_month = ? and area_id <> 'unlocated'
            group by category_id order by sum(counted_requests) desc, category_id limit 1""",
            [city.id, layer, latest],
        ).fetchone()
        gaps = con.execute(
            """select area_id, gap_index, counted_requests from marts.mart_service_gaps
            where city_id = ? and layer = ? and requested_month = ? and category_id = ?""",
            [city.id, layer, latest, done.category],
        ).df()
        done.month = latest.strftime("%Y-%m")
    category = names.get(done.category, done.category or "no requests yet")
    why = (
        f"{category}: the month's busiest category, {busiest:,} of its {everything:,} counted requests "
        "(every category is in the exports)"
        if done.category
        else None
    )
    done.pngs["service_gaps"] = gap_choropleth(
        areas,
        gaps,
        city_name=city.name,
        layer_label=label,
        category=category,
        month=latest or pd.Timestamp.now(tz="UTC").date().replace(day=1),
        path=target / "service_gaps.png",
        synthetic=synthetic,
        why_category=why,
    )


def _hotspot_map(con, city, layer, label, areas, names, target, synthetic, done: CityMaps) -> None:
    week = con.execute(
        "select max(requested_week) from marts.mart_hotspots where city_id = ? and layer in (?, 'h3')",
        [city.id, layer],
    ).fetchone()[0]
    spots = con.execute(
        """select layer, area_id, category_id, requests, baseline_mean as expected
        from marts.mart_hotspots
        where city_id = ? and layer in (?, 'h3') and requested_week = ? and is_emerging
            and area_id <> 'unlocated'
        order by requests desc""",
        [city.id, layer, week],
    ).df()
    polygons = pd.concat(
        [
            areas[["area_id", "geometry"]].assign(layer=layer),
            h3_cell_polygons(spots.loc[spots["layer"] == "h3", "area_id"]).assign(layer="h3"),
        ]
    )
    spots = spots.merge(polygons, on=["layer", "area_id"], how="inner")
    spots["category"] = spots["category_id"]
    spots["category_name"] = spots["category_id"].map(names).fillna(spots["category_id"])
    done.week = week.isoformat() if week is not None else None
    done.emerging = len(spots)
    done.quiet = None if len(spots) else (untested(con, city.id, layer) or NO_HOTSPOTS)
    done.pngs["hotspots"] = hotspot_map(
        areas[["area_id", "geometry"]],
        gpd.GeoDataFrame(spots, geometry="geometry", crs="EPSG:4326"),
        city_name=city.name,
        week=week or pd.Timestamp.now(tz="UTC").date(),
        path=target / "hotspots.png",
        layer_label=label,
        synthetic=synthetic,
        quiet=done.quiet or NO_HOTSPOTS,
    )


def untested(con: duckdb.DuckDBPyConnection, city_id: str, layer: str) -> str | None:
    """Why no hotspot can have emerged in `layer` yet: no area-week has its full 8-week
    baseline. None once one has (a quiet week is then just quiet)."""
    weeks, tested = con.execute(
        "select count(distinct requested_week), count(*) filter (where has_full_baseline) "
        "from marts.mart_hotspots where city_id = ? and layer = ?",
        [city_id, layer],
    ).fetchone()
    if tested:
        return None
    return (
        f"Too little history to test: {weeks} week{'' if weeks == 1 else 's'} of requests, "
        "and a week is tested after 8 weeks of baseline"
    )


# The area marts exported per layer, and the period that orders each.
# The GeoJSON keeps the rows a web map colours: an area-category with a gap index (the
# others had too few requests), an emerging area-category (the hotspot map's).
EXPORTED = {
    "service_gaps": ("mart_service_gaps", "requested_month", "gap_index is not null"),
    "hotspots": ("mart_hotspots", "requested_week", "is_emerging"),
}


def _exports(con, city_id: str, layer: str, areas: gpd.GeoDataFrame, target: Path, done: CityMaps) -> None:
    """For `layer`: each area mart's latest period as GeoJSON over the layer's simplified
    shapes, the rows a web map colours (EXPORTED); the mart's whole history, every row,
    as Parquet (no geometry: join areas_<layer>.parquet on area_id); and the areas as
    GeoParquet, full precision."""
    shapes = simplified_layer(areas[["area_id", "area_name", "geometry"]])
    for name, (mart, period, mapped) in EXPORTED.items():
        mine = f"from marts.{mart} where city_id = $city and layer = $layer"
        latest = con.execute(
            f"select * exclude (city_id) {mine} and {mapped} "  # noqa: S608 - fixed names
            f"and {period} = (select max({period}) {mine})",
            {"city": city_id, "layer": layer},
        ).df()
        located = gpd.GeoDataFrame(shapes.merge(latest, on="area_id", how="inner"), geometry="geometry")
        done.exports[f"{name}_{layer}.geojson"] = write_geojson(located, target / f"{name}_{layer}.geojson")
        history = con.execute(
            f"select * {mine} order by {period}, area_id, category_id",  # noqa: S608 - fixed names
            {"city": city_id, "layer": layer},
        ).to_arrow_table()
        pq.write_table(history, target / f"{name}_{layer}.parquet")
        done.exports[f"{name}_{layer}.parquet"] = target / f"{name}_{layer}.parquet"
    whole = areas[["area_id", "area_name", "population", "area_km2", "vintage", "geometry"]]
    done.exports[f"areas_{layer}.parquet"] = write_geoparquet(whole, target / f"areas_{layer}.parquet")
