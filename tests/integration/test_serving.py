"""Publishing the marts to the serving file and Parquet (orchestration/serving.py):
everything or nothing, and a reader never sees two publishes at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from ingestion.geography.maps import h3_cell_polygons
from orchestration.serving import (
    GEO_TABLES,
    GEO_TOLERANCE_DEGREES,
    SCHEMA,
    PublishError,
    _write_geoparquet,
    publish,
)
from tests.helpers.warehouse import copy_warehouse, file_digest

pytestmark = pytest.mark.integration


def schemas(database) -> dict[str, int]:
    """The tables and views of each schema of a DuckDB file."""
    with duckdb.connect(str(database), read_only=True) as con:
        return dict(
            con.execute(
                "select schema_name, count(*) from (select schema_name from duckdb_tables() "
                "union all select schema_name from duckdb_views() where not internal) group by all"
            ).fetchall()
        )


def test_a_publish_serves_every_mart_as_built(samples_built, tmp_path):
    serving, parquet = tmp_path / "serving.duckdb", tmp_path / "published"
    done = publish(samples_built, serving, parquet, label="first")
    with duckdb.connect(str(samples_built), read_only=True) as con:
        tables = con.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        built = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for (t,) in tables}  # noqa: S608
    assert done.rows == built | {f"geo/{t}": built[t] for t in GEO_TABLES}
    assert {"fct_service_requests", "dim_area", "mart_service_gaps", "mart_hotspots"} <= set(built)
    assert built["fct_service_requests"] > 20_000
    with duckdb.connect(str(serving), read_only=True) as con:
        served = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in built}  # noqa: S608
        (record,) = con.execute("select publish_id, label, table_rows from civic311.publishes").fetchall()
    assert served == built
    # the views the GX checks read stay in the working warehouse
    assert not (set(schemas(serving)) - {"marts", "civic311", "main"})
    assert schemas(samples_built)["audit"] == 11
    assert record[0] == done.publish_id and record[1] == "first" and json.loads(record[2]) == done.rows
    assert (parquet / "current").resolve() == done.parquet_dir
    for table, rows in built.items():
        assert pq.read_metadata(parquet / "current" / f"{table}.parquet").num_rows == rows, table


def test_area_marts_are_published_as_geoparquet_with_their_polygons(samples_built, tmp_path):
    done = publish(samples_built, tmp_path / "serving.duckdb", tmp_path / "published")
    gaps = gpd.read_parquet(tmp_path / "published" / "current" / "geo" / "mart_service_gaps.parquet")
    assert gaps.crs.to_epsg() == 4326 and len(gaps) == done.rows["mart_service_gaps"]
    located = gaps[gaps.area_id != "unlocated"]
    # Every placed row of a polygon layer or of H3 has its area's shape; ZIPs have none.
    has_shape = located.geometry.notna()
    assert has_shape[located.layer != "zip"].all()
    assert not has_shape[located.layer == "zip"].any()
    assert located.geometry[has_shape].is_valid.all()
    # The simplified MODZCTA polygon still holds the point the request was placed by.
    with duckdb.connect(str(samples_built), read_only=True) as con:
        area, lon, lat = con.execute(
            "select a.area_id, f.longitude, f.latitude from intermediate.int_request_areas a "
            "join marts.fct_service_requests f using (city_id, request_id) "
            "where a.layer = 'modzcta' and a.placed_by = 'point' order by f.request_id limit 1"
        ).fetchone()
    shape = located[(located.layer == "modzcta") & (located.area_id == area)].geometry.iloc[0]
    assert shape.buffer(1e-4).contains(shapely.Point(lon, lat))


def test_each_geoparquet_row_is_its_served_row_with_its_areas_shape(samples_built, tmp_path):
    """Row for row in the served order: the Parquet's values, dates as timestamps, and
    the area's boundary simplified as the publish simplifies it, an H3 row's cell, no
    shape for a ZIP or an unlocated row."""
    publish(samples_built, tmp_path / "serving.duckdb", tmp_path / "published")
    current = tmp_path / "published" / "current"
    with duckdb.connect(str(samples_built), read_only=True) as con:
        boundaries = con.execute(
            "select city_id, layer, area_id, geometry_wkb from geography.boundaries"
        ).df()
    simplified = shapely.simplify(
        shapely.from_wkb(boundaries.geometry_wkb.map(bytes)), GEO_TOLERANCE_DEGREES, preserve_topology=True
    )
    keys = zip(boundaries.city_id, boundaries.layer, boundaries.area_id, strict=True)
    shapes = dict(zip(keys, simplified, strict=True))
    for table in GEO_TABLES:
        served = pq.read_table(current / f"{table}.parquet")
        geo = pq.read_table(current / "geo" / f"{table}.parquet")
        assert geo.column_names == [*served.column_names, "geometry"], table
        expected = pa.schema(
            field.with_type(pa.timestamp("us")) if field.type == pa.date32() else field
            for field in served.schema
        )
        values = geo.drop_columns("geometry")
        # An instant's zone is DuckDB's session zone in its Arrow and UTC in its Parquet.
        for got, want in zip(values.schema, expected, strict=True):
            instants = pa.types.is_timestamp(got.type) and got.type.tz and want.type.tz
            assert got.type == want.type or (instants and got.type.unit == want.type.unit), (table, got, want)
        assert values.cast(expected).equals(served.cast(expected)), table
        frame = gpd.read_parquet(current / "geo" / f"{table}.parquet")
        assert frame.crs.to_epsg() == 4326
        h3_rows = (frame.layer == "h3") & (frame.area_id != "unlocated")
        cells = h3_cell_polygons(frame.area_id[h3_rows])
        polygons = gpd.GeoSeries(
            [shapes.get(key) for key in zip(frame.city_id, frame.layer, frame.area_id, strict=True)],
            index=frame.index,
            crs=frame.crs,
        )
        polygons[h3_rows] = frame.area_id[h3_rows].map(dict(zip(cells.area_id, cells.geometry, strict=True)))
        assert (frame.geometry.isna() == polygons.isna()).all(), table
        assert frame.geometry.geom_equals_exact(polygons, tolerance=0)[polygons.notna()].all(), table
        assert frame.geometry[frame.layer == "zip"].isna().all() and h3_rows.any(), table
        assert frame.geometry[~h3_rows & (frame.layer != "zip")].notna().any(), table


def test_geoparquet_columns_are_typed_for_gdal(tmp_path):
    """Decimals become doubles, durations ISO-8601 text as pandas writes it, nested
    values JSON text, enums text, dates timestamps; instants stay instants. A file in
    which no row has a polygon still names its CRS."""
    con = duckdb.connect()
    con.execute(f"create schema {SCHEMA}")
    con.execute(
        f"create table {SCHEMA}.dim_area as select 'nyc' as city_id, 'zip' as layer, '10001' as area_id, "
        "'zip' as area_type, 1.25::decimal(6, 2) as share, interval '1 month 2 hours 0.5 seconds' as waited, "
        "[1, 2] as counts, {'source': 'acs'} as origin, map {'a': 1} as tally, "
        "'open'::enum('open') as state, "
        "date '2024-03-01' as requested_month, timestamptz '2024-03-01 12:00:00+00' as as_of"
    )
    for table in GEO_TABLES[1:]:
        con.execute(f"create table {SCHEMA}.{table} as select * from {SCHEMA}.dim_area")
    rows = _write_geoparquet(con, tmp_path / "geo")
    assert rows == {f"geo/{table}": 1 for table in GEO_TABLES}
    frame = gpd.read_parquet(tmp_path / "geo" / "dim_area.parquet")
    assert frame.crs.to_epsg() == 4326 and frame.geometry.isna().all()
    (row,) = frame.drop(columns="geometry").to_dict("records")
    assert row == {
        "city_id": "nyc",
        "layer": "zip",
        "area_id": "10001",
        "area_type": "zip",
        "share": 1.25,
        "waited": pd.Timedelta(days=30, hours=2, seconds=0.5).isoformat(),
        "counts": "[1,2]",
        "origin": '{"source":"acs"}',
        "tally": '{"a":1}',
        "state": "open",
        "requested_month": pd.Timestamp("2024-03-01"),
        "as_of": pd.Timestamp("2024-03-01 12:00:00", tz="UTC"),
    }


def test_a_failed_publish_leaves_the_last_one_byte_for_byte(samples_built, tmp_path):
    serving, parquet = tmp_path / "serving.duckdb", tmp_path / "published"
    empty = tmp_path / "empty" / "warehouse.duckdb"  # a warehouse whose marts were never built
    empty.parent.mkdir()
    duckdb.connect(str(empty)).close()
    first = publish(samples_built, serving, parquet)
    before, files = file_digest(serving), sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(PublishError, match="no tables in schema marts"):
        publish(empty, serving, parquet)
    assert file_digest(serving) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no half-written file left behind
    assert (parquet / "current").resolve() == first.parquet_dir
    assert sorted(p.name for p in parquet.iterdir()) == sorted(["current", first.publish_id])


READER = textwrap.dedent(
    """
    import json, sys, time, duckdb
    from pathlib import Path
    serving, kind, out, stop = Path(sys.argv[1]), sys.argv[2], open(sys.argv[3], "w"), Path(sys.argv[4])
    query = (
        "select (select label from civic311.publishes), count(distinct channel), min(channel) "
        "from marts.fct_service_requests"
    )
    # `held`: one connection for the whole test. `new`: a connection per query. Not
    # both in one process: DuckDB hands a process the database it already has open
    # for a path, so a held connection would pin every later one to its publish.
    held = duckdb.connect(str(serving), read_only=True) if kind == "held" else None
    while not stop.exists():
        try:
            if held is not None:
                row = held.execute(query).fetchone()
            else:
                with duckdb.connect(str(serving), read_only=True) as con:
                    row = con.execute(query).fetchone()
            out.write(json.dumps({"kind": kind, "row": list(row)}) + "\\n")
        except Exception as error:
            out.write(json.dumps({"kind": kind, "error": repr(error)}) + "\\n")
        out.flush()
        time.sleep(0.01)
    """
)


def test_a_reader_holding_the_serving_file_sees_one_publish_or_the_next_never_a_mix(samples_built, tmp_path):
    """A BI tool keeps the serving file open read-only and queries it in a loop while
    10 publishes run. Each publish marks every fact row with its own label, so a
    query that saw two publishes would see two labels or a label other than the
    publish's own."""
    warehouse = copy_warehouse(samples_built, tmp_path / "work")
    serving, parquet = tmp_path / "serving.duckdb", tmp_path / "published"

    def marked_publish(label: str) -> None:
        with duckdb.connect(str(warehouse)) as con:
            con.execute("update marts.fct_service_requests set channel = ?", [label])
        publish(warehouse, serving, parquet, label=label)

    marked_publish("p0")
    stop = tmp_path / "stop"
    logs = {kind: tmp_path / f"{kind}.jsonl" for kind in ("held", "new")}
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(serving), kind, str(log), str(stop)])
        for kind, log in logs.items()
    ]
    try:
        time.sleep(1.5)
        for k in range(1, 11):
            marked_publish(f"p{k}")  # raises on any writer error
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=60)
    assert [reader.returncode for reader in readers] == [0, 0]
    answers = [json.loads(line) for log in logs.values() for line in log.read_text().splitlines()]
    errors = [a for a in answers if "error" in a]
    assert not errors, errors[:3]
    assert len(answers) > 40
    for answer in answers:
        label, labels, channel = answer["row"]
        assert labels == 1 and channel == label, answer
    held = {a["row"][0] for a in answers if a["kind"] == "held"}
    fresh = [a["row"][0] for a in answers if a["kind"] == "new"]
    assert held == {"p0"}  # an open connection keeps the publish it opened
    assert fresh[-1] == "p10" and len(set(fresh)) >= 5  # new connections follow the publishes
