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
from datetime import UTC, datetime
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


def _write_geoparquet(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, int]:
    """GeoParquet of dim_area and the area marts under `folder`, each row with its
    area's polygon: a boundary layer's from geography.boundaries, an H3 cell's
    computed from its id, none for a ZIP (the ZIP layer has no polygons)."""
    import geopandas as gpd
    import shapely

    from ingestion.geography.layers import WGS84
    from ingestion.geography.maps import h3_cell_polygons, write_geoparquet

    (has_boundaries,) = con.execute(
        "select count(*) from duckdb_tables() where database_name = 'warehouse' "
        "and schema_name = 'geography' and table_name = 'boundaries'"
    ).fetchone()
    polygons = {}
    if has_boundaries:
        shapes = con.execute(
            "select city_id, layer, area_id, geometry_wkb from warehouse.geography.boundaries"
        ).df()
        simplified = shapely.simplify(
            shapely.from_wkb(shapes["geometry_wkb"].map(bytes)), GEO_TOLERANCE_DEGREES, preserve_topology=True
        )
        keys = zip(shapes.city_id, shapes.layer, shapes.area_id, strict=True)
        polygons = dict(zip(keys, simplified, strict=True))
    cells = h3_cell_polygons(
        r[0]
        for r in con.execute(
            f"select distinct area_id from {SCHEMA}.dim_area where layer = 'h3' and area_type = 'h3'"
        ).fetchall()
    )
    h3_by_cell = dict(zip(cells.area_id, cells.geometry, strict=True))
    folder.mkdir()
    rows = {}
    for table in GEO_TABLES:
        frame = con.execute(f"select * from {SCHEMA}.{table}").df()  # noqa: S608
        geometry = [
            h3_by_cell.get(area) if layer == "h3" else polygons.get((city, layer, area))
            for city, layer, area in zip(frame.city_id, frame.layer, frame.area_id, strict=True)
        ]
        write_geoparquet(gpd.GeoDataFrame(frame, geometry=geometry, crs=WGS84), folder / f"{table}.parquet")
        rows[f"geo/{table}"] = len(frame)
    return rows


def _prune(parquet_root: Path, keep: int) -> None:
    """Drop Parquet folders beyond the newest `keep` (publish ids sort by time)."""
    current = (parquet_root / "current").resolve().name
    folders = sorted(p for p in parquet_root.iterdir() if p.is_dir() and not p.is_symlink())
    for old in folders[: max(len(folders) - keep, 0)]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
