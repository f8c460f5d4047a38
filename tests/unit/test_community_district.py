"""NYC's Community Board as the community district's key (boro_cd), run by DuckDB
on every board value the real NYC samples hold, and checked against the city
planning department's own file, which names each district "BROOKLYN 06"."""

from __future__ import annotations

import json

import duckdb
import jinja2
import pandas as pd

from tests.helpers.data import NYC_SODA_SAMPLE, REPO, SHARED_DATA

MACRO = REPO / "dbt_project" / "macros" / "staging" / "community_district.sql"
NYC = SHARED_DATA / "nyc"
EXPORTS = [
    "nyc311_export_2016_jun_bk_cb06_noise.csv",
    "nyc311_export_illegal_animal_2010_2025.csv",
    "nyc311_mixed_2010_2020_sample.csv",
    "nyc311_soda_erm2-nwe9_2024-04-16.csv",
]
# Boards that are no district of the 59: parks and airports keep their own codes.
PARKS_AND_AIRPORTS = {
    "55 BROOKLYN": "355",  # Prospect Park
    "64 MANHATTAN": "164",  # Central Park
    "80 QUEENS": "480",  # LaGuardia
    "81 QUEENS": "481",
    "83 QUEENS": "483",  # JFK
    "84 QUEENS": "484",
}


def sample_boards() -> set[str]:
    boards = set()
    for name in EXPORTS:
        frame = pd.read_csv(NYC / name, dtype=str)
        column = "Community Board" if "Community Board" in frame else "community_board"
        boards |= set(frame[column].dropna())
    boards |= {
        r["community_board"] for r in json.loads(NYC_SODA_SAMPLE.read_text()) if "community_board" in r
    }
    return boards


def districts(boards: list[str]) -> dict[str, str | None]:
    macro = jinja2.Environment(autoescape=False).from_string(MACRO.read_text()).module  # SQL, not HTML
    sql = str(macro.community_board_district("board"))
    rows = duckdb.execute(f"select board, {sql} from unnest(?) as boards(board)", [boards]).fetchall()
    return dict(rows)


def test_every_sample_board_becomes_the_planning_department_key():
    layer = json.loads((NYC / "nyc_community_districts.geojson").read_text())
    planning = {
        f["properties"]["geography_value"]: str(f["properties"]["boro_cd"]) for f in layer["features"]
    }
    boards = sample_boards()
    found = districts(sorted(boards))
    assert len(boards) == 71

    named = {b for b in boards if " ".join(reversed(b.split(" ", 1))) in planning}
    assert len(named) == 59  # every district of the layer occurs in the samples
    assert {b: found[b] for b in named} == {b: planning[" ".join(reversed(b.split(" ", 1)))] for b in named}
    assert {b: found[b] for b in PARKS_AND_AIRPORTS} == PARKS_AND_AIRPORTS
    unspecified = boards - named - set(PARKS_AND_AIRPORTS)
    assert unspecified == {
        "0 Unspecified",
        "Unspecified BRONX",
        "Unspecified BROOKLYN",
        "Unspecified MANHATTAN",
        "Unspecified QUEENS",
        "Unspecified STATEN ISLAND",
    }
    assert {found[b] for b in unspecified} == {None}


def test_spacing_and_case_do_not_matter_and_no_district_is_invented():
    found = districts([" 6  brooklyn ", "06 Staten Island", "00 BROOKLYN", "0 QUEENS", "106 BRONX", "", "12"])
    assert found == {
        " 6  brooklyn ": "306",
        "06 Staten Island": "506",
        "00 BROOKLYN": None,
        "0 QUEENS": None,
        "106 BRONX": None,
        "": None,
        "12": None,
    }
