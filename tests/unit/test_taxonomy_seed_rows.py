"""`civic311 taxonomy unmapped --csv` writes the rows the way the seeds are written:
one any-subtype row per service name and exact rows only where a subtype differs,
and never a row that maps a type no rule classified."""

from __future__ import annotations

import csv
import io

from orchestration.taxonomy import (
    UnmappedDepartment,
    UnmappedType,
    department_seed_rows,
    to_csv,
    type_seed_rows,
)


def kind(name: str, subtype: str | None, requests: int, category: str) -> UnmappedType:
    return UnmappedType("nyc", name, subtype, requests, category, None if category == "unclassified" else 1)


def test_one_row_per_name_and_exact_rows_where_a_subtype_differs():
    rows = type_seed_rows(
        [
            kind("Street Thing", "Pothole", 5, "street_condition"),
            kind("Street Thing", "Plate", 2, "street_condition"),
            kind("Street Thing", "Curb", 3, "sidewalks"),
        ]
    )
    assert rows == [
        ("nyc", "Street Thing", "", "street_condition"),
        ("nyc", "Street Thing", "Curb", "sidewalks"),
    ]


def test_requests_without_a_subtype_decide_the_any_subtype_row():
    rows = type_seed_rows([kind("Posters", None, 1, "graffiti"), kind("Posters", "Loud", 9, "noise")])
    assert rows == [("nyc", "Posters", "", "graffiti"), ("nyc", "Posters", "Loud", "noise")]


def test_a_subtype_no_rule_classifies_leaves_the_any_subtype_row_empty():
    """An exact row with an empty category falls back on the any-subtype row: were
    that row mapped, pasting would map the unclassified subtype with it."""
    rows = type_seed_rows(
        [
            kind("Mixed Bag", "Barking", 9, "noise"),
            kind("Mixed Bag", "Unicorns", 1, "unclassified"),
            kind("Unicorn Sighting", None, 4, "unclassified"),
        ]
    )
    assert rows == [
        ("nyc", "Mixed Bag", "", ""),
        ("nyc", "Mixed Bag", "Barking", "noise"),
        ("nyc", "Unicorn Sighting", "", ""),
    ]


def test_department_rows_give_the_rules_department_or_leave_the_id_empty():
    rows = department_seed_rows(
        [
            UnmappedDepartment("sf", "DPW Night Queue", 4, "sf.public_works", "Public Works", "rule", 110),
            UnmappedDepartment("nyc", "Unicorns", 2, "nyc.source.unicorns", "Unicorns", "source", None),
        ]
    )
    assert rows == [
        ("sf", "DPW Night Queue", "sf.public_works", "Public Works"),
        ("nyc", "Unicorns", "", "Unicorns"),
    ]


def test_values_with_commas_and_quotes_are_quoted_and_read_back_whole():
    rows = [("bloomington", "Blocked Street, Alley", "", "sidewalks"), ("nyc", 'The "Big" One', "", "")]
    written = to_csv(rows)
    assert written == 'bloomington,"Blocked Street, Alley",,sidewalks\nnyc,"The ""Big"" One",,\n'
    assert [tuple(r) for r in csv.reader(io.StringIO(written))] == rows
