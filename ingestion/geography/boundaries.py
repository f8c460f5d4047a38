"""Boundary layers from the registry into the warehouse's `geography` schema.

    geography.boundaries       one row per (city, layer, area): name, population,
                               km², the polygon as WKB, the layer's vintage and version,
                               and its reported_code (where the city's own code is)
    geography.boundary_pieces  each area cut into small pieces (layers.subdivide):
                               what the spatial join tests points against
    geography.zip_areas        ZIP -> area, for requests with a ZIP but no point

`layer_version` is the vintage plus a digest of the files and the declaration
that made the layer, so any change to a layer, and only that, shows as a new
version; int_request_areas rejoins the layers whose version moved.

Geometry is stored as WKB blobs, readable without the spatial extension (BI tools,
GeoParquet exports); the join reads them with ST_GeomFromWKB.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow as pa
import requests
import shapely

from ingestion.geography.layers import LayerError, normalise_layer, subdivide
from ingestion.redact import get_logger
from ingestion.registry import BoundaryLayer, City, FileSource

log = get_logger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIRROR_ENV = "CIVIC311_BOUNDARY_MIRROR"
SCHEMA = "geography"
PIECE_VERTICES = 64


@dataclass
class LoadedLayer:
    city_id: str
    spec: BoundaryLayer
    version: str
    areas: gpd.GeoDataFrame  # area_id, area_name, population, parts, area_km2, geometry
    zips: pd.DataFrame  # zip, area_id
    population_source: str | None
    unmatched_population: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


def resolve_file(source: FileSource, *, city_id: str, what: str, cache_dir: Path) -> Path:
    """The local file behind `source`: a package resource, a project path, the
    mirror's copy of a URL, or the URL downloaded once into `cache_dir`."""
    if source.package:
        package, _, inside = source.package.partition(":")
        try:
            path = Path(str(importlib.resources.files(package) / inside))
        except ModuleNotFoundError:
            raise LayerError(
                f"{city_id}: {what} comes from package {package!r}, which is not installed. "
                "Add it to the project's dependencies."
            ) from None
    elif source.path:
        path = Path(source.path)
        path = path if path.is_absolute() else PROJECT_ROOT / path
    elif os.environ.get(MIRROR_ENV):
        if not source.mirror:
            raise LayerError(
                f"{city_id}: {what} has no mirror path, but {MIRROR_ENV} is set. "
                f"Give the source a mirror: path under {os.environ[MIRROR_ENV]}."
            )
        path = Path(os.environ[MIRROR_ENV]) / source.mirror
    else:
        path = _download(source.url, city_id=city_id, what=what, cache_dir=cache_dir)
    if not path.exists():
        raise LayerError(f"{city_id}: {what} file {path} does not exist. Check the layer's source.")
    return path


def _download(url: str, *, city_id: str, what: str, cache_dir: Path) -> Path:
    name = re.sub(r"[^\w.-]", "_", url.split("?")[0].rsplit("/", 1)[-1])[-60:]
    target = cache_dir / city_id / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
    if target.exists():
        return target
    log.info("%s: downloading %s", city_id, what)
    try:
        response = requests.get(url, timeout=120)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise LayerError(
            f"{city_id}: could not download {what} ({type(exc).__name__}). Check the URL, or set "
            f"{MIRROR_ENV} to a directory holding a copy of the file at the source's mirror path."
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(response.content)
    partial.replace(target)
    return target


def match_key(value: object) -> str:
    """How keys from different files meet: lowercase letters and digits only, and
    no leading zeros on a number ('01' = '1' = '1.0' for Chicago's area ids)."""
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+(\.0+)?", text):
        return str(int(float(text)))
    return re.sub(r"[^0-9a-z]", "", text)


def _match(names: list[str], targets: dict[str, str]) -> dict[str, str]:
    """Each name's target: the same match_key, else the one target whose key starts
    with the name's (or the reverse), when exactly one does."""
    found = {}
    for name in names:
        key = match_key(name)
        if key in targets:
            found[name] = targets[key]
            continue
        near = {t for k, t in targets.items() if key and (k.startswith(key) or key.startswith(k))}
        if len(near) == 1:
            found[name] = near.pop()
    return found


def _population(
    frame: gpd.GeoDataFrame, layer: BoundaryLayer, *, city_id: str, cache_dir: Path
) -> tuple[pd.Series, list[Path], list[str]]:
    """Population per source feature (summed per area later), the files read, and
    the table keys that matched no area."""
    spec = layer.population
    what = f"population of boundary layer {layer.name!r}"
    table_path = resolve_file(spec.source, city_id=city_id, what=what, cache_dir=cache_dir)
    table = pd.read_csv(table_path, dtype=str)
    for column in (spec.key_column, spec.value_column):
        if column not in table.columns:
            raise LayerError(
                f"{city_id}: {what} has no column {column!r} in {table_path.name}; it has "
                f"{', '.join(table.columns[:12])}. Fix key_column / value_column in the registry."
            )
    files = [table_path]
    keys = table[spec.key_column].tolist()
    if spec.crosswalk:
        walk_path = resolve_file(spec.crosswalk.source, city_id=city_id, what=what, cache_dir=cache_dir)
        walk = pd.read_csv(walk_path, dtype=str).dropna(subset=[spec.crosswalk.to_column])
        files.append(walk_path)
        to_id = dict(
            zip(walk[spec.crosswalk.from_column].map(match_key), walk[spec.crosswalk.to_column], strict=True)
        )
        keys = [_match([k], to_id).get(k) for k in keys]
    match_property = spec.match_property or layer.key
    targets = {match_key(v): match_key(v) for v in frame[match_property].dropna()}
    matched = _match([k for k in keys if k is not None], targets)
    values = pd.to_numeric(table[spec.value_column], errors="coerce")
    by_feature: dict[str, float] = {}
    unmatched = []
    for original, key, value in zip(table[spec.key_column], keys, values, strict=True):
        target = matched.get(key) if key is not None else None
        if target is None:
            unmatched.append(str(original))
        elif pd.notna(value):
            by_feature[target] = by_feature.get(target, 0) + value
    population = frame[match_property].map(lambda v: by_feature.get(match_key(v)) if pd.notna(v) else None)
    return population, files, unmatched


def load_layer(city: City, layer: BoundaryLayer, *, cache_dir: Path) -> LoadedLayer:
    """Read, normalise and version one declared layer."""
    what = f"boundary layer {layer.name!r}"
    path = resolve_file(layer.source, city_id=city.id, what=what, cache_dir=cache_dir)
    frame = gpd.read_file(path)
    for prop in (layer.name_property, layer.zip_property):
        if prop and prop not in frame.columns:
            available = ", ".join(c for c in frame.columns if c != frame.geometry.name)
            raise LayerError(
                f"{city.id}: {what} has no property {prop!r}; it has {available}. Fix the registry."
            )
    files = [path]
    unmatched: list[str] = []
    spec = layer.population
    keys = frame[layer.key].astype(str).str.strip()
    # A population property is per feature and summed as features dissolve (tracts
    # into neighbourhoods); a population table is per area already.
    in_layer = spec.property if spec and spec.property else None
    areas = normalise_layer(frame, layer.key, city_id=city.id, layer=layer.name, population=in_layer)
    if spec and not in_layer:
        by_feature, read, unmatched = _population(frame, layer, city_id=city.id, cache_dir=cache_dir)
        files += read
        areas["population"] = areas["area_id"].map(by_feature.groupby(keys).first())
        if unmatched:
            log.warning("%s: %d population row(s) match no %s area", city.id, len(unmatched), layer.name)
    elif in_layer:
        # An area none of whose features has a value has no population, not zero residents.
        known = frame[in_layer].notna().groupby(keys).any()
        areas.loc[~areas["area_id"].map(known).fillna(False).astype(bool), "population"] = None
    if layer.name_property:
        names = frame[layer.name_property].astype(str).groupby(keys).first()
        areas["area_name"] = areas["area_id"].map(names)
    else:
        areas["area_name"] = areas["area_id"]
    areas["area_km2"] = areas.to_crs(areas.estimate_utm_crs()).area / 1e6

    zips = pd.DataFrame(columns=["zip", "area_id"])
    if layer.zip_property:
        listed = pd.DataFrame({"area_id": keys, "zip": frame[layer.zip_property].astype(str)})
        listed["zip"] = listed["zip"].str.findall(r"\b\d{5}\b")
        zips = listed.explode("zip").dropna().drop_duplicates()[["zip", "area_id"]]
        twice = zips[zips.duplicated("zip", keep=False)]
        if not twice.empty:
            # A ZIP split between areas cannot place a request: leave it to the point.
            log.warning("%s: %d ZIP(s) span several %s areas", city.id, twice["zip"].nunique(), layer.name)
            zips = zips.drop_duplicates("zip", keep=False)

    # A layer that declares no reported code digests as before the field existed,
    # so declaring one rejoins only the layers that do.
    declaration = layer.model_dump_json(exclude={"reported_code"} if layer.reported_code is None else None)
    digest = hashlib.sha256(declaration.encode())
    for file in files:
        digest.update(file.read_bytes())
    return LoadedLayer(
        city_id=city.id,
        spec=layer,
        version=f"{layer.vintage}:{digest.hexdigest()[:12]}",
        areas=areas[["area_id", "area_name", "population", "parts", "area_km2", "geometry"]],
        zips=zips.reset_index(drop=True),
        population_source=spec.vintage if spec else None,
        unmatched_population=unmatched,
    )


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(f"""
        create table if not exists {SCHEMA}.boundaries (
            city_id varchar not null, layer varchar not null, layer_label varchar not null,
            vintage varchar not null, layer_version varchar not null,
            area_id varchar not null, area_name varchar, population bigint, population_source varchar,
            parts integer, area_km2 double, geometry_wkb blob not null, loaded_at timestamptz not null,
            reported_code varchar,
            primary key (city_id, layer, area_id))""")
    # A geography schema loaded before layers could declare a reported code.
    con.execute(f"alter table {SCHEMA}.boundaries add column if not exists reported_code varchar")
    con.execute(f"""
        create table if not exists {SCHEMA}.boundary_pieces (
            city_id varchar not null, layer varchar not null, layer_version varchar not null,
            area_id varchar not null, geometry_wkb blob not null)""")
    con.execute(f"""
        create table if not exists {SCHEMA}.zip_areas (
            city_id varchar not null, layer varchar not null, layer_version varchar not null,
            zip varchar not null, area_id varchar not null)""")


def write_layers(
    warehouse: Path, city_id: str, layers: list[LoadedLayer], declared: set[str] | None = None
) -> dict[str, str]:
    """Write the city's loaded layers in one transaction: changed layers are
    rewritten, unchanged ones left as they are, and stored layers the city no
    longer declares (`declared`, default the layers given) deleted. A declared
    layer that was not loaded this time is left as it is. Returns each layer's
    outcome: 'new', 'changed', 'unchanged' or 'removed'."""
    declared = {layer.name for layer in layers} if declared is None else declared
    con = duckdb.connect(str(warehouse))
    try:
        _ensure_tables(con)
        stored = dict(
            con.execute(
                f"select layer, any_value(layer_version) from {SCHEMA}.boundaries "
                "where city_id = ? group by 1",
                [city_id],
            ).fetchall()
        )
        outcome = {name: "removed" for name in stored if name not in declared}
        con.execute("begin")
        for name in outcome:
            _delete(con, city_id, name)
        for layer in layers:
            if stored.get(layer.name) == layer.version:
                outcome[layer.name] = "unchanged"
                continue
            outcome[layer.name] = "changed" if layer.name in stored else "new"
            _delete(con, city_id, layer.name)
            _insert(con, layer)
        con.execute("commit")
        return outcome
    finally:
        con.close()


def _delete(con: duckdb.DuckDBPyConnection, city_id: str, layer: str) -> None:
    for table in ("boundaries", "boundary_pieces", "zip_areas"):
        con.execute(f"delete from {SCHEMA}.{table} where city_id = ? and layer = ?", [city_id, layer])


def _insert(con: duckdb.DuckDBPyConnection, layer: LoadedLayer) -> None:
    areas = layer.areas
    n = len(areas)
    con.register(
        "new_areas",
        pa.table(
            {
                "area_id": areas["area_id"].astype(str),
                "area_name": areas["area_name"].astype(str),
                "population": pd.to_numeric(areas["population"], errors="coerce").round().astype("Int64"),
                "parts": areas["parts"].astype("int32"),
                "area_km2": areas["area_km2"].astype(float),
                "geometry_wkb": shapely.to_wkb(areas.geometry.values),
            }
        ),
    )
    con.execute(
        f"""insert into {SCHEMA}.boundaries
        select ?, ?, ?, ?, ?, area_id, area_name, population, ?, parts, area_km2, geometry_wkb, now(), ?
        from new_areas""",
        [
            layer.city_id,
            layer.name,
            layer.spec.label,
            layer.spec.vintage,
            layer.version,
            layer.population_source,
            layer.spec.reported_code,
        ],
    )
    con.unregister("new_areas")
    owners, pieces = [], []
    for area_id, geometry in zip(areas["area_id"], areas.geometry.values, strict=True):
        cut = subdivide(geometry, PIECE_VERTICES)
        owners += [area_id] * len(cut)
        pieces += cut
    con.register("new_pieces", pa.table({"area_id": owners, "geometry_wkb": shapely.to_wkb(pieces)}))
    con.execute(
        f"insert into {SCHEMA}.boundary_pieces select ?, ?, ?, area_id, geometry_wkb from new_pieces",
        [layer.city_id, layer.name, layer.version],
    )
    con.unregister("new_pieces")
    if not layer.zips.empty:
        con.register("new_zips", pa.Table.from_pandas(layer.zips.astype(str), preserve_index=False))
        con.execute(
            f"insert into {SCHEMA}.zip_areas select ?, ?, ?, zip, area_id from new_zips",
            [layer.city_id, layer.name, layer.version],
        )
        con.unregister("new_zips")
    log.info("%s: boundary layer %s (%s): %d areas", layer.city_id, layer.name, layer.version, n)
