"""Reading and shaping portal export files, without dlt: names, timestamps, errors."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from ingestion.registry import load_registry, parse_registry
from ingestion.sources.exports import files
from ingestion.sources.exports.files import ExportError, ExportFile, mapped_names
from ingestion.sources.exports.schemas import column_name
from ingestion.sources.exports.shape import BatchShaper
from ingestion.sources.readahead import THREAD_NAME, read_ahead
from tests.helpers.data import NYC_SODA_SAMPLE, SHARED_DATA

NYC_MIXED = SHARED_DATA / "nyc" / "nyc311_mixed_2010_2020_sample.csv"
NYC_2016 = SHARED_DATA / "nyc" / "nyc311_export_2016_jun_bk_cb06_noise.csv"
SF_CASES = SHARED_DATA / "sf" / "sf311_cases_sample_10000_nogeo.csv"
SF_PANDAS = SHARED_DATA / "sf" / "sf311_vw6y-z8j6_pandas_dump_2023-11-28.csv"
LOADED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def read_all(city, path) -> pa.Table:
    return pa.concat_tables(ExportFile.open(city, path).batches(), promote_options="default")


def shaped(city, path) -> tuple[pa.Table, list[dict]]:
    shape = BatchShaper(city, path, LOADED_AT)
    tables, rejected = [], []
    for batch in ExportFile.open(city, path).batches():
        table, bad = shape(batch)
        tables.append(table)
        rejected += bad
    return pa.concat_tables(tables, promote_options="default"), rejected


def row(table: pa.Table, column: str, value: str) -> dict:
    found = table.filter(pa.compute.equal(table[column], value)).to_pylist()
    assert len(found) == 1, f"{column}={value} found {len(found)} times"
    return found[0]


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Created Date", "created_date"),
        ("X Coordinate (State Plane)", "x_coordinate_state_plane"),
        ("School or Citywide Complaint", "school_or_citywide_complaint"),
        (":@computed_region_efsh_h5xi", ":@computed_region_efsh_h5xi"),
        ("Status.Notes", "status_notes"),
        ("SRNumber", "srnumber"),
        ("", ""),
    ],
)
def test_titles_reduce_as_the_api_names_fields(title, name):
    assert column_name(title) == name


@pytest.mark.parametrize(
    ("city_id", "titles", "schema", "names"),
    [
        (
            "sf",
            ["", "CaseID", "Opened", "Responsible.Agency", "Status.Notes", "Neighborhood"],
            "portal",
            ["", "service_request_id", "requested_datetime", "agency_responsible", "status_notes",
             "neighborhoods_sffind_boundaries"],
        ),
        (
            "sf",
            ["service_request_id", "requested_datetime", ":@computed_region_6qbp_sg9q"],
            "api",
            ["service_request_id", "requested_datetime", ":@computed_region_6qbp_sg9q"],
        ),
        (
            "sf",
            ["unique_key", "created_date", "resolution_action_updated_date", "agency_name", "complaint_type"],
            "bigquery",
            ["service_request_id", "requested_datetime", "updated_datetime", "agency_responsible",
             "service_subtype"],
        ),
        ("nyc", ["Unique Key", "Created Date", "School Name"], "portal_53_columns", None),
        ("nyc", ["Unique Key", "Created Date", "BBL"], "portal", None),
        ("la", ["SRNumber", "CreatedDate", "CreatedByUserOrganization"], "myla311_2019", None),
    ],
)  # fmt: skip
def test_a_header_picks_its_city_layout(registry, tmp_path, city_id, titles, schema, names):
    found, mapped = mapped_names(registry.city(city_id), tmp_path / "export.csv", titles)
    assert found.name == schema
    assert mapped == (names or [column_name(t) for t in titles])


def test_nyc_csv_reads_as_text_with_api_names(registry):
    table = read_all(registry.city("nyc"), NYC_MIXED)
    assert table.num_rows == 1999
    assert table.num_columns == 41
    assert set(table.schema.types) == {pa.string()}
    first = row(table, "unique_key", "42254749")
    assert first["created_date"] == "04/18/2019 09:55:45 PM"
    assert first["x_coordinate_state_plane"] == "1002973"
    # An empty cell is a null, as SODA omits it.
    assert first["landmark"] is None


def test_r_written_sf_export_drops_the_index_and_reads_na_as_null(registry, caplog):
    with caplog.at_level(logging.WARNING, logger="civic311.exports"):
        table = read_all(registry.city("sf"), SF_CASES)
    assert table.num_rows == 10_000
    assert table.column_names[:3] == ["service_request_id", "requested_datetime", "closed_date"]
    assert "" not in table.column_names and len(table.column_names) == 16
    assert "column 1 has no title; dropped" in caplog.text
    assert row(table, "service_request_id", "800107")["service_details"] is None  # NA in the file
    assert row(table, "service_request_id", "3600298")["closed_date"] is None  # "" in the file


def test_json_array_streams_across_read_boundaries(registry, monkeypatch):
    # Tiny reads force records to straddle every boundary.
    monkeypatch.setattr(files, "_READ_BYTES", 777)
    table = read_all(registry.city("nyc"), NYC_SODA_SAMPLE)
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    assert table.num_rows == len(records) == 1000
    assert table["unique_key"].to_pylist() == [r["unique_key"] for r in records]
    first = row(table, "unique_key", "24445308")
    # Nested values are kept as JSON text, exactly as the API adapter keeps them.
    assert first["location"] == '{"coordinates":[-73.963367927247,40.774634083459],"type":"Point"}'
    assert first[":@computed_region_efsh_h5xi"] == "10092"


def test_json_lines_export(registry, tmp_path):
    records = json.loads(NYC_SODA_SAMPLE.read_text())[:30]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    table = read_all(registry.city("nyc"), path)
    assert table["unique_key"].to_pylist() == [r["unique_key"] for r in records]


def test_shaped_nyc_rows_carry_keys_iso_times_and_utc_change_stamp(registry):
    table, rejected = shaped(registry.city("nyc"), NYC_MIXED)
    assert rejected == []
    assert table.column_names[:4] == ["city_id", "source_id", "source_updated_at", "_loaded_at"]
    assert not table.schema.field("source_id").nullable
    record = row(table, "source_id", "42254749")
    assert record["city_id"] == "nyc"
    assert record["created_date"] == "2019-04-18T21:55:45.000"
    assert record["due_date"] == "2019-04-19T05:55:45.000"
    # Latest of resolution_action_updated_date / closed_date / created_date, 03:45:24 EDT.
    assert record["source_updated_at"] == datetime(2019, 4, 19, 7, 45, 24, tzinfo=UTC)
    assert record["_loaded_at"] == LOADED_AT


def test_iso_export_times_still_give_the_change_stamp(registry):
    table, _ = shaped(registry.city("sf"), SF_PANDAS)
    assert table.num_rows == 108
    record = row(table, "service_request_id", "17598709")
    assert record["requested_datetime"] == "2023-11-28T01:31:07.000"
    # updated_datetime 2023-11-28T05:46:59 in Pacific standard time.
    assert record["source_updated_at"] == datetime(2023, 11, 28, 13, 46, 59, tzinfo=UTC)


def test_rows_without_an_id_are_quarantined_not_dropped(registry, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Unique Key,Created Date,Status\n"
        "11,01/20/2020 10:00:00 AM,Open\n"
        ",01/20/2020 11:00:00 AM,Open\n"
        "13,01/20/2020 12:00:00 PM,Closed\n"
    )
    table, rejected = shaped(registry.city("nyc"), path)
    assert table["source_id"].to_pylist() == ["11", "13"]
    assert rejected == [{"created_date": "2020-01-20T11:00:00.000", "status": "Open"}]


def test_malformed_csv_lines_are_collected_for_quarantine(registry, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('Unique Key,Created Date,Status\n1,,Open\n2,,Open,extra\n3,,"Closed\nafter a visit"\n')
    export = ExportFile.open(registry.city("nyc"), path)
    table = pa.concat_tables(export.batches())
    assert table.to_pylist() == [
        {"unique_key": "1", "created_date": None, "status": "Open"},
        {"unique_key": "3", "created_date": None, "status": "Closed\nafter a visit"},
    ]
    assert export.malformed.take() == [{"line": "2,,Open,extra", "cells": 4, "expected": 3}]


@pytest.mark.parametrize(
    ("name", "content", "problem", "fix"),
    [
        ("missing.csv", None, "does not exist", "check the path"),
        ("export.parquet", b"PAR1\x00\x00", "is a binary file", "export the data as CSV"),
        ("export.csv", gzip.compress(b"Unique Key\n1\n", mtime=0), "is compressed", "unpack it"),
        ("export.xlsx", b"Unique Key\n1\n", "neither a CSV nor a JSON export", "give a .csv or .json"),
        ("export.json", b"Unique Key\n1\n", "not a JSON array or JSON Lines", "export the dataset as JSON"),
        ("export.csv", b"", "is empty", "re-download the export"),
        (
            "export.csv",
            b"SRNumber,CreatedDate\n1-1,x\n",
            "matches none of New York City's known export layouts (portal, portal_53_columns); the "
            "closest is 'portal', with columns 'portal' does not have: srnumber, createddate; columns "
            "it needs and the file lacks: unique_key, created_date",
            "add them to that schema's columns under export.schemas of city 'nyc'",
        ),
        (
            "export.csv",
            b"Unique Key,Created Date,Status,STATUS\n1,,a,b\n",
            "map to the same field (status)",
            "re-export the file with one column per field",
        ),
    ],
)
def test_bad_files_name_the_city_the_file_and_the_fix(registry, tmp_path, name, content, problem, fix):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ExportError) as raised:
        ExportFile.open(registry.city("nyc"), path)
    message = str(raised.value)
    assert message.startswith(f"nyc: export file {path} ")
    assert problem in message
    assert fix in message.split("Fix:")[1]


def test_truncated_json_array_is_an_error(registry, tmp_path):
    path = tmp_path / "export.json"
    path.write_bytes(NYC_SODA_SAMPLE.read_bytes()[:50_000])
    with pytest.raises(
        ExportError, match=r"nyc: export file .* is not a valid JSON array .* Fix: re-download"
    ):
        read_all(registry.city("nyc"), path)


def test_city_without_an_export_block(tmp_path):
    raw = {
        "cities": [
            {
                "id": "metro",
                "name": "Metro",
                "timezone": "America/Chicago",
                "first_day": "2012-01-01",
                "bbox": {"south": 41.6, "west": -87.9, "north": 42.0, "east": -87.5},
                "source": {"protocol": "open311", "base_url": "https://example.org/open311/v2"},
            }
        ]
    }
    path = tmp_path / "export.csv"
    path.write_text("service_request_id\n1\n")
    with pytest.raises(ExportError, match=r"metro: .*no export block.*Fix: add an `export:` block"):
        ExportFile.open(parse_registry(raw).city("metro"), path)


def test_read_ahead_hands_over_items_and_errors_in_order():
    def items():
        yield 1
        yield 2
        raise ValueError("broken at 3")

    got = []
    with pytest.raises(ValueError, match="broken at 3"):
        for item in read_ahead(items(), depth=1):
            got.append(item)
    assert got == [1, 2]


def test_read_ahead_stops_its_worker_when_the_consumer_stops():
    ahead = read_ahead(iter(range(1_000_000)), depth=2)
    assert next(ahead) == 0
    ahead.close()
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())


def test_an_export_without_change_fields_says_so(registry, tmp_path, caplog):
    path = tmp_path / "export.csv"
    path.write_text("Unique Key,Created Date,Status\n1,,Open\n")
    with caplog.at_level(logging.WARNING, logger="civic311.exports"):
        table, _ = shaped(registry.city("nyc"), path)
    assert table["source_updated_at"].to_pylist() == [None]
    assert (
        "none of the change fields resolution_action_updated_date, closed_date, created_date" in caplog.text
    )
