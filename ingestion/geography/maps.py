"""The maps civic311 shows in the Dagster UI (PNG) and exports for QGIS and
kepler.gl (GeoJSON, GeoParquet). Pure: frames in, files out, paths back.

Maps are drawn in the layer's local UTM zone, so shapes and the scale bar are
true, on a fixed 10 x 10 in canvas at 120 dpi (1200 x 1200 px) whatever the
city's outline, so a title never shrinks to unreadable. Matplotlib is imported
only when a map is drawn and only through `Figure` (no pyplot), so a process
drawing thousands of maps keeps no global figure registry and needs no display."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import textwrap
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon

from ingestion.geography.layers import WGS84

FIGSIZE_INCHES = 10.0
DPI = 120
POINTS_PER_FIGURE = FIGSIZE_INCHES * 72  # figure-fraction maths for text blocks
MAP_BOTTOM = 0.165  # below it: colour bar / legend band, caption, footer

# The gap index is a ratio: equal steps either side of 1.0 are equal factors, so
# the scale is logarithmic and symmetric (a quarter of the city's time ... four times it).
GAP_LIMITS = (0.25, 4.0)
GAP_TICKS = (0.25, 0.5, 0.67, 1.0, 1.5, 2.0, 4.0)
GAP_COLOURS = "RdBu_r"  # blue: faster than the city, red: slower
NO_DATA = {"facecolor": "#e4e4e4", "edgecolor": "#9a9a9a", "hatch": "////"}
MINIMUM_REQUESTS = 5  # mart_service_gaps computes no index below it
LABELLED_GAPS = 6
# Okabe-Ito (colour-blind safe; yellow dropped, unreadable on white) and two of Tol's
# muted colours: more categories than these cannot be told apart, the rest share grey.
CATEGORY_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#332288", "#882255")
SHOWN_CATEGORIES = len(CATEGORY_COLOURS)
LABELLED_HOTSPOTS = 15
OTHER, OTHER_COLOUR = "Other categories", "#7f7f7f"

GAP_CAPTION = (
    "Gap index = the area's Kaplan–Meier median hours to close ÷ the city-wide median, same month and "
    "category. 1.0 = city typical; above {threshold:g} (outlined) = a service gap. "
    "Grey hatch = fewer than {minimum} counted requests or no data."
)
HOTSPOT_CAPTION = (
    "Emerging = this week's requests far above the trailing 8-week baseline (Poisson p < 0.01, "
    f"at least {MINIMUM_REQUESTS} requests). Label: requests this week vs expected (baseline mean per week); "
    "marker area grows with requests."
)
NO_HOTSPOTS = "No emerging hotspots this week"


def gap_choropleth(
    areas: gpd.GeoDataFrame,
    gaps: pd.DataFrame,
    *,
    city_name: str,
    layer_label: str,
    month,
    path: Path | str,
    category: str | None = None,
    threshold: float = 1.5,
    synthetic: bool = False,
    why_category: str | None = None,
) -> Path:
    """A PNG choropleth of the service-gap index of `month` (a date or "YYYY-MM").

    `areas`: area_id, area_name, geometry (the boundary layer, any CRS).
    `gaps`: area_id, gap_index (float, null where the mart has none), counted_requests;
    exactly ONE row per area. mart_service_gaps holds a row per (area, category, month):
    the caller picks the figure to map (e.g. the all-categories row, or one category) and
    names it in `category`, which the title shows, and says why in `why_category`, which
    the subtitle shows. Rows for areas the layer lacks (`unlocated`) are not drawn. An
    area counts as a gap when its index is above `threshold`, as is_gap does; the
    LABELLED_GAPS widest are labelled on the map and every other one is listed under
    the subtitle, so no outlined area goes unnamed."""
    duplicated = gaps["area_id"][gaps["area_id"].duplicated()]
    if len(duplicated):
        raise ValueError(
            f"{city_name}: gap_choropleth needs one row per area; {sorted(set(duplicated))[:5]} repeat. "
            "Filter the mart to one category (or the all-categories figure) first."
        )
    mapped = areas[["area_id", "area_name", "geometry"]].merge(
        gaps[["area_id", "gap_index", "counted_requests"]], on="area_id", how="left"
    )
    mapped = gpd.GeoDataFrame(mapped, geometry="geometry", crs=areas.crs)
    mapped["gap_index"] = pd.to_numeric(mapped["gap_index"], errors="coerce").astype(float)
    # Clipped for colour only (labels keep the value): a 0-hour median would vanish on a log scale.
    mapped["shade"] = mapped["gap_index"].clip(*GAP_LIMITS)
    known = mapped["gap_index"].notna()
    is_gap = known & (mapped["gap_index"] > threshold)

    from matplotlib import colors
    from matplotlib.cm import ScalarMappable
    from matplotlib.patches import Patch

    norm = colors.LogNorm(*GAP_LIMITS, clip=True)
    summary, labelled = gap_subtitle(mapped, threshold, why_category)
    fig, ax, local = _map_figure(
        mapped,
        title=f"{city_name} — service-gap index by {layer_label}"
        + (f" ({category})" if category else "")
        + f", {_month_label(month)}",
        subtitle=summary,
        caption=GAP_CAPTION.format(threshold=threshold, minimum=MINIMUM_REQUESTS),
        footer=_footer(city_name, layer_label, synthetic),
        synthetic=synthetic,
    )
    projected = mapped.to_crs(local)
    if (~known).any():
        projected[~known].plot(ax=ax, linewidth=0.3, **NO_DATA)
    if known.any():
        projected[known].plot(
            ax=ax,
            column="shade",
            cmap=GAP_COLOURS,
            norm=norm,
            edgecolor="white",
            linewidth=0.35,
        )
    if is_gap.any():
        projected[is_gap].boundary.plot(ax=ax, color="#111111", linewidth=1.7)
    _finish_map(ax, projected)
    rows = projected.loc[labelled]
    place_labels(
        ax,
        [row.geometry.representative_point() for row in rows.itertuples()],
        [f"{row.area_name}\n{row.gap_index:.1f}×" for row in rows.itertuples()],
        size=8,
    )

    bar_axes = fig.add_axes((0.06, 0.118, 0.52, 0.02))
    bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=GAP_COLOURS), cax=bar_axes, orientation="horizontal", extend="both"
    )
    bar.set_ticks(GAP_TICKS, labels=[f"{t:g}×" for t in GAP_TICKS])
    bar.minorticks_off()
    bar.ax.tick_params(labelsize=9)
    bar.ax.axvline(threshold, color="#111111", linewidth=2)
    bar.set_label(
        "Gap index: area median hours to close ÷ city-wide median (log scale)", fontsize=9.5, labelpad=4
    )
    bar.ax.xaxis.set_label_position("top")
    handles = [
        Patch(facecolor="none", edgecolor="#111111", linewidth=1.7, label=f"Service gap (> {threshold:g}×)"),
        Patch(**NO_DATA, linewidth=0.5, label=f"No index (< {MINIMUM_REQUESTS} requests or no data)"),
    ]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.63, 0.122), frameon=False, fontsize=9.5)
    return _save(fig, path)


def gap_subtitle(mapped: pd.DataFrame, threshold: float, why_category: str | None) -> tuple[str, pd.Index]:
    """The choropleth's subtitle: its counts, why its category, and every gap it does
    not label; with the index (of `mapped`) of the LABELLED_GAPS widest gaps it labels.
    `mapped`: area_id, area_name, gap_index (float, NaN where none), counted_requests."""
    known = mapped["gap_index"].notna()
    is_gap = known & (mapped["gap_index"] > threshold)
    counted = int(pd.to_numeric(mapped["counted_requests"]).fillna(0).sum())
    summary = (
        f"{int(is_gap.sum())} of {len(mapped)} areas above {threshold:g}× the city-wide median · "
        f"{int((~known).sum())} without an index · {counted:,} requests counted"
    )
    if why_category:
        summary += f"\n{why_category}"
    ranked = mapped[is_gap].sort_values(["gap_index", "area_id"], ascending=[False, True])
    unlabelled = ranked.iloc[LABELLED_GAPS:]
    if len(unlabelled):
        listed = ", ".join(f"{row.area_name} {row.gap_index:.1f}×" for row in unlabelled.itertuples())
        summary += f"\nAlso gaps, not labelled: {listed}"
    return summary, ranked.index[:LABELLED_GAPS]


def hotspot_map(
    areas: gpd.GeoDataFrame,
    hotspots: gpd.GeoDataFrame,
    *,
    city_name: str,
    week,
    path: Path | str,
    layer_label: str | None = None,
    synthetic: bool = False,
    quiet: str = NO_HOTSPOTS,
) -> Path:
    """A PNG of the emerging hotspots of the ISO week starting `week` (its Monday).

    `areas`: area_id, geometry: the city's boundary layer, drawn as context.
    `hotspots`: area_id, category, requests, expected, geometry: one row per emerging
    (area, category) of the week (mart_hotspots where is_emerging, expected = baseline_mean);
    a geometry is an area polygon or an H3 cell (see h3_cell_polygons). An optional
    `category_name` column gives legend labels. An empty frame draws the city with the
    note `quiet` (why there is none), so a quiet week still has its map."""
    from matplotlib.lines import Line2D

    count = len(hotspots)
    subtitle = (
        f"{count} emerging hotspot{'s' if count != 1 else ''} (area × category) in ISO week {_iso_week(week)}"
        + (f" · {int(hotspots['requests'].sum()):,} requests" if count else "")
    )
    cells = [a for a in hotspots["area_id"].astype(str) if h3.is_valid_cell(a)] if count else []
    hexagons = f"; hexagons: H3 resolution {h3.get_resolution(cells[0])}" if cells else ""
    fig, ax, local = _map_figure(
        areas,
        title=f"{city_name} — emerging 311 hotspots, week of {_week_label(week)}",
        subtitle=subtitle,
        caption=HOTSPOT_CAPTION,
        footer=_footer(city_name, layer_label or "the city's boundary layer", synthetic) + hexagons,
        synthetic=synthetic,
    )
    context = areas.to_crs(local)
    context.plot(ax=ax, facecolor="#f3f3f0", edgecolor="#8c8c8c", linewidth=0.5)
    spots = hotspots.to_crs(local) if count else context.iloc[0:0]  # an empty frame may have no CRS
    _finish_map(ax, pd.concat([context.geometry, spots.geometry]))  # a cell past the boundary stays in frame
    if not count:
        ax.text(
            0.5,
            0.5,
            textwrap.fill(quiet, 44),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=17,
            color="#333333",
            bbox={"boxstyle": "round,pad=0.6", "facecolor": "white", "edgecolor": "#8c8c8c"},
        )
        return _save(fig, path)

    spots = spots.copy()
    spots["legend"] = _legend_groups(spots)
    totals = spots.groupby("legend")["requests"].sum().sort_values(ascending=False, kind="stable")
    groups = [g for g in totals.index if g != OTHER] + [g for g in totals.index if g == OTHER]
    colour = {g: OTHER_COLOUR if g == OTHER else CATEGORY_COLOURS[i] for i, g in enumerate(groups)}
    spots["colour"] = spots["legend"].map(colour)
    _draw_hotspots(ax, fig, spots)
    handles = []
    for group in groups:
        members = spots[spots["legend"] == group]
        pairs, requests = len(members), int(members["requests"].sum())
        label = f"{group} ({pairs} area{'s' if pairs != 1 else ''}, {requests:,} requests)"
        handles.append(
            Line2D([], [], marker="o", linestyle="none", markersize=10, label=label, color=colour[group])
        )
    fit_legend(fig, handles, centre=(0.5, 0.122))
    return _save(fig, path)


def fit_legend(fig, handles: list, *, centre: tuple[float, float], margin: float = 0.02):
    """The figure's legend at `centre` in 3 columns, at the largest font from 9 pt down
    to 6.5 pt that keeps it within `margin` of the figure's sides; 2 columns if even
    6.5 pt is too wide. Long category names (9 groups of "Homeless encampments and
    outreach (5 areas, 42 requests)") would otherwise run off the canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    width = fig.bbox.width * (1 - 2 * margin)
    tries = [(min(3, len(handles)), size) for size in (9, 8.5, 8, 7.5, 7, 6.5)] + [(min(2, len(handles)), 8)]
    for columns, size in tries:
        legend = fig.legend(
            handles=handles,
            loc="center",
            bbox_to_anchor=centre,
            ncols=columns,
            frameon=False,
            fontsize=size,
            columnspacing=1.2,
            handletextpad=0.3,
        )
        if legend.get_window_extent(renderer).width <= width or (columns, size) == tries[-1]:
            return legend
        legend.remove()


def _draw_hotspots(ax, fig, spots: gpd.GeoDataFrame) -> list:
    """Each hotspot area filled in the colour of its busiest category, and a marker per
    hotspot at the area's inner point whose size grows with the requests, stacked when an
    area has several categories. The most surprising are labelled "requests vs expected",
    starting on their marker's right and moved apart so that none covers another
    (`place_labels`); returns those labels. An area smaller than its marker (an H3 cell
    on a city map) gets a ring around it instead, so the cell itself stays visible."""
    from matplotlib.transforms import ScaledTranslation

    spots = spots.sort_values("requests", ascending=False, kind="stable")
    fills = spots.drop_duplicates("area_id")
    for fill_colour, areas in fills.groupby("colour", sort=False):
        areas.plot(ax=ax, facecolor=fill_colour, edgecolor="none", alpha=0.4)
        areas.boundary.plot(ax=ax, color=fill_colour, linewidth=1.6)

    largest = float(spots["requests"].max())
    ratio = spots["requests"] / spots["expected"].clip(lower=1 / 8)
    labelled = set(ratio.nlargest(LABELLED_HOTSPOTS).index)
    starts, texts = [], []
    for _, group in spots.groupby("area_id", sort=False):
        anchor = group.geometry.iloc[0].representative_point()
        extent = _extent_in_points(ax, fig, group.geometry.iloc[0])
        diameters = np.sqrt(40 + 360 * np.sqrt(group["requests"].to_numpy(float) / largest))
        ring = extent < 1.5 * diameters.max()
        if ring:
            diameters = np.maximum(diameters, 1.6 * extent + 4)
        step = diameters.max() + 3
        for slot, ((index, row), diameter) in enumerate(zip(group.iterrows(), diameters, strict=True)):
            rise = ((len(group) - 1) / 2 - slot) * step / 72
            offset = ax.transData + ScaledTranslation(0, rise, fig.dpi_scale_trans)
            ax.scatter(
                [anchor.x],
                [anchor.y],
                s=diameter**2,
                facecolor="none" if ring else row.colour,
                edgecolor=row.colour if ring else "white",
                linewidth=2.2 if ring else 1.2,
                transform=offset,
                zorder=5,
            )
            if index in labelled:
                # The label starts on the marker's right: that point in data units.
                beside = diameter / 2 + 3  # points
                start = (offset + ScaledTranslation(beside / 72, 0, fig.dpi_scale_trans)).transform(
                    (anchor.x, anchor.y)
                )
                starts.append(shapely.Point(ax.transData.inverted().transform(start)))
                texts.append(f"{int(row.requests)} vs {row.expected:.1f}")
    return place_labels(ax, starts, texts, size=8.5, ha="left")


def h3_cell_polygons(cells: Iterable[str]) -> gpd.GeoDataFrame:
    """One polygon per distinct H3 cell (area_id = the cell), in first-seen order, WGS84.

    h3 v4 gives a boundary as (lat, lng) pairs; GeoJSON and shapely want (x=lng, y=lat).
    Cells crossing the antimeridian are not split: no city of ours lies on it."""
    ids = list(dict.fromkeys(str(c) for c in cells))
    invalid = [c for c in ids if not h3.is_valid_cell(c)]
    if invalid:
        raise ValueError(f"not H3 cells: {invalid[:5]}; pass cell ids such as '882664c1a9fffff'")
    polygons = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ids]
    return gpd.GeoDataFrame({"area_id": ids}, geometry=polygons, crs=WGS84)


# GeoJSON coordinates to 6 decimals: 0.11 m of latitude, finer than the
# simplification below.
GEOJSON_DECIMALS = 6
# A layer's shapes are simplified for GeoJSON by this share of its median area's
# side (the square root of its area): about 25 m for NYC's MODZCTA, 60 m for LA's
# neighborhood councils. Shared borders stay shared (shapely.coverage_simplify).
SIMPLIFY_SHARE = 0.01


def simplified_layer(shapes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A boundary layer's shapes simplified for display, the same tolerance for the
    whole layer (SIMPLIFY_SHARE of its median area's side, in its own units), each
    border shared by two areas simplified once, so neighbours still meet."""
    if shapes.empty:
        return shapes
    tolerance = SIMPLIFY_SHARE * float(np.median(np.sqrt(shapely.area(shapes.geometry.values))))
    simplified = shapes.copy()
    simplified["geometry"] = shapely.coverage_simplify(shapes.geometry.values, tolerance)
    return simplified


def write_geojson(frame: gpd.GeoDataFrame, path: Path | str) -> Path:
    """`frame` as GeoJSON (RFC 7946: WGS84, counter-clockwise outer rings, coordinates
    to GEOJSON_DECIMALS). Properties are JSON values: instants become ISO-8601 text
    (UTC), dates "YYYY-MM-DD", decimals floats, durations ISO-8601 durations, lists and
    dicts JSON text."""
    if frame.crs is None:
        raise ValueError("write_geojson: the frame has no CRS; set it (layers are EPSG:4326)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _portable(frame.to_crs(WGS84), json_only=True).to_file(
        path,
        driver="GeoJSON",
        engine="pyogrio",
        layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": str(GEOJSON_DECIMALS)},
    )
    return path


def write_geoparquet(frame: gpd.GeoDataFrame, path: Path | str) -> Path:
    """`frame` as GeoParquet (WGS84), full precision. GeoParquet keeps instants and
    dates typed (QGIS and kepler.gl read them) and converts only what GDAL cannot read
    (decimals, durations, nested values)."""
    if frame.crs is None:
        raise ValueError("write_geoparquet: the frame has no CRS; set it (layers are EPSG:4326)")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _portable(frame.to_crs(WGS84), json_only=False).to_parquet(path, index=False)
    return Path(path)


def _portable(frame: gpd.GeoDataFrame, *, json_only: bool) -> gpd.GeoDataFrame:
    out = frame.copy()
    for name in out.columns:
        if name == out.geometry.name:
            continue
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.astype(object).where(column.notna(), None)
        elif pd.api.types.is_timedelta64_dtype(column):
            out[name] = column.map(lambda v: v.isoformat() if pd.notna(v) else None)
        elif pd.api.types.is_datetime64_any_dtype(column):
            if json_only:
                utc = column.dt.tz_convert("UTC") if column.dt.tz is not None else column
                out[name] = utc.map(lambda v: v.isoformat().replace("+00:00", "Z") if pd.notna(v) else None)
        elif column.dtype == object:
            out[name] = _portable_objects(column, json_only=json_only)
    return out


def _portable_objects(column: pd.Series, *, json_only: bool) -> pd.Series:
    values = column.dropna()
    if values.empty:
        return column
    # Text, the common case, needs nothing: pandas tells in C, where a test per value
    # cost about 20 s on the marts of a million requests.
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        return column
    if values.map(lambda v: isinstance(v, decimal.Decimal)).all():
        return column.map(lambda v: float(v) if v is not None and pd.notna(v) else None).astype(float)
    if values.map(lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime)).all():
        if json_only:
            return column.map(lambda v: v.isoformat() if v is not None and pd.notna(v) else None)
        return column
    if values.map(lambda v: isinstance(v, list | tuple | dict)).any():
        return column.map(lambda v: json.dumps(v, default=str) if isinstance(v, list | tuple | dict) else v)
    return column


def _map_figure(frame, *, title, subtitle, caption, footer, synthetic):
    """The fixed page: title block on top, map in the middle, caption and footer below."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGSIZE_INCHES, FIGSIZE_INCHES), dpi=DPI, facecolor="white")
    top = _text_block(fig, title, 0.975, size=16, weight="bold", width=64, balanced=True)
    top = _text_block(fig, subtitle, top - 0.008, size=11, color="#444444", width=100)
    ax = fig.add_axes((0.03, MAP_BOTTOM, 0.94, top - 0.012 - MAP_BOTTOM))
    ax.set_axis_off()
    _text_block(fig, caption, 0.082, size=9, color="#333333", width=125)
    fig.text(0.03, 0.016, footer, fontsize=8.5, color="#666666", va="bottom")
    if synthetic:
        fig.text(
            0.97,
            0.016,
            "SYNTHETIC DEMO DATA",
            fontsize=10,
            weight="bold",
            color="white",
            ha="right",
            va="bottom",
            bbox={"boxstyle": "square,pad=0.35", "facecolor": "#b2182b", "edgecolor": "none"},
        )
        ax.text(
            0.5,
            0.5,
            "SYNTHETIC DEMO DATA",
            transform=ax.transAxes,
            ha="center",
            va="center",
            rotation=30,
            fontsize=46,
            weight="bold",
            color="#b2182b",
            alpha=0.16,
            zorder=10,
        )
    return fig, ax, frame.estimate_utm_crs()


def _text_block(fig, text, top, *, size, width, balanced=False, **style) -> float:
    """Wrapped text hanging from `top` (figure fraction); returns where it ends. A
    `balanced` block narrows its lines while their number holds, so a long title
    breaks in the middle rather than leaving one word alone on its second line."""
    count = len(textwrap.wrap(text, width))
    while balanced and count > 1 and len(textwrap.wrap(text, width - 1)) == count:
        width -= 1
    # Each paragraph (a line of `text`) wraps on its own.
    lines = "\n".join(textwrap.fill(paragraph, width=width) for paragraph in text.split("\n"))
    fig.text(0.03, top, lines, fontsize=size, va="top", ha="left", linespacing=1.25, **style)
    return top - (lines.count("\n") + 1) * size * 1.25 / POINTS_PER_FIGURE


def _finish_map(ax, frame: gpd.GeoDataFrame | gpd.GeoSeries) -> None:
    """Equal-aspect extent with a margin, a scale bar and a north arrow in empty corners."""
    xmin, ymin, xmax, ymax = frame.total_bounds
    pad = 0.04 * max(xmax - xmin, ymax - ymin)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_aspect("equal")
    ax.apply_aspect()  # settle the axes box now: marker sizing reads data-to-points scale
    land = shapely.union_all(frame.geometry.values)
    bottom = _emptiest_corner(land, ax, ("lower left", "lower right"))
    _scale_bar(ax, bottom)
    north = _emptiest_corner(land, ax, ("upper left", "upper right"))
    x = 0.04 if north == "upper left" else 0.96
    ax.annotate(
        "N",
        xy=(x, 0.97),
        xytext=(x, 0.89),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=12,
        weight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "#333333", "linewidth": 1.5},
    )


def _extent_in_points(ax, fig, geometry) -> float:
    """The larger side of `geometry`'s bounding box as drawn, in points."""
    xmin, ymin, xmax, ymax = geometry.bounds
    (x0, y0), (x1, y1) = ax.transData.transform([(xmin, ymin), (xmax, ymax)])
    return max(abs(x1 - x0), abs(y1 - y0)) * 72 / fig.dpi


def _emptiest_corner(land, ax, corners) -> str:
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    w, h = (x1 - x0) * 0.3, (y1 - y0) * 0.15
    boxes = {
        "lower left": (x0, y0, x0 + w, y0 + h),
        "lower right": (x1 - w, y0, x1, y0 + h),
        "upper left": (x0, y1 - h, x0 + w, y1),
        "upper right": (x1 - w, y1 - h, x1, y1),
    }
    return min(corners, key=lambda c: land.intersection(shapely.box(*boxes[c])).area)


def _scale_bar(ax, corner: str) -> None:
    """A bar of a round length near a fifth of the map's width (the map is in metres)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    target = (x1 - x0) / 5
    length = max((k * 10**e for e in range(1, 6) for k in (1, 2, 5) if k * 10**e <= target), default=target)
    start = x0 + 0.04 * (x1 - x0) if corner == "lower left" else x1 - 0.04 * (x1 - x0) - length
    y = y0 + 0.035 * (y1 - y0)
    half = length / 2
    for i, colour in enumerate(("#333333", "white")):
        ax.add_patch(
            _rectangle((start + i * half, y), half, 0.008 * (y1 - y0), colour),
        )
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    _label(ax, shapely.Point(start + length / 2, y + 0.028 * (y1 - y0)), label, size=9)


def _rectangle(xy, width, height, colour):
    from matplotlib.patches import Rectangle

    return Rectangle(xy, width, height, facecolor=colour, edgecolor="#333333", linewidth=0.8, zorder=6)


def place_labels(ax, points: list, texts: list[str], *, size: float, ha: str = "center") -> list:
    """Labels at `points` (in the axes' data units; aligned there by `ha`), moved apart by
    adjustText so that none covers another, each moved one tied to its point by a thin
    line. Call once the axes' limits are final. Returns the matplotlib Text objects."""
    if not texts:
        return []
    from adjustText import adjust_text

    # The north arrow and the scale bar's text, already on the map, stay uncovered too.
    drawn = list(ax.texts)
    labels = [_label(ax, point, text, size=size, ha=ha) for point, text in zip(points, texts, strict=True)]
    adjust_text(
        labels,
        target_x=[point.x for point in points],
        target_y=[point.y for point in points],
        objects=drawn or None,
        ax=ax,
        expand=(1.15, 1.3),
        arrowprops={"arrowstyle": "-", "color": "#333333", "linewidth": 0.7},
    )
    return labels


def _label(ax, point, text, *, size, ha="center"):
    """Dark text with a white halo, readable over any fill."""
    from matplotlib import patheffects

    return ax.text(
        point.x,
        point.y,
        text,
        ha=ha,
        va="center",
        fontsize=size,
        color="#111111",
        zorder=7,
        linespacing=1.1,
        path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
    )


def _legend_groups(spots: pd.DataFrame) -> pd.Series:
    """Each hotspot's legend entry: its category's name, or "Other categories" beyond the
    SHOWN_CATEGORIES with most requests (more colours than that cannot be told apart)."""
    if "category_name" in spots.columns:
        names = spots["category_name"].astype(str)
    else:
        names = spots["category"].astype(str).str.replace("_", " ").str.capitalize()
    ranked = spots.groupby(names)["requests"].sum().sort_values(ascending=False)
    shown = set(ranked.index[:SHOWN_CATEGORIES]) if len(ranked) > SHOWN_CATEGORIES + 1 else set(ranked.index)
    return names.where(names.isin(shown), OTHER)


def _footer(city_name: str, layer_label: str, synthetic: bool) -> str:
    if synthetic:
        source = "a synthetic feed generated by civic311"
    else:
        source = f"{city_name} 311 open data via civic311"
    return f"Source: {source}; boundaries: {layer_label}"


def _month_label(month) -> str:
    return pd.Timestamp(month).strftime("%B %Y")


def _week_label(week) -> str:
    return pd.Timestamp(week).date().isoformat()


def _iso_week(week) -> str:
    year, number, _ = pd.Timestamp(week).isocalendar()
    return f"{year}-W{number:02d}"


def _save(fig, path: Path | str) -> Path:
    """Write the PNG at the canvas size (no tight bbox: every map is 1200 x 1200 px) and
    drop the figure's artists at once rather than waiting for the collector."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    fig.clear()
    return path
