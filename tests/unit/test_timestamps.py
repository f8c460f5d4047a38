"""The one timestamp reader: each layout read with certainty, every component checked,
wall-clock times placed with staging's DST rule, and a file refused when a column
cannot be read for sure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pytest

from ingestion.registry import load_registry, parse_registry
from ingestion.sources.exports.files import ExportError
from ingestion.sources.exports.shape import BatchShaper, ExportTimestamps
from ingestion.sources.timestamps import (
    family_matches,
    latest,
    month_day_evidence,
    parse_instant,
    read,
    read_instants,
    wall_to_utc,
)

NEW_YORK = "America/New_York"
LOADED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_iso_with_an_offset_is_an_instant_and_without_one_a_wall_clock_time():
    reading = read(
        pa.array(
            [
                "2016-07-13 15:11:07+00:00",  # the BigQuery export's form through pandas
                "2016-07-13 15:11:07 UTC",  # and BigQuery's own CSV export
                "2016-07-13T08:11:07-07:00",
                "2016-07-13T15:11:07.123Z",
                "2016-07-13T20:41+0530",
                "2019-04-18T21:55:45.000",  # Socrata's floating form
                "2022-01-01 00:13:00",  # CKAN's
                "2019-04-18",
            ]
        ),
        "iso",
        NEW_YORK,
    )
    assert reading.text.to_pylist() == [
        "2016-07-13T15:11:07.000Z",
        "2016-07-13T15:11:07.000Z",
        "2016-07-13T15:11:07.000Z",
        "2016-07-13T15:11:07.123Z",
        "2016-07-13T15:11:00.000Z",
        "2019-04-18T21:55:45.000",
        "2022-01-01T00:13:00.000",
        "2019-04-18T00:00:00.000",
    ]
    assert reading.utc.to_pylist() == [
        utc(2016, 7, 13, 15, 11, 7),
        utc(2016, 7, 13, 15, 11, 7),
        utc(2016, 7, 13, 15, 11, 7),
        utc(2016, 7, 13, 15, 11, 7, 123000),
        utc(2016, 7, 13, 15, 11),
        utc(2019, 4, 19, 1, 55, 45),  # EDT
        utc(2022, 1, 1, 5, 13),  # EST
        utc(2019, 4, 18, 4),
    ]


def test_slash_dates_in_either_clock_and_year_width():
    reading = read(
        pa.array(
            [
                "1/1/20 0:05",  # the LA Excel form that once landed in year 1
                "12/31/2017 11:59:58 PM",
                "01/01/2020 12:05:00 AM",
                "1/2/2020 1:05 pm",
                "4/18/2019",
                "3/4/69 10:00",  # two-digit years: 69-99 are the 1900s
            ]
        ),
        "slash",
        "America/Los_Angeles",
    )
    assert reading.text.to_pylist() == [
        "2020-01-01T00:05:00.000",
        "2017-12-31T23:59:58.000",
        "2020-01-01T00:05:00.000",
        "2020-01-02T13:05:00.000",
        "2019-04-18T00:00:00.000",
        "1969-03-04T10:00:00.000",
    ]
    assert reading.parsed == 6
    day_first = read(pa.array(["18/04/2019 21:55:45"]), "slash", "Europe/London", day_first=True)
    assert day_first.text.to_pylist() == ["2019-04-18T21:55:45.000"]


def test_epoch_seconds_are_instants():
    reading = read(pa.array(["1563480000", "1563480000.75", "999"]), "epoch", NEW_YORK)
    assert reading.text.to_pylist() == ["2019-07-18T20:00:00.000Z", "2019-07-18T20:00:00.750Z", "999"]
    assert reading.utc.to_pylist() == [utc(2019, 7, 18, 20), utc(2019, 7, 18, 20, 0, 0, 750000), None]


@pytest.mark.parametrize(
    ("family", "value"),
    [
        ("iso", "2019-02-30T01:00:00"),  # no 30 February: never rolled over to March
        ("iso", "2019-13-01T01:00:00"),
        ("iso", "2019-04-18T24:00:00"),
        ("iso", "2019-04-18T21:61:00"),
        ("iso", "2019-04-18T21:55:45+25:00"),
        ("iso", "20220119"),  # an id, not a date
        ("slash", "2/30/2020 1:05:00 PM"),
        ("slash", "13/2/2020 1:05:00 PM"),
        ("slash", "1/1/2020 0:05:00 AM"),  # no hour 0 on a 12-hour clock
        ("slash", "1/1/2020 13:05 PM"),
        ("slash", "1/1/220 10:00"),
        ("epoch", "1563480000123"),  # milliseconds are not seconds
        ("iso", "N/A"),
    ],
)
def test_a_value_that_is_no_real_moment_is_unparsed_and_kept(family, value):
    reading = read(pa.array([value]), family, NEW_YORK)
    assert reading.utc.to_pylist() == [None]
    assert reading.text.to_pylist() == [value]


def test_empty_values_are_absent_not_unparsed():
    reading = read(pa.array([None, "", "  "]), "iso", NEW_YORK)
    assert reading.present.to_pylist() == [False, False, False]
    assert reading.parsed == 0


WALL_TIMES = [
    datetime(2019, 11, 3, 1, 30),  # happens twice in New York
    datetime(2019, 3, 10, 2, 30),  # never happens in New York
    datetime(2019, 11, 3, 0, 59, 59),
    datetime(2019, 3, 10, 3, 0),
    datetime(2019, 7, 1, 12),
]


def test_wall_clock_times_follow_stagings_dst_rule_exactly():
    """The export's change stamps and staging's times come from one rule: DuckDB's."""
    ours = wall_to_utc(pa.array(WALL_TIMES, pa.timestamp("s")), NEW_YORK).to_pylist()
    with duckdb.connect() as con:
        con.execute("set timezone = 'UTC'")
        theirs = [
            con.execute("select timezone(?, ?::timestamp)", [NEW_YORK, moment]).fetchone()[0]
            for moment in WALL_TIMES
        ]
    assert ours == theirs
    assert ours[:2] == [utc(2019, 11, 3, 6, 30), utc(2019, 3, 10, 7, 30)]


def test_the_scalar_and_the_vectorised_reader_agree():
    values = [
        "2016-07-13 15:11:07+00:00",
        "2016-07-13T08:11:07-07:00",
        "2019-04-18T21:55:45.000",
        "2019-02-30T01:00:00",
        "2019-11-03T01:30:00",
        "2019-03-10T02:30:00",
        None,
        "",
        "N/A",
        "2019-04-18",
        "2016-07-13T15:11+0530",
        "20220119",
        "2019-11-03 01:59:59",
        "2022-01-03 06:44:23.4",
        "2022-01-03 06:44:23.123456",
        "2016-07-13 15:11:07 UTC",
        "2016-07-13 15:11:07 EST",
    ]
    zone = ZoneInfo(NEW_YORK)
    assert read_instants(values, zone) == [parse_instant(v, zone) for v in values]
    assert parse_instant("2024-08-31T11:06:36-04:00") == utc(2024, 8, 31, 15, 6, 36)


def test_families_and_day_month_evidence():
    values = pa.array(["1563480000", "2019-04-18", "1/13/20", "13/1/20", "4/5/2020"])
    assert family_matches(values) == {"iso": 1, "slash": 3, "epoch": 1}
    assert month_day_evidence(values) == (1, 1)


def test_latest_takes_the_newest_of_several_columns():
    stamp = pa.timestamp("s", tz="UTC")
    created = pa.array([utc(2019, 7, 1), utc(2019, 7, 1), None], stamp)
    closed = pa.array([utc(2019, 7, 2), None, None], stamp)
    assert latest([created, closed], 3).to_pylist() == [utc(2019, 7, 2), utc(2019, 7, 1), None]
    assert latest([], 2).to_pylist() == [None, None]


# --- one file's columns ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nyc():
    return load_registry().city("nyc")


def reader(city) -> ExportTimestamps:
    return ExportTimestamps(city, Path("export.csv"), LOADED_AT)


def batch(**columns) -> dict[str, pa.ChunkedArray]:
    return {name: pa.chunked_array([pa.array(values, pa.string())]) for name, values in columns.items()}


def test_day_and_month_that_cannot_be_told_apart_are_refused(nyc):
    with pytest.raises(
        ExportError, match=r"day and month cannot be told apart.*timestamp_format: month_first"
    ):
        reader(nyc).read_batch(
            batch(created_date=["01/02/2020 10:00:00 AM"], closed_date=["03/04/2020 1:00 PM"])
        )


def test_one_column_tells_the_order_for_the_whole_file(nyc):
    times = reader(nyc)
    readings = times.read_batch(
        batch(created_date=["01/02/2020 10:00:00 AM"], closed_date=["01/20/2020 10:00:00 AM"])
    )
    assert readings["created_date"].text.to_pylist() == ["2020-01-02T10:00:00.000"]
    assert times.layouts()["created_date"] == "month/day/year: 1 of 1"


def test_both_orders_in_one_file_are_refused(nyc):
    with pytest.raises(ExportError, match="both month first and day first"):
        reader(nyc).read_batch(batch(created_date=["01/20/2020 10:00", "20/01/2020 10:00"]))


def test_a_declared_layout_settles_what_the_data_cannot(tmp_path):
    raw = load_registry().model_dump(mode="json")
    nyc = next(c for c in raw["cities"] if c["id"] == "nyc")
    nyc["export"]["timestamp_format"] = "day_first"
    city = parse_registry(raw).city("nyc")
    readings = reader(city).read_batch(batch(created_date=["01/02/2020 10:00"]))
    assert readings["created_date"].text.to_pylist() == ["2020-02-01T10:00:00.000"]


def test_a_column_of_no_known_layout_is_refused_at_once(nyc):
    with pytest.raises(
        ExportError, match=r"no timestamp of a known layout in column 'created_date'.*'yesterday'"
    ):
        reader(nyc).read_batch(batch(created_date=["yesterday", "last week"]))


def test_below_999_per_mille_parsed_the_file_is_refused_naming_three_examples(nyc):
    good = [f"2020-01-{day:02d}T10:00:00" for day in range(1, 29)] * 36  # 1,008 values
    times = reader(nyc)
    times.read_batch(batch(created_date=[*good, "2020-02-30T10:00:00", "N/A", "soon", "N/A"]))
    problems = times.problems()
    assert len(problems) == 1
    assert "column 'created_date': 1,008 of its 1,012 values (99.60%)" in problems[0]
    assert "'2020-02-30T10:00:00', 'N/A', 'soon'" in problems[0]
    # One stray value in a thousand and more is let through, and kept as it came.
    times = reader(nyc)
    reading = times.read_batch(batch(created_date=[*good, "N/A"]))["created_date"]
    assert times.problems() == []
    assert reading.text.to_pylist()[-1] == "N/A"


@pytest.mark.parametrize(
    ("stray", "problem"),
    [
        ("1919-06-01T10:00:00", "before 1990"),
        ("2031-06-01T10:00:00", "more than a day after the load"),
    ],
)
def test_request_times_implausible_in_bulk_are_refused(nyc, stray, problem):
    good = ["2020-01-15T10:00:00"] * 98
    refused = reader(nyc)
    refused.read_batch(batch(created_date=[*good, stray, stray]))
    assert any(f"2 of 100 (2.0%) are {problem}" in p for p in refused.problems())
    # 1% is let through (the marts flag isolated placeholder dates); closing times are not judged.
    accepted = reader(nyc)
    accepted.read_batch(batch(created_date=[*good, stray, "2020-01-15T10:00:00"], closed_date=[stray] * 100))
    assert accepted.problems() == []


def test_the_shaper_refuses_the_file_when_it_is_done(nyc):
    shape = BatchShaper(nyc, Path("export.csv"), LOADED_AT)
    shape(pa.table(batch(unique_key=["1", "2"], created_date=["1900-01-01T00:00:00"] * 2)))
    with pytest.raises(ExportError) as refused:
        shape.finish()
    message = str(refused.value)
    assert message.startswith("nyc: export file export.csv cannot be loaded with certainty: request times")
    assert "Fix: re-export the columns in one layout, or declare it with export.timestamp_format" in message
    assert "nothing was loaded" in message
    assert LOADED_AT + timedelta(days=1) == shape.timestamps.latest_plausible


@pytest.mark.parametrize(
    ("family", "layout"),
    [("slash", "%m/%d/%Y %I:%M:%S %p"), ("iso", "%Y-%m-%dT%H:%M:%S.000"), ("iso", "%Y-%m-%d %H:%M:%S")],
)
def test_the_fixed_width_fast_path_reads_what_the_regex_reads(family, layout):
    """Values of an export's usual width are read from their bytes; the same values with a
    space after them (another width) go through the regex. Both must agree, invalid
    dates included."""
    start = datetime(2018, 12, 30, 22, 0)
    moments = [start + timedelta(minutes=97 * n, seconds=n % 60) for n in range(3000)]
    texts = [moment.strftime(layout) for moment in moments] + [
        "02/30/2019 10:00:00 AM" if family == "slash" else "2019-02-30 10:00:00",
        "13/01/2019 10:00:00 AM" if family == "slash" else "2019-13-01 10:00:00",
        "00/01/2019 00:00:00 AM" if family == "slash" else "2019-01-01 24:00:00",
    ]
    fast = read(pa.array(texts), family, NEW_YORK)
    slow = read(pa.array([text + " " for text in texts]), family, NEW_YORK)
    assert fast.utc.to_pylist() == slow.utc.to_pylist()
    assert fast.parsed == 3000
    assert fast.text.to_pylist()[:3000] == slow.text.to_pylist()[:3000]
