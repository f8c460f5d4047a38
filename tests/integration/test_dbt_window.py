"""The run window reaches dbt as environment variables read only when dbt executes,
so a run with a new window reuses the parsed project: a window passed as `--vars`
made dbt parse the whole project again in every dbt step of every run."""

from __future__ import annotations

import pytest

from tests.helpers.dbt import dbt

pytestmark = pytest.mark.integration

# A singular test that applies the window outside incremental models (`always=true`),
# so its compiled SQL shows the window without a built warehouse.
NODE = "assert_requests_are_plausible"
PARSE_AGAIN = "Unable to do partial parsing"


def compiled(tmp_path, **options) -> tuple[str, str]:
    done = dbt(tmp_path / "warehouse.duckdb", tmp_path, "compile", "--select", NODE, **options)
    assert done.returncode == 0, done.stdout[-4000:]
    (sql,) = (tmp_path / "dbt_target" / "compiled").rglob(f"{NODE}.sql")
    return done.stdout, sql.read_text()


def test_a_new_window_reuses_the_parsed_project(tmp_path):
    first_log, everything = compiled(tmp_path)
    assert PARSE_AGAIN in first_log  # nothing parsed yet: a full parse, saved for the next call
    assert "2026-11-0" not in everything

    for first, end in (("2026-11-01", "2026-11-02"), ("2026-11-05", "2026-11-06")):
        log, windowed = compiled(tmp_path, window=(first, end))
        assert PARSE_AGAIN not in log, log[-2000:]
        assert f"cast('{first} 00:00:00+00' as timestamptz) - to_days(3)" in windowed
        assert f"< cast('{end} 00:00:00+00' as timestamptz)" in windowed


@pytest.mark.parametrize(
    ("first", "end"),
    [("2026-11-01", ""), ("2026-11-02", "2026-11-01"), ("1/11/26", "2026-11-02")],
)
def test_a_window_that_is_not_two_dates_in_order_stops_dbt(tmp_path, first, end):
    done = dbt(
        tmp_path / "warehouse.duckdb",
        tmp_path,
        "compile",
        "--select",
        NODE,
        environment={"CIVIC311_MIN_DATE": first, "CIVIC311_MAX_DATE": end},
    )
    assert done.returncode != 0
    assert f"CIVIC311_MIN_DATE='{first}', CIVIC311_MAX_DATE='{end}'" in done.stdout
    assert "unset both to build everything" in done.stdout
