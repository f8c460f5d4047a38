"""bench/spatial.py's join paths on 20,000 synthetic points and a few known ones: they
assign the same area to every point, a point inside a real MODZCTA area gets that
area, and a point on a line `subdivide` cut gets its area once. No timing here; the
bench reports speed."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import shapely

from bench import spatial

SYNTHETIC = 20_000
KNOWN_AREAS = ("10001", "11201", "10314", "10463", "11691")
HOBOKEN = (-74.0324, 40.7440)  # New Jersey, across the Hudson: in no NYC area
INTERSECTS_RUNS = ("duckdb_intersects", "shapely_intersects", "shapely_box_intersects_xy")


def cut_line_point(pieces: spatial.Polygons, area_id: str) -> shapely.Point:
    """The middle of the cut between the first two touching pieces of `area_id`: on the
    boundary of both, so inside neither, yet inside the area."""
    mine = pieces.geometries[pieces.codes == pieces.names.index(area_id)]
    for i, first in enumerate(mine):
        for second in mine[i + 1 :]:
            shared = shapely.intersection(first.boundary, second.boundary)
            if shared.length > 0:
                # subdivide cuts along a constant x or y, so the middle lies exactly on it.
                return shapely.line_merge(shared).interpolate(0.5, normalized=True)
    raise AssertionError(f"{area_id} was not cut")


@pytest.fixture(scope="module")
def areas():
    return spatial.modzcta_areas()


@pytest.fixture(scope="module")
def pieces(areas):
    return spatial.polygons(areas, 64)


@pytest.fixture(scope="module")
def joined(areas, pieces):
    """Every path's (id, area_id) table for the synthetic points, then the known points
    (ids from 20,000: KNOWN_AREAS' representative points, Hoboken, the 10001 cut)."""
    synthetic, truth = spatial.synthetic_points(areas, SYNTHETIC)
    inside = areas.set_index("area_id").loc[list(KNOWN_AREAS), "geometry"]
    known = [*inside.map(shapely.Polygon.representative_point), shapely.Point(HOBOKEN)]
    known.append(cut_line_point(pieces, "10001"))
    xy = shapely.get_coordinates(known)
    ids = np.arange(len(known), dtype=np.int64) + SYNTHETIC
    points = pa.concat_tables([synthetic, pa.table({"x": xy[:, 0], "y": xy[:, 1], "id": ids})])

    con = duckdb.connect()
    spatial.load_spatial(con)
    spatial.store_points(con, points)
    spatial.store_polygons(con, "pieces", pieces)
    spatial.duckdb_join(con, "pieces", "ST_Intersects", "duckdb_intersects")
    spatial.duckdb_join(con, "pieces", "ST_Contains", "duckdb_contains")
    # Small chunks over two threads, so the chunk offsets and the worker copies are exercised too.
    for predicate in ("intersects", "box+intersects_xy", "within"):
        out = "shapely_" + predicate.replace("+", "_")
        spatial.shapely_join(con, pieces, predicate, out, threads=2, chunk=3_000)
    yield con, truth
    con.close()


def known_rows(con, table: str) -> list[tuple[int, str]]:
    return con.execute(f"select id, area_id from {table} where id >= {SYNTHETIC} order by id").fetchall()


def test_every_path_assigns_every_point_alike(joined):
    con, truth = joined
    for table in (*INTERSECTS_RUNS[1:], "duckdb_contains", "shapely_within"):
        mismatches = spatial.mismatches(con, "duckdb_intersects", table)
        # The contains forms differ only by the cut-line point, which they lose.
        assert mismatches == (0 if table in INTERSECTS_RUNS else 1), table
    assert (truth >= 0).sum() == 18_000  # 90% drawn inside an area
    for table in INTERSECTS_RUNS:
        # 18,000 drawn inside + 5 representative points + the cut-line point; one row each.
        assert con.execute(f"select count(*), count(distinct id) from {table}").fetchone() == (18_006, 18_006)


def test_points_get_the_area_they_were_drawn_in(joined, pieces):
    con, truth = joined
    known = [pieces.names.index(area) for area in (*KNOWN_AREAS, "10001")]
    known.insert(len(KNOWN_AREAS), -1)  # Hoboken
    assert spatial.assigned_apart_from_drawn(con, "duckdb_intersects", np.r_[truth, known], pieces.names) == 0
    rows = con.execute(
        f"select id, area_id from shapely_intersects where id < {SYNTHETIC} order by id"
    ).fetchall()
    drawn = np.array(pieces.names)[truth[truth >= 0]]
    assert [area for _, area in rows] == drawn.tolist()
    assert [point for point, _ in rows] == np.flatnonzero(truth >= 0).tolist()


def test_known_points_land_in_their_areas(joined):
    con, _ = joined
    expected = [(SYNTHETIC + i, area) for i, area in enumerate(KNOWN_AREAS)]  # Hoboken: no row
    for table in INTERSECTS_RUNS:
        assert known_rows(con, table) == [*expected, (SYNTHETIC + 6, "10001")], table
    for table in ("duckdb_contains", "shapely_within"):
        assert known_rows(con, table) == expected, table


def test_subdividing_keeps_every_area_whole(areas, pieces):
    whole = spatial.polygons(areas, None)
    assert len(whole.geometries) == 178 and whole.vertices == 79_949
    assert 2_000 < len(pieces.geometries) < 3_500
    assert shapely.get_num_coordinates(pieces.geometries).max() <= 64
    # The pieces of 10001 cover exactly 10001.
    code = pieces.names.index("10001")
    rebuilt = shapely.union_all(pieces.geometries[pieces.codes == code])
    original = whole.geometries[whole.codes == code][0]
    assert shapely.symmetric_difference(rebuilt, original).area < 1e-9 * original.area
