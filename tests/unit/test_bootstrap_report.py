"""What `civic311 bootstrap` says at the end: the day the daily refresh carries on
from (the export's newest change day, in UTC, that day included), the backfill of the
days before the daily refresh's next day, and a failing check with its fix."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from ingestion.registry import load_registry
from ingestion.sources.exports import ExportSummary
from orchestration.bootstrap import Bootstrap, carry_on_day, first_scheduled_day, report_lines

NEW_YORK_WINTER = timezone(timedelta(hours=-5))


def test_the_schedule_carries_on_from_the_utc_day_of_the_newest_change():
    # 21:30 in New York is already the next day in UTC.
    assert carry_on_day(datetime(2012, 11, 19, 21, 30, tzinfo=NEW_YORK_WINTER)) == date(2012, 11, 20)
    assert carry_on_day(datetime(2012, 11, 20, 0, 0, tzinfo=UTC)) == date(2012, 11, 20)


def test_the_daily_refresh_loads_the_day_before_from_six_utc():
    assert first_scheduled_day(datetime(2026, 12, 6, 5, 59, tzinfo=UTC)) == date(2026, 12, 5)
    assert first_scheduled_day(datetime(2026, 12, 6, 6, 0, tzinfo=UTC)) == date(2026, 12, 6)


def bootstrapped(**changes) -> Bootstrap:
    summary = ExportSummary("nyc", Path("export.csv"), 1000, 990, 10, ("unique_key",), 1.0)
    done = Bootstrap("nyc", loads=[summary], seconds={"load": 1.0, "dbt": 20.0}, run_id="r1", success=True)
    for name, value in changes.items():
        setattr(done, name, value)
    return done


def test_a_bootstrap_of_an_old_export_names_the_backfill_of_the_days_in_between():
    nyc = load_registry().city("nyc")
    done = bootstrapped(newest_change=datetime(2026, 11, 20, 14, tzinfo=UTC))
    lines = report_lines(done, nyc, now=datetime(2026, 11, 23, 7, tzinfo=UTC))
    text = "\n".join(lines)
    assert "1,000 read, 990 loaded into raw_nyc.service_requests_export, 10 quarantined" in text
    assert "carries on from partition 2026-11-20" in text
    assert "The daily refresh loads 2026-11-23 next" in text
    # One run over the days between, not a run per day.
    assert "`civic311 refresh --city nyc --from 2026-11-20 --to 2026-11-22`" in lines[-1]


def test_an_export_of_yesterday_needs_no_backfill():
    nyc = load_registry().city("nyc")
    done = bootstrapped(newest_change=datetime(2026, 11, 22, 23, tzinfo=UTC))
    text = "\n".join(report_lines(done, nyc, now=datetime(2026, 11, 23, 5, tzinfo=UTC)))
    assert "carries on from partition 2026-11-22" in text
    assert "backfill" not in text


def test_a_failing_check_is_named_with_the_fix():
    nyc = load_registry().city("nyc")
    done = bootstrapped(
        success=False,
        failed_checks=["marts/fct_service_requests:fct_service_requests_suite (3 rows broke)"],
        log=Path("/home/bootstrap/r1.log"),
    )
    text = "\n".join(report_lines(done, nyc))
    assert "FAILED: nothing new was published." in text
    assert "failed check marts/fct_service_requests:fct_service_requests_suite (3 rows broke)" in text
    assert "Fix: docs/quality.md" in text and "civic311 bootstrap --city nyc" in text
    assert "/home/bootstrap/r1.log" in text
    assert "carries on" not in text
