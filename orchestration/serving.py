"""Publishing: what BI tools read, taken out of the working warehouse all at once.

`publish` copies every table and view of the warehouse's `marts` schema (facts,
dimensions, marts; views are materialized) into a new DuckDB file beside the
serving file, records the publish in `civic311.publishes`, and writes each table
as Parquet into a new folder under the published directory, with GeoParquet of
dim_area and the area marts in its `geo/`. Only when everything is written does
it swap both in:

- the file with `os.replace`, atomic on one filesystem. A reader's open connection
  keeps reading the file it opened; a new connection gets the new file. No reader
  ever sees half of one publish and half of another, and no reader holds a lock
  the pipeline needs: the working warehouse is another file.
  (Within one process DuckDB reuses a database it already has open for a path, so
  a process that holds a connection sees that publish until it closes them all.)
- the Parquet folder through the `current` symlink, replaced the same way.

A failure before the swap removes what it wrote and leaves the previous publish
exactly as it was. A publish killed before its swap cannot clean up after itself,
so the next publish first removes what one left: its new serving file, its link
and its Parquet folder (newer than the one `current` names). The last `keep`
Parquet folders are kept, so a reader that resolved `current` a moment ago can
finish.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from ingestion.redact import RedactedError

SERVING_NAME = "serving.duckdb"
PUBLISHED_NAME = "published"
SCHEMA = "marts"
PUBLISH_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{6}")


class PublishError(RedactedError, RuntimeError):
    """A publish that cannot be made; the previous one is left as it was."""


@dataclass(frozen=True)
class Publish:
    publish_id: str
    serving: Path
    parquet_dir: Path
    rows: dict[str, int]


def serving_path(warehouse: Path) -> Path:
    """The file BI tools read: `$CIVIC311_SERVING`, else `serving.duckdb` beside the
    working warehouse (so `data/serving.duckdb` by default)."""
    return Path(os.environ.get("CIVIC311_SERVING") or warehouse.parent / SERVING_NAME).resolve()


def published_dir(warehouse: Path) -> Path:
    """Parquet copies of the served tables: `$CIVIC311_PUBLISHED`, else `published/`
    beside the working warehouse (so `data/published` by default)."""
    return Path(os.environ.get("CIVIC311_PUBLISHED") or warehouse.parent / PUBLISHED_NAME).resolve()


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish(warehouse: Path, serving: Path, parquet_root: Path, *, label: str = "", keep: int = 3) -> Publish:
    """Publish the warehouse's marts to `serving` and `parquet_root/current`."""
    if not warehouse.exists():
        raise PublishError(
            f"publish: the working warehouse {warehouse} does not exist; run the refresh first"
        )
    published_at = datetime.now(UTC)
    publish_id = f"{published_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"
    serving.parent.mkdir(parents=True, exist_ok=True)
    parquet_root.mkdir(parents=True, exist_ok=True)
    _remove_unfinished(serving, parquet_root)
    staging = serving.with_name(f".{serving.name}.{publish_id}")
    folder = parquet_root / publish_id
    link = parquet_root / f".current.{publish_id}"
    try:
        folder.mkdir()
        rows = _write(warehouse, staging, folder, publish_id, published_at, label)
        _fsync(staging)
        os.symlink(publish_id, link)
        os.replace(staging, serving)
        os.replace(link, parquet_root / "current")
        _fsync(serving.parent)
    except BaseException:
        for leftover in (staging, staging.with_name(staging.name + ".wal"), link):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    _prune(parquet_root, keep)
    return Publish(publish_id=publish_id, serving=serving, parquet_dir=folder, rows=rows)


def _remove_unfinished(serving: Path, parquet_root: Path) -> None:
    """Remove what publishes killed before their swap left: new serving files (with
    their WAL), `.current.<id>` links, and Parquet folders newer than the one `current`
    names (publish ids sort by time, and `current` only ever moves to the newest).
    Publishes never run at once (the warehouse pool), so none of it is a live one's."""
    for leftover in serving.parent.glob(f".{serving.name}.*"):
        leftover.unlink(missing_ok=True)
    for link in parquet_root.glob(".current.*"):
        link.unlink(missing_ok=True)
    current = parquet_root / "current"
    served = current.resolve().name if current.is_symlink() else ""
    for folder in parquet_root.iterdir():
        if PUBLISH_ID.fullmatch(folder.name) and folder.name > served and not folder.is_symlink():
            shutil.rmtree(folder)


def _write(
    warehouse: Path, staging: Path, folder: Path, publish_id: str, published_at: datetime, label: str
) -> dict[str, int]:
    con = duckdb.connect(str(staging))
    try:
        con.execute(f"attach {_quoted(warehouse)} as warehouse (read_only)")
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() "
                "where database_name = 'warehouse' and schema_name = ? "
                "union select view_name from duckdb_views() where database_name = 'warehouse' "
                "and schema_name = ? order by 1",
                [SCHEMA, SCHEMA],
            ).fetchall()
        ]
        if not tables:
            raise PublishError(
                f"publish: {warehouse} has no tables in schema {SCHEMA}; build the marts before publishing"
            )
        con.execute(f"create schema {SCHEMA}")
        rows = {}
        for table in tables:
            target = f'{SCHEMA}."{table}"'
            con.execute(f'create table {target} as select * from warehouse.{SCHEMA}."{table}"')
            (rows[table],) = con.execute(f"select count(*) from {target}").fetchone()  # noqa: S608
            con.execute(f"copy {target} to {_quoted(folder / f'{table}.parquet')} (format parquet)")
        rows.update(_write_geoparquet(con, folder / "geo"))
        con.execute("detach warehouse")
        con.execute("create schema civic311")
        con.execute(
            "create table civic311.publishes as select ? as publish_id, ?::timestamptz as published_at, "
            "? as label, ? as source_warehouse, ?::json as table_rows",
            [publish_id, published_at, label, str(warehouse), json.dumps(rows, sort_keys=True)],
        )
        con.execute("checkpoint")
    finally:
        con.close()
    return rows


# Area marts, one row per area and period, get their area's polygon; simplified to
# about 10 m (1e-4 degrees), plenty for a choropleth, so the files stay small.
GEO_TABLES = ("dim_area", "mart_service_gaps", "mart_hotspots")
GEO_TOLERANCE_DEGREES = 1e-4


# A row's polygon in area_shapes: its city's area for a boundary layer, the cell alone for H3.
SHAPE_OF_ROW = (
    "shapes.layer = area_rows.layer and shapes.area_id = area_rows.area_id "
    "and shapes.city_id is not distinct from if(area_rows.layer = 'h3', null, area_rows.city_id)"
)


def _write_geoparquet(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, int]:
    """GeoParquet of dim_area and the area marts under `folder`, each row with its
    area's polygon: a boundary layer's from geography.boundaries, an H3 cell's
    computed from its id, none for a ZIP (the ZIP layer has no polygons). DuckDB joins
    the few thousand polygons to the rows, in the table's order, and pyarrow writes its
    Arrow with the GeoParquet metadata: DuckDB's COPY leaves that metadata, and so the
    CRS, out of a file in which no row has a polygon."""
    import pyarrow.parquet as pq

    from ingestion.geography.spatial import configure

    configure(con)
    _load_area_shapes(con)
    con.create_function(
        "iso_duration", _iso_duration, [duckdb.sqltype("INTERVAL")], duckdb.sqltype("VARCHAR")
    )
    folder.mkdir()
    rows = {}
    for table in GEO_TABLES:
        relation = con.table(f"{SCHEMA}.{table}")
        columns = ", ".join(
            _typed_for_gdal(name, kind) for name, kind in zip(relation.columns, relation.types, strict=True)
        )
        geo = _geo_metadata(con, table)
        reader = con.execute(
            f"select {columns}, shapes.geometry from {SCHEMA}.{table} as area_rows "  # noqa: S608
            f"left join area_shapes as shapes on {SHAPE_OF_ROW} order by area_rows.rowid"
        ).to_arrow_reader()
        rows[f"geo/{table}"] = 0
        schema = reader.schema.with_metadata({"geo": json.dumps(geo)})
        with pq.ParquetWriter(folder / f"{table}.parquet", schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows[f"geo/{table}"] += batch.num_rows
    con.execute("drop table area_shapes")
    return rows


def _geo_metadata(con: duckdb.DuckDBPyConnection, table: str) -> dict:
    """The GeoParquet 1.1 `geo` metadata of `table`'s file, as geopandas writes it: WKB
    in WGS84, with the types and the bounds of the polygons its rows have."""
    import geopandas as gpd

    from ingestion.geography.layers import WGS84

    used = gpd.GeoSeries.from_wkb(
        [
            wkb
            for (wkb,) in con.execute(
                "select st_aswkb(geometry) from area_shapes as shapes where exists "  # noqa: S608
                f"(select 1 from {SCHEMA}.{table} as area_rows where {SHAPE_OF_ROW})"
            ).fetchall()
        ],
        crs=WGS84,
    )
    column = {
        "encoding": "WKB",
        "crs": used.crs.to_json_dict(),
        "geometry_types": sorted(used.geom_type.unique()),
    }
    if len(used):
        column["bbox"] = used.total_bounds.tolist()
    return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}


def _load_area_shapes(con: duckdb.DuckDBPyConnection) -> None:
    """The temporary table area_shapes: each boundary layer area's polygon, simplified,
    by city, layer and area, and each H3 cell's of dim_area by its id alone (a cell is
    the same shape in every city), as GEOMETRY in WGS84."""
    import pandas as pd
    import shapely

    from ingestion.geography.maps import h3_cell_polygons

    (has_boundaries,) = con.execute(
        "select count(*) from duckdb_tables() where database_name = 'warehouse' "
        "and schema_name = 'geography' and table_name = 'boundaries'"
    ).fetchone()
    shapes = []
    if has_boundaries:
        boundaries = con.execute(
            "select city_id, layer, area_id, geometry_wkb from warehouse.geography.boundaries "
            "where layer <> 'h3'"
        ).df()
        polygons = shapely.from_wkb(boundaries.pop("geometry_wkb").map(bytes))
        simplified = shapely.simplify(polygons, GEO_TOLERANCE_DEGREES, preserve_topology=True)
        shapes.append(boundaries.assign(wkb=shapely.to_wkb(simplified)))
    cells = h3_cell_polygons(
        r[0]
        for r in con.execute(
            f"select distinct area_id from {SCHEMA}.dim_area where layer = 'h3' and area_type = 'h3'"
        ).fetchall()
    )
    shapes.append(
        pd.DataFrame(
            {"city_id": None, "layer": "h3", "area_id": cells.area_id, "wkb": cells.geometry.to_wkb()}
        )
    )
    con.register("area_shapes_wkb", pd.concat(shapes, ignore_index=True))
    con.execute(
        "create temp table area_shapes as select city_id::varchar as city_id, layer::varchar as layer, "
        "area_id::varchar as area_id, st_geomfromwkb(wkb::blob)::geometry('EPSG:4326') as geometry "
        "from area_shapes_wkb"
    )
    con.unregister("area_shapes_wkb")


def _typed_for_gdal(name: str, kind: duckdb.DuckDBPyType) -> str:
    """`name` of area_rows as ingestion.geography.maps.write_geoparquet types a column
    for GDAL readers: decimals as doubles, durations as ISO-8601 text, nested values as
    JSON text, enums as text; a date as the timestamp DuckDB's pandas frames made of it."""
    column = f'area_rows."{name}"'
    if kind.id == "decimal":
        column = f"{column}::double"
    elif kind.id == "interval":
        column = f"iso_duration({column})"
    elif kind.id in ("list", "array", "struct", "map", "union"):
        column = f"to_json({column})::varchar"
    elif kind.id == "enum":
        column = f"{column}::varchar"
    elif kind.id == "date":
        column = f"{column}::timestamp"
    return f'{column} as "{name}"'


def _iso_duration(value: timedelta) -> str:
    """An INTERVAL as pandas writes a duration (months count 30 days, as in DuckDB's frames)."""
    import pandas as pd

    return pd.Timedelta(value).isoformat()


def _prune(parquet_root: Path, keep: int) -> None:
    """Drop Parquet folders beyond the newest `keep` (publish ids sort by time)."""
    current = (parquet_root / "current").resolve().name
    folders = sorted(p for p in parquet_root.iterdir() if p.is_dir() and not p.is_symlink())
    for old in folders[: max(len(folders) - keep, 0)]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
