"""Geography assets: boundary layers in, maps out.

geography/boundaries   every city's declared boundary layers (geopandas) ->
                       geography.boundaries, boundary_pieces, zip_areas;
                       int_request_areas (dbt) joins requests to them
maps/<city>            the city's gap and hotspot maps (PNG, shown in the
                       asset's metadata) and GeoJSON / GeoParquet exports
"""

import base64
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from ingestion.geography.boundaries import load_layer, write_layers
from ingestion.geography.city_maps import SYNTHETIC_ENV, render_city_maps
from ingestion.registry import City, Registry
from orchestration.assets.publishing import audit
from orchestration.redaction import redacted
from orchestration.resources import WAREHOUSE_POOL, holds_warehouse

BOUNDARIES = AssetKey(["geography", "boundaries"])
PIECES = AssetKey(["geography", "boundary_pieces"])
ZIP_AREAS = AssetKey(["geography", "zip_areas"])
MAP_INPUTS = [AssetKey(["marts", "mart_service_gaps"]), AssetKey(["marts", "mart_hotspots"]), BOUNDARIES]


def maps_dir(warehouse: Path) -> Path:
    """`CIVIC311_MAPS_DIR`, else maps/ beside the warehouse."""
    return Path(os.environ.get("CIVIC311_MAPS_DIR") or warehouse.parent / "maps")


class BoundariesConfig(Config):
    """Which cities and layers to (re)load; empty means all of them. A declared layer
    left out is kept as it is; a stored layer the registry no longer declares is
    removed. The demo loads only its city's layers that need no download."""

    cities: list[str] = []
    layers: list[str] = []


def build_boundaries_asset(registry: Registry, warehouse: Path) -> AssetsDefinition:
    @multi_asset(
        specs=[
            AssetSpec(
                BOUNDARIES,
                group_name="geography",
                kinds={"geopandas", "duckdb"},
                description=(
                    "Every city's boundary layers from the registry, normalised (WGS84, repaired, "
                    "dissolved per key) with population, vintage and version. A layer whose version "
                    "changes is rejoined by int_request_areas; the others are left alone."
                ),
            ),
            AssetSpec(
                PIECES,
                group_name="geography",
                kinds={"duckdb"},
                description="Each area cut into pieces of at most 64 vertices: what the spatial join tests.",
            ),
            AssetSpec(
                ZIP_AREAS,
                group_name="geography",
                kinds={"duckdb"},
                description="ZIP -> area per layer (NYC ZCTA -> MODZCTA), for requests without a point.",
            ),
        ],
        name="geography__boundaries",
        pool=WAREHOUSE_POOL,
    )
    @redacted
    @holds_warehouse(warehouse)
    def boundaries(context: AssetExecutionContext, config: BoundariesConfig):
        rows = []
        cache = warehouse.parent / "boundaries"
        chosen = [registry.city(city_id) for city_id in config.cities] or registry.cities
        unknown = sorted(set(config.layers) - {layer.name for city in chosen for layer in city.boundaries})
        if unknown:
            raise ValueError(
                f"boundaries config: no chosen city declares layer(s) {', '.join(unknown)}; "
                "use the layer names of ingestion/cities.yaml"
            )
        for city in chosen:
            wanted = [layer for layer in city.boundaries if not config.layers or layer.name in config.layers]
            if config.layers and not wanted:
                continue  # none of this city's layers was asked for
            layers = [load_layer(city, layer, cache_dir=cache) for layer in wanted]
            outcome = write_layers(warehouse, city.id, layers, {layer.name for layer in city.boundaries})
            for layer in layers:
                rows.append(
                    {
                        "city": city.id,
                        "layer": layer.name,
                        "vintage": layer.spec.vintage,
                        "version": layer.version,
                        "areas": len(layer.areas),
                        "with population": int(layer.areas["population"].notna().sum()),
                        "population rows unmatched": len(layer.unmatched_population),
                        "outcome": outcome[layer.name],
                    }
                )
            for name, result in outcome.items():
                if result == "removed":
                    rows.append({"city": city.id, "layer": name, "outcome": "removed"})
        columns = [
            "city",
            "layer",
            "vintage",
            "version",
            "areas",
            "with population",
            "population rows unmatched",
        ]
        table = pd.DataFrame(rows, columns=[*columns, "outcome"])
        context.log.info("boundary layers: %s", table[["city", "layer", "outcome"]].to_dict("records"))
        yield MaterializeResult(asset_key=PIECES)
        yield MaterializeResult(asset_key=ZIP_AREAS)
        yield MaterializeResult(
            asset_key=BOUNDARIES,
            metadata={
                "layers": MetadataValue.md(table.to_markdown(index=False)),
                "layer_count": len(table),
                "areas": int(table["areas"].fillna(0).sum()),
                "changed_layers": MetadataValue.json(
                    table.loc[table["outcome"] != "unchanged", ["city", "layer"]].to_dict("records")
                ),
            },
        )

    return boundaries


def _png(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def build_maps_asset(
    city: City, warehouse: Path, gating_checks: Sequence[AssetCheckKey] = ()
) -> AssetsDefinition:
    """The city's maps. Like the publish, they are drawn only while no blocking check
    has failed (`audit`): a map must not show a mart that failed its checks."""

    @asset(
        key=AssetKey(["maps", city.id]),
        group_name="maps",
        deps=MAP_INPUTS,
        pool=WAREHOUSE_POOL,
        tags={"city": city.id},
        kinds={"matplotlib", "geoparquet"},
        description=(
            f"{city.name}: the service-gap choropleth of the latest month and the emerging "
            "hotspots of the latest week, plus GeoJSON of the area marts' latest period, their "
            "history as Parquet and the areas as GeoParquet."
        ),
    )
    @redacted
    @holds_warehouse(warehouse)
    def city_maps(context: AssetExecutionContext) -> MaterializeResult:
        audit(context.instance, gating_checks, f"Drawing {city.id}'s maps")
        # The demo's feeds are synthetic, and its maps say so.
        synthetic = os.environ.get(SYNTHETIC_ENV) == "1"
        done = render_city_maps(warehouse, city, maps_dir(warehouse), synthetic=synthetic)
        gap, hot = done.pngs["service_gaps"], done.pngs["hotspots"]
        return MaterializeResult(
            metadata={
                "service_gap_map": MetadataValue.md(
                    f"Service-gap index by {done.layer}, {done.month} ({done.category})\n\n"
                    f"![service gaps](data:image/png;base64,{_png(gap)})"
                ),
                "hotspot_map": MetadataValue.md(
                    f"Emerging hotspots, week of {done.week}: {done.emerging}"
                    + (f" ({done.quiet})" if done.quiet else "")
                    + "\n\n"
                    f"![hotspots](data:image/png;base64,{_png(hot)})"
                ),
                "service_gap_png": MetadataValue.path(str(gap)),
                "hotspot_png": MetadataValue.path(str(hot)),
                "exports": MetadataValue.json({name: str(path) for name, path in done.exports.items()}),
                "layer": done.layer,
                "month": done.month or "",
                "week": done.week or "",
                "emerging_hotspots": done.emerging,
            }
        )

    return city_maps
