"""Real exports no one prepared for, built from the real samples the way people meet
them: LA's lowercase API names with Excel's M/D/YY H:MM dates, SF in the BigQuery
dataset's schema with UTC offsets, NYC with a column of unreadable dates or with every
date in the 1900s. Each either loads with the right instants or is refused, through
`civic311 load`, before anything is written."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from ingestion.registry import load_registry
from ingestion.sources.exports import load_export
from ingestion.sources.exports.files import ExportError
from orchestration.serving import publish
from tests.helpers.data import REPO, SHARED_DATA
from tests.helpers.dbt import dbt_build, run_dbt
from tests.helpers.oracles import LA_EXPORT
from tests.helpers.warehouse import query

pytestmark = pytest.mark.integration

LA_2017 = SHARED_DATA / "la" / "myla311_2017_subset.csv"
SF_SODA = SHARED_DATA / "sf" / "sf311_vw6y-z8j6_soda_records_2021-07-10_1771.json"
NYC_MIXED = SHARED_DATA / "nyc" / "nyc311_mixed_2010_2020_sample.csv"
LA_TIMES = ("CreatedDate", "UpdatedDate", "ClosedDate", "ServiceDate")
PORTAL_LAYOUT = "%m/%d/%Y %I:%M:%S %p"
# The canonical columns a reformatted export must reproduce exactly.
COMPARED = (
    "request_id, requested_at, requested_at_local, closed_at, updated_at, status, "
    "service_name, service_subtype, department, latitude, longitude"
)


def civic311_load(city: str, path: Path, warehouse: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CIVIC311_WAREHOUSE": str(warehouse), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    return subprocess.run(  # noqa: S603 - fixed argv
        [str(Path(sys.executable).with_name("civic311")), "load", "--city", city, "--from-file", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def rows_of(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def canonical(warehouse: Path, work: Path, city: str, select: str = "+int_service_requests") -> list[tuple]:
    done = run_dbt(warehouse, select, work)
    assert done.returncode == 0, done.stdout[-3000:]
    return query(
        warehouse,
        f"select {COMPARED} from intermediate.int_service_requests where city_id = ? order by 1",
        [city],
    )


def excel_style(moment: datetime) -> str:
    """How Excel shows a date-time cell by default: 1/1/20 0:05."""
    return f"{moment.month}/{moment.day}/{moment:%y} {moment.hour}:{moment:%M}"


def test_la_lowercase_export_with_excel_dates_keeps_the_original_durations(tmp_path):
    """The same 9,999 MyLA311 requests, in the portal's layout and in the 2019+ API's
    lowercase names with Excel's M/D/YY H:MM dates (which once landed in the year 1).
    Excel's format has no seconds, so both files carry the minute only."""
    header, rows = rows_of(LA_2017)
    times = [header.index(title) for title in LA_TIMES]
    portal, excel = [], []
    for row in rows:
        moments = {i: datetime.strptime(row[i], PORTAL_LAYOUT).replace(second=0) for i in times if row[i]}
        portal.append([moments[i].strftime(PORTAL_LAYOUT) if i in moments else v for i, v in enumerate(row)])
        excel.append([excel_style(moments[i]) if i in moments else v for i, v in enumerate(row)])
    portal_file = write_csv(tmp_path / "myla311_portal.csv", header, portal)
    excel_file = write_csv(tmp_path / "myla311_2020_excel.csv", [title.lower() for title in header], excel)

    loaded = civic311_load("la", excel_file, tmp_path / "excel" / "warehouse.duckdb")
    assert loaded.returncode == 0, loaded.stderr
    assert "9,999 loaded" in loaded.stdout
    assert "layout myla311" in loaded.stdout
    assert "createddate: month/day/year: 9,999 of 9,999" in loaded.stdout
    load_export(load_registry().city("la"), portal_file, tmp_path / "portal" / "warehouse.duckdb")

    excel_rows = canonical(tmp_path / "excel" / "warehouse.duckdb", tmp_path / "excel", "la")
    assert excel_rows == canonical(tmp_path / "portal" / "warehouse.duckdb", tmp_path / "portal", "la")
    assert len(excel_rows) == 9999
    # 1-870704831 was made at 11:59:58 PM on 31 December 2017, Pacific time.
    first = next(r for r in excel_rows if r[0] == "1-870704831")
    assert first[1] == datetime(2018, 1, 1, 7, 59, tzinfo=ZoneInfo("UTC"))
    assert first[2] == datetime(2017, 12, 31, 23, 59)
    with duckdb.connect(str(tmp_path / "excel" / "warehouse.duckdb"), read_only=True) as con:
        # Every request time in its own year, none in the year 1.
        assert con.execute(
            "select min(year(requested_at_local)), max(year(requested_at_local)), count(*) "
            "from intermediate.int_service_requests"
        ).fetchone() == (2017, 2017, 9999)


def test_sf_bigquery_export_with_utc_offsets_lands_in_utc(tmp_path):
    """SF's 1,771 SODA records (floating Pacific times) and the same requests in the
    schema of BigQuery's san_francisco_311 dataset, times in UTC with "+00:00": the
    header is recognised with no registry edit, and every instant is the same."""
    records = json.loads(SF_SODA.read_text())
    pacific, utc = ZoneInfo("America/Los_Angeles"), ZoneInfo("UTC")

    def in_utc(value: str | None) -> str:
        if not value:
            return ""
        wall = datetime.fromisoformat(value).replace(tzinfo=pacific)
        return wall.astimezone(utc).strftime("%Y-%m-%d %H:%M:%S+00:00")

    columns = {  # BigQuery column -> the SODA field it holds
        "unique_key": "service_request_id",
        "created_date": "requested_datetime",
        "closed_date": "closed_date",
        "resolution_action_updated_date": "updated_datetime",
        "status": "status_description",
        "status_notes": "status_notes",
        "agency_name": "agency_responsible",
        "category": "service_name",
        "complaint_type": "service_subtype",
        "descriptor": "service_details",
        "incident_address": "address",
        "supervisor_district": "supervisor_district",
        "neighborhood": "neighborhoods_sffind_boundaries",
        "location": "point",
        "source": "source",
        "media_url": "media_url",
        "latitude": "lat",
        "longitude": "long",
        "police_district": "police_district",
    }
    times = {"created_date", "closed_date", "resolution_action_updated_date"}
    rows = []
    for record in records:
        row = []
        for column, field in columns.items():
            value = record.get(field)
            if column in times:
                value = in_utc(value)
            elif not isinstance(value, str | None):
                value = json.dumps(value)
            row.append(value or "")
        rows.append(row)
    bigquery = write_csv(tmp_path / "sf311_bigquery.csv", list(columns), rows)

    loaded = civic311_load("sf", bigquery, tmp_path / "bq" / "warehouse.duckdb")
    assert loaded.returncode == 0, loaded.stderr
    assert "layout bigquery" in loaded.stdout
    raw = query(
        tmp_path / "bq" / "warehouse.duckdb",
        "select requested_datetime from raw_sf.service_requests_export where source_id = '14011783'",
    )
    assert raw == [("2021-07-02T18:52:00.000Z",)]  # 11:52 PDT on July 2nd
    load_export(load_registry().city("sf"), SF_SODA, tmp_path / "soda" / "warehouse.duckdb")

    from_bigquery = canonical(tmp_path / "bq" / "warehouse.duckdb", tmp_path / "bq", "sf")
    assert len(from_bigquery) == 1771
    assert from_bigquery == canonical(tmp_path / "soda" / "warehouse.duckdb", tmp_path / "soda", "sf")


def table_state(warehouse: Path) -> list[tuple]:
    return query(
        warehouse,
        "select (select count(*) from raw_nyc.service_requests_export), "
        "(select md5(string_agg(source_id || coalesce(closed_date, ''), ',' order by source_id)) "
        " from raw_nyc.service_requests_export), (select count(*) from raw_nyc._dlt_loads)",
    )


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            # Half the closing times unreadable (a text export of an Excel sheet, say).
            lambda row, n: row | ({"Closed Date": "see notes"} if n % 2 and row["Closed Date"] else {}),
            "column 'closed_date': 976 of its 1,949 values (50.08%) read as month/day/year, below 99.9%; "
            "unparsed e.g. 'see notes'",
        ),
        (
            # Every date a century early.
            lambda row, n: {k: re.sub(r"^(\d\d/\d\d/)20", r"\g<1>19", v) for k, v in row.items()},
            "request times ('created_date'): 1,999 of 1,999 (100.0%) are before 1990, more than 1%",
        ),
    ],
    ids=["unparseable", "1900s"],
)
def test_a_file_not_read_with_certainty_is_refused_with_nothing_written(tmp_path, change, said):
    warehouse = tmp_path / "warehouse.duckdb"
    assert civic311_load("nyc", NYC_MIXED, warehouse).returncode == 0
    before = table_state(warehouse)
    with NYC_MIXED.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = [change(row, n) for n, row in enumerate(reader)]
        header = reader.fieldnames
    broken = tmp_path / "nyc_broken.csv"
    with broken.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)

    refused = civic311_load("nyc", broken, warehouse)
    assert refused.returncode == 2
    message = refused.stderr.strip()
    assert message.startswith(f"civic311 load: nyc: export file {broken} cannot be loaded with certainty: ")
    assert said in message
    assert "Fix: re-export the columns in one layout, or declare it with export.timestamp_format" in message
    assert "Traceback" not in refused.stderr
    assert table_state(warehouse) == before


# The LA export's newest change stamp, and its requests still open then by age, leaving
# out a crew's own entry and feedback (a question, information_only in the seed): all
# its times are Los Angeles wall-clock times.
LA_OPEN_WHEN_TAKEN = f"""
with {LA_EXPORT},

taken as (
    select max(greatest(created_at, closed_at, updated_at)) as as_of from la_export
),

open_ages as (
    select date_diff('second', created_at, taken.as_of) / 86400 as age_days
    from la_export, taken
    where closed_at is null and channel <> 'Driver Self Report' and service_name <> 'Feedback'
)

select
    (select as_of from taken),
    count(*) filter (where age_days < 30),
    count(*) filter (where age_days >= 30)
from open_ages
"""


def test_an_old_export_ages_its_open_requests_as_of_when_it_was_taken(tmp_path):
    """MyLA311's 2017 export, loaded and built with no pinned as-of years later: its
    open requests are aged to the day the export was taken, which dim_city and the
    serving file show. Aged from that day, every open request is settled in the marts:
    no figure of theirs would move with a later as-of, so they show none, only the
    instant they settled (figures_settled_at), by that day."""
    warehouse = tmp_path / "warehouse.duckdb"
    load_export(load_registry().city("la"), LA_2017, warehouse)
    dbt_build(warehouse, "civic311", tmp_path)
    served = publish(warehouse, tmp_path / "serving.duckdb", tmp_path / "published")

    with duckdb.connect(str(warehouse), read_only=True) as con:
        taken_at, under_30_days, over_30_days = con.execute(LA_OPEN_WHEN_TAKEN).fetchone()
        city = con.execute("select as_of, as_of_source from marts.dim_city where city_id = 'la'").fetchone()
        aged = con.execute(
            "select sum(open_requests), sum(open_30_plus_days),"
            " list(distinct as_of) filter (where as_of is not null),"
            " bool_and(as_of is null) filter (where open_requests = 0),"
            " bool_and(open_30_plus_days = open_requests) filter (where open_requests > 0 and as_of is null),"
            " max(figures_settled_at) filter (where open_requests > 0),"
            " count(*) filter (where open_requests > 0 and figures_settled_at is null)"
            " from marts.mart_response_times where city_id = 'la'"
        ).fetchone()
        censored_at, gaps_settled, gaps_unsettled = con.execute(
            "select list(distinct as_of) filter (where as_of is not null),"
            " max(figures_settled_at) filter (where open_requests > 0),"
            " count(*) filter (where open_requests > 0 and figures_settled_at is null)"
            " from marts.mart_service_gaps where city_id = 'la'"
        ).fetchone()
    served_as_of = query(served.serving, "select as_of from marts.dim_city where city_id = 'la'")

    # Taken in March 2019: the newest update is 5:15:04 PM on 12 March, Pacific time.
    assert taken_at == datetime(2019, 3, 13, 0, 15, 4, tzinfo=ZoneInfo("UTC"))
    assert city == (taken_at, "newest_change")
    # Every open request was over 30 days old when the export was taken, and older than
    # its group's Kaplan–Meier median: every row is settled and shows no as_of (a row
    # still moving shows its city's as-of: the unit test each_city_at_its_own_as_of).
    # Each settled row says from when: no later than the day the export was taken.
    *aged, last_settled, unsettled = aged
    assert aged == [under_30_days + over_30_days, over_30_days, None, True, True]
    assert last_settled <= taken_at
    assert unsettled == 0
    assert censored_at is None
    assert gaps_settled <= taken_at
    assert gaps_unsettled == 0
    assert served_as_of == [(taken_at,)]


def test_a_download_cut_inside_a_cell_or_holding_a_nul_is_refused_with_nothing_written(tmp_path):
    """The NYC export loaded, then damaged copies of it: one cut inside the quoted
    location of request 32801674 (which once overwrote the stored row's location with
    "(40"), and NULs at the head and deep in the file. Each is refused naming the line
    and byte offset, and the warehouse is as it was. The same file without its final
    newline is whole, and loading it again changes nothing."""
    warehouse = tmp_path / "warehouse.duckdb"
    assert civic311_load("nyc", NYC_MIXED, warehouse).returncode == 0
    before = table_state(warehouse)
    location = "select location from raw_nyc.service_requests_export where source_id = '32801674'"
    stored_location = query(warehouse, location)
    lines = NYC_MIXED.read_bytes().splitlines(keepends=True)
    record = next(n for n, line in enumerate(lines) if line.startswith(b"32801674,"))
    offset = sum(len(line) for line in lines[:record])

    cut = tmp_path / "nyc_cut.csv"
    cut.write_bytes(b"".join(lines[:record]) + lines[record][: lines[record].index(b'"(40') + 4])
    refused = civic311_load("nyc", cut, warehouse)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"civic311 load: nyc: export file {cut} ends inside a quoted cell: its last record, from line "
        f"{record + 1:,} (byte offset {offset:,}), is cut off. Fix: download the export again; the "
        "download stopped before the end of the file."
    )

    city = load_registry().city("nyc")
    for line in (1, 1499):  # in the first 4 KiB, and far past it
        damaged = tmp_path / f"nyc_nul_{line}.csv"
        at = sum(len(text) for text in lines[:line]) + 5
        whole = b"".join(lines)
        damaged.write_bytes(whole[:at] + b"\x00" + whole[at:])
        with pytest.raises(ExportError) as raised:
            load_export(city, damaged, warehouse)
        assert f"holds a NUL byte on line {line + 1:,} (byte offset {at:,})" in str(raised.value)
        assert "Fix: download the export again" in str(raised.value)
    assert table_state(warehouse) == before
    assert query(warehouse, location) == stored_location == [("(40.6247342, -74.0364273)",)]

    unterminated = tmp_path / "nyc_no_final_newline.csv"
    unterminated.write_bytes(b"".join(lines).removesuffix(b"\n"))
    load_export(city, unterminated, warehouse)
    assert table_state(warehouse)[0][:2] == before[0][:2]
