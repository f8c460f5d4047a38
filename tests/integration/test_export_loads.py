"""Every recorded portal export file through `load_export` into a temporary warehouse."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from ingestion.registry import load_registry
from ingestion.sources.exports import EXPORT_TABLE, ExportError, load_export
from tests.helpers.data import NYC_SODA_SAMPLE, SHARED_DATA

pytestmark = pytest.mark.integration

NYC_MIXED = SHARED_DATA / "nyc" / "nyc311_mixed_2010_2020_sample.csv"
NYC_2016 = SHARED_DATA / "nyc" / "nyc311_export_2016_jun_bk_cb06_noise.csv"
LA_2017 = SHARED_DATA / "la" / "myla311_2017_subset.csv"
SF_CASES = SHARED_DATA / "sf" / "sf311_cases_sample_10000_nogeo.csv"
SF_PANDAS = SHARED_DATA / "sf" / "sf311_vw6y-z8j6_pandas_dump_2023-11-28.csv"
BOSTON_2022 = SHARED_DATA / "boston" / "boston311_2022_jan_100.csv"
SF_SODA = SHARED_DATA / "sf" / "sf311_vw6y-z8j6_soda_records_2021-07-10_1771.json"
SF_SINGER = SHARED_DATA / "sf" / "sf311_tap-sf311_singer_out.jsonl"

# (city, file, rows, columns the file delivers)
RECORDED = [
    ("nyc", NYC_MIXED, 1999, 41),
    ("nyc", NYC_2016, 117, 53),
    ("nyc", NYC_SODA_SAMPLE, 1000, 45),
    ("la", LA_2017, 9999, 33),
    ("sf", SF_CASES, 10_000, 16),
    ("sf", SF_PANDAS, 108, 48),
    ("sf", SF_SODA, 1771, 19),
    ("sf", SF_SINGER, 1771, 19),
    ("boston", BOSTON_2022, 100, 29),
]
# Columns that differ between two loads of the same file by design.
RUN_COLUMNS = ("_loaded_at", "_dlt_load_id", "_dlt_id")


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def query(warehouse, sql, *params):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def record(warehouse, city_id, source_id, columns: str) -> dict:
    """The named columns ("a, b, c") of one row of the city's export table."""
    rows = query(
        warehouse, f"select {columns} from raw_{city_id}.{EXPORT_TABLE} where source_id = ?", source_id
    )
    assert len(rows) == 1
    return dict(zip(columns.replace(" ", "").split(","), rows[0], strict=True))


def column_names(warehouse, city_id, table=EXPORT_TABLE) -> list[str]:
    return [
        name
        for (name,) in query(
            warehouse,
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            f"raw_{city_id}",
            table,
        )
    ]


def table_hash(warehouse, city_id, table=EXPORT_TABLE) -> tuple[int, str]:
    """Row count and a hash of the sorted rows, leaving out what differs per run."""
    columns = [name for name in column_names(warehouse, city_id, table) if name not in RUN_COLUMNS]
    listed = ", ".join(f'"{c}"' for c in columns)
    return query(
        warehouse,
        f"with r as (select {listed} from raw_{city_id}.{table}) "
        "select count(*), md5(string_agg(cast(r as varchar), chr(10) order by cast(r as varchar))) from r",
    )[0]


@pytest.mark.parametrize(
    ("city_id", "path", "rows", "columns"), RECORDED, ids=lambda v: getattr(v, "name", None)
)
def test_each_recorded_export_loads_whole_and_reloads_idempotently(
    registry, tmp_path, city_id, path, rows, columns
):
    warehouse = tmp_path / "w.duckdb"
    summary = load_export(registry.city(city_id), path, warehouse)
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined) == (rows, rows, 0)
    assert len(summary.columns) == columns
    assert query(
        warehouse,
        f"select count(*), count(distinct source_id), count(distinct city_id) "
        f"from raw_{city_id}.{EXPORT_TABLE}",
    ) == [(rows, rows, 1)]
    first = table_hash(warehouse, city_id)

    # The second load of the file merges (the first one appended into an empty table).
    again = load_export(registry.city(city_id), path, warehouse)
    assert again.rows_loaded == rows
    assert table_hash(warehouse, city_id) == first
    assert first[0] == rows


def test_nyc_exports_of_both_schemas_share_one_table(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    nyc = registry.city("nyc")
    load_export(nyc, NYC_MIXED, warehouse)
    load_export(nyc, NYC_2016, warehouse)
    assert query(
        warehouse,
        "select count(*), count(distinct source_id), count(bbl), count(open_data_channel_type), "
        "count(school_name), count(school_not_found) from raw_nyc.service_requests_export",
    ) == [(2116, 2116, 1544, 1999, 117, 76)]
    columns = column_names(warehouse, "nyc")
    # New columns of the old schema were added; the current schema's stay.
    assert {"bbl", "open_data_channel_type", "garage_lot_name", "ferry_direction", "school_region"} <= set(
        columns
    )
    old = record(
        warehouse,
        "nyc",
        "33648024",
        "created_date, closed_date, due_date, descriptor, school_name, bbl, source_updated_at",
    )
    assert old == {
        "created_date": "2016-06-20T22:04:21.000",
        "closed_date": "2016-06-20T23:12:32.000",
        "due_date": "2016-06-21T06:04:21.000",
        "descriptor": "Loud Music/Party",
        "school_name": "Unspecified",
        "bbl": None,
        # 11:12:32 PM EDT on June 20th.
        "source_updated_at": datetime(2016, 6, 21, 3, 12, 32, tzinfo=UTC),
    }
    current = record(
        warehouse,
        "nyc",
        "42254749",
        "complaint_type, x_coordinate_state_plane, bbl, open_data_channel_type, "
        "school_name, source_updated_at",
    )
    assert current == {
        "complaint_type": "Noise - Residential",
        "x_coordinate_state_plane": "1002973",
        "bbl": "3088060140",
        "open_data_channel_type": "PHONE",
        "school_name": None,
        "source_updated_at": datetime(2019, 4, 19, 7, 45, 24, tzinfo=UTC),
    }


def test_soda_json_export_lands_in_the_api_columns(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_export(registry.city("nyc"), NYC_SODA_SAMPLE, warehouse)
    assert record(
        warehouse,
        "nyc",
        "24445308",
        "created_date, closed_date, location, _acomputed_region_efsh_h5xi, source_updated_at",
    ) == {
        "created_date": "2012-11-20T07:50:59.000",
        "closed_date": "2012-11-20T15:19:09.000",
        "location": '{"coordinates":[-73.963367927247,40.774634083459],"type":"Point"}',
        # The same column the API adapter fills from ":@computed_region_efsh_h5xi".
        "_acomputed_region_efsh_h5xi": "10092",
        "source_updated_at": datetime(2012, 11, 20, 20, 19, 9, tzinfo=UTC),
    }


def test_la_export(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_export(registry.city("la"), LA_2017, warehouse)
    assert record(
        warehouse,
        "la",
        "1-870704831",
        "createddate, updateddate, closeddate, servicedate, requesttype, ncname, source_updated_at",
    ) == {
        "createddate": "2017-12-31T23:59:58.000",
        "updateddate": "2018-04-09T09:25:28.000",
        "closeddate": "2018-04-09T09:18:35.000",
        "servicedate": "2018-01-05T00:00:00.000",
        "requesttype": "Homeless Encampment",
        "ncname": "GREATER ECHO PARK ELYSIAN NC",
        # updateddate is the latest, 09:25:28 PDT.
        "source_updated_at": datetime(2018, 4, 9, 16, 25, 28, tzinfo=UTC),
    }


def test_old_sf_case_export_maps_to_current_field_names(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_export(registry.city("sf"), SF_CASES, warehouse)
    assert record(
        warehouse,
        "sf",
        "3600298",
        "service_request_id, requested_datetime, updated_datetime, closed_date, status_description, "
        "agency_responsible, service_name, service_subtype, neighborhoods_sffind_boundaries, "
        "source_updated_at",
    ) == {
        "service_request_id": "3600298",
        "requested_datetime": "2014-04-30T14:51:52.000",
        "updated_datetime": "2014-04-30T15:37:59.000",
        "closed_date": None,
        "status_description": "Open",
        "agency_responsible": "PUC - Sewer - G",
        "service_name": "Sewer Issues",
        "service_subtype": "Odor",
        "neighborhoods_sffind_boundaries": "Mission Bay",
        "source_updated_at": datetime(2014, 4, 30, 22, 37, 59, tzinfo=UTC),
    }
    # R wrote NA for missing values; they are nulls, and R's row index is not a column.
    assert record(warehouse, "sf", "800107", "service_details") == {"service_details": None}
    assert not {"caseid", "opened", "category", "__untitled_0"} & set(column_names(warehouse, "sf"))


def test_sf_pandas_dump_keeps_computed_region_columns(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    summary = load_export(registry.city("sf"), SF_PANDAS, warehouse)
    assert sum(name.startswith(":@computed_region_") for name in summary.columns) == 27
    assert record(
        warehouse,
        "sf",
        "17598709",
        "requested_datetime, updated_datetime, _acomputed_region_6qbp_sg9q, _acomputed_region_bh8s_q3mv, "
        "source_updated_at",
    ) == {
        "requested_datetime": "2023-11-28T01:31:07.000",
        "updated_datetime": "2023-11-28T05:46:59.000",
        "_acomputed_region_6qbp_sg9q": "77",
        "_acomputed_region_bh8s_q3mv": "28860",
        "source_updated_at": datetime(2023, 11, 28, 13, 46, 59, tzinfo=UTC),
    }


def test_boston_export_with_its_own_timestamp_layout(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_export(registry.city("boston"), BOSTON_2022, warehouse)
    assert record(
        warehouse,
        "boston",
        "101004143000",
        "open_dt, target_dt, closed_dt, case_status, source_updated_at",
    ) == {
        "open_dt": "2022-01-21T13:47:00.000",
        "target_dt": "2022-02-04T13:47:30.000",
        "closed_dt": None,
        "case_status": "Open",
        "source_updated_at": datetime(2022, 1, 21, 18, 47, tzinfo=UTC),
    }
    assert record(warehouse, "boston", "101004130437", "closed_dt, source_updated_at") == {
        "closed_dt": "2022-01-19T11:42:16.000",
        "source_updated_at": datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC),
    }


def test_rows_without_id_and_malformed_lines_are_quarantined_once(registry, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Unique Key,Created Date,Closed Date,Status\n"
        "101,01/20/2020 10:00:00 AM,,Open\n"
        ",01/20/2020 11:00:00 AM,,Open\n"
        "103,01/20/2020 12:00:00 PM,01/21/2020 01:00:00 AM,Closed,extra cell\n"
        "104,01/20/2020 12:00:00 PM,01/21/2020 02:30:00 AM,Closed\n"
    )
    warehouse = tmp_path / "w.duckdb"
    for _ in range(2):
        summary = load_export(registry.city("nyc"), path, warehouse)
        assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined) == (4, 2, 2)
        assert query(warehouse, "select source_id from raw_nyc.service_requests_export order by 1") == [
            ("101",),
            ("104",),
        ]
        assert query(warehouse, "select rule, payload from raw_nyc.rejected_service_requests order by 1") == [
            (
                "malformed_csv_line",
                '{"cells":5,"expected":4,'
                '"line":"103,01/20/2020 12:00:00 PM,01/21/2020 01:00:00 AM,Closed,extra cell"}',
            ),
            ("missing_unique_key", '{"created_date":"2020-01-20T11:00:00.000","status":"Open"}'),
        ]


def test_a_repeated_id_keeps_its_newest_row_on_first_load_and_reload(registry, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Unique Key,Created Date,Closed Date,Status\n"
        "7,01/20/2020 10:00:00 AM,,Open\n"
        "7,01/20/2020 10:00:00 AM,01/25/2020 10:00:00 AM,Closed\n"
        "8,01/20/2020 10:00:00 AM,,Open\n"
    )
    warehouse = tmp_path / "w.duckdb"
    for _ in range(2):
        load_export(registry.city("nyc"), path, warehouse)
        assert query(
            warehouse,
            "select source_id, status, source_updated_at from raw_nyc.service_requests_export order by 1",
        ) == [
            ("7", "Closed", datetime(2020, 1, 25, 15, tzinfo=UTC)),
            ("8", "Open", datetime(2020, 1, 20, 15, tzinfo=UTC)),
        ]


def test_a_later_export_updates_rows_by_key(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    first, later = tmp_path / "first.csv", tmp_path / "later.csv"
    first.write_text(
        "Unique Key,Created Date,Status\n21,01/20/2020 10:00:00 AM,Open\n22,01/20/2020 10:00:00 AM,Open\n"
    )
    later.write_text(
        "Unique Key,Created Date,Closed Date,Status\n"
        "22,01/20/2020 10:00:00 AM,01/24/2020 09:00:00 AM,Closed\n"
    )
    load_export(registry.city("nyc"), first, warehouse)
    load_export(registry.city("nyc"), later, warehouse)
    assert query(
        warehouse, "select source_id, status, closed_date from raw_nyc.service_requests_export order by 1"
    ) == [
        ("21", "Open", None),
        ("22", "Closed", "2020-01-24T09:00:00.000"),
    ]


def test_a_file_that_breaks_mid_read_names_the_city_file_and_fix(registry, tmp_path):
    path = tmp_path / "export.csv"
    # Far enough into the file that only the streaming reader meets the bad bytes.
    good = "".join(f"{i},,Open\n" for i in range(1, 300_000)).encode()
    path.write_bytes(b"Unique Key,Created Date,Status\n" + good + b"300000,,\xff\xfe broken\n")
    with pytest.raises(ExportError) as raised:
        load_export(registry.city("nyc"), path, tmp_path / "w.duckdb")
    message = str(raised.value)
    assert message.startswith(f"nyc: export file {path} cannot be parsed as CSV")
    assert "Fix: re-save the file as UTF-8" in message


def test_export_does_not_touch_the_api_table_or_its_cursor(registry, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_export(registry.city("nyc"), NYC_MIXED, warehouse)
    tables = {
        name
        for (name,) in query(
            warehouse, "select table_name from information_schema.tables where table_schema = 'raw_nyc'"
        )
    }
    assert EXPORT_TABLE in tables and "service_requests" not in tables
    assert query(warehouse, "select distinct pipeline_name from raw_nyc._dlt_pipeline_state") == [
        ("civic311_nyc_export",)
    ]


def test_a_header_only_export_loads_nothing(registry, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Unique Key,Created Date,Status\n")
    summary = load_export(registry.city("nyc"), path, tmp_path / "w.duckdb")
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined) == (0, 0, 0)


def test_a_json_export_without_the_id_field_is_refused(registry, tmp_path):
    path = tmp_path / "export.json"
    path.write_text('[{"srnumber": "1-1", "createddate": "2017-12-31T23:59:58.000"}]')
    with pytest.raises(ExportError) as raised:
        load_export(registry.city("nyc"), path, tmp_path / "w.duckdb")
    message = str(raised.value)
    assert message.startswith(
        f"nyc: export file {path} matches none of New York City's known export layouts "
        "(portal, portal_53_columns); the closest is 'portal', with columns 'portal' does not have: "
        "srnumber, createddate; columns it needs and the file lacks: unique_key, created_date. "
    )
    assert "check too that the file is this city's 311 export" in message


def test_a_singer_taps_output_loads_like_the_records_it_wraps(registry, tmp_path):
    """The same 1,771 SF records, as a SODA array and as a Singer tap's RECORD lines
    (with its SCHEMA and STATE lines), give the same table."""
    city = registry.city("sf")
    array, singer = tmp_path / "array.duckdb", tmp_path / "singer.duckdb"
    load_export(city, SF_SODA, array)
    summary = load_export(city, SF_SINGER, singer)
    assert (summary.rows_read, summary.rows_quarantined) == (1771, 0)
    assert table_hash(singer, "sf") == table_hash(array, "sf")
