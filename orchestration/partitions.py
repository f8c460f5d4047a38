"""The daily partitions of the raw assets, and the window a run covers.

A partition is a UTC day of the source's change time (Socrata's `:updated_at`):
the rows that changed on the portal that day. Each city's raw assets have their
own daily partitions, from the registry's `first_day` for the city. Only the raw
loads are partitioned. The dbt models, their checks, the publish and the maps are
not: a run carries its raw partitions' days to them as one window
(`window_of_run`), and the incremental models rewrite what changed in it. So
Dagster records one materialization per model per run, not one per model per day,
and a backfill of a year of raw days ends in one dbt build (docs/design.md, "What
is partitioned").

Dagster runs one partitions definition per run, so no run loads two cities with
different first days. The daily refresh is a sensor (`orchestration/daily.py`):
one load run per city, then one run of the models over the day's window, which
this module's window tags carry.
"""

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    BackfillPolicy,
    DailyPartitionsDefinition,
    TimeWindow,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
    PARTITION_NAME_TAG,
)

from ingestion.registry import City

# A run with this tag set to "true" rebuilds the dbt models it selects from scratch
# (`dbt build --full-refresh`): the rebuild job carries it.
FULL_REFRESH_TAG = "civic311/dbt_full_refresh"

# A run of the models without partitions (`refresh_models`) reads its window's UTC
# days from these tags: the first day and the last day, inclusive.
WINDOW_FIRST_TAG = "civic311/window_first_day"
WINDOW_LAST_TAG = "civic311/window_last_day"


def city_partitions(city: City) -> DailyPartitionsDefinition:
    """The city's raw partitions: one a UTC day from its registry `first_day` to the
    last day that has ended."""
    return DailyPartitionsDefinition(start_date=city.first_day.isoformat(), timezone="UTC")


def day_window(first: date, last: date) -> TimeWindow:
    """The UTC days first..last (inclusive) as one [start, end) window."""
    start = datetime.combine(first, time(), UTC)
    return TimeWindow(start, datetime.combine(last + timedelta(days=1), time(), UTC))


def _day(key: str) -> date:
    # Every raw partition is a UTC day named YYYY-MM-DD, whichever city's it is.
    return date.fromisoformat(key)


# A backfill of the raw assets from the UI becomes runs of up to this many days
# each, not one run per day: a year's backfill is one run (docs/design.md gives the
# measurements behind it).
# The variable overrides it, for a deployment or a benchmark (bench/scale.py P8).
PARTITIONS_PER_RUN_ENV = "CIVIC311_RAW_PARTITIONS_PER_RUN"
DEFAULT_PARTITIONS_PER_RUN = 366


def raw_partitions_per_run(environ: Mapping[str, str] | None = None) -> int:
    """The days a backfill run of the raw assets loads at most: CIVIC311_RAW_PARTITIONS_PER_RUN,
    a whole number of at least 1, or 366 when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(PARTITIONS_PER_RUN_ENV, "").strip()
    if not value:
        return DEFAULT_PARTITIONS_PER_RUN
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"{PARTITIONS_PER_RUN_ENV}={value!r}: give the days per backfill run of the raw assets "
            f"as a whole number of at least 1, or unset it for {DEFAULT_PARTITIONS_PER_RUN}"
        )
    return int(value)


RAW_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=raw_partitions_per_run())

# What a check reads in a run without partitions: every row.
EVERYTHING = TimeWindow(datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def window_tags(first: date, last: date) -> dict[str, str]:
    """The tags of a run of the models over the UTC days first..last (inclusive);
    `run_window` reads them back."""
    return {WINDOW_FIRST_TAG: first.isoformat(), WINDOW_LAST_TAG: last.isoformat()}


def range_tags(first: date, last: date) -> dict[str, str]:
    """The tags of one run over the partitions first..last (inclusive), as a backfill's
    run carries them; `run_window` reads them back."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def run_window(tags: Mapping[str, str]) -> TimeWindow | None:
    """The days a run covers, from its tags, as one [start, end) window: a single
    partition (a city's daily load, a partition launched from the UI), a range (a
    backfill run), or the window tags of a run of the models (the daily refresh's).
    None for a run without any: everything."""
    if PARTITION_NAME_TAG in tags:
        return day_window(_day(tags[PARTITION_NAME_TAG]), _day(tags[PARTITION_NAME_TAG]))
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        return day_window(
            _day(tags[ASSET_PARTITION_RANGE_START_TAG]), _day(tags[ASSET_PARTITION_RANGE_END_TAG])
        )
    if WINDOW_FIRST_TAG in tags:
        return day_window(_day(tags[WINDOW_FIRST_TAG]), _day(tags[WINDOW_LAST_TAG]))
    return None


def window_of_run(context: AssetExecutionContext | AssetCheckExecutionContext) -> TimeWindow | None:
    """The window an unpartitioned step (a dbt step, a layer's checks) works on: its
    run's partitions; else, in a run of an asset backfill (launched from the UI), the
    days of every raw partition the backfill targets, first to last, since Dagster
    runs the unpartitioned assets once after all of those; else None: everything."""
    window = run_window(context.run.tags)
    if window is not None or BACKFILL_ID_TAG not in context.run.tags:
        return window
    backfill = context.instance.get_backfill(context.run.tags[BACKFILL_ID_TAG])
    if backfill is None or not backfill.is_asset_backfill:
        return None
    job = context.op_execution_context.job_def
    target = backfill.get_asset_backfill_data(job.asset_layer.asset_graph).target_subset
    days = sorted(
        key
        for asset_key, subset in target.partitions_subsets_by_asset_key.items()
        if asset_key.path[0] == "raw"
        for key in subset.get_partition_keys()
    )
    if not days:
        return None
    return day_window(_day(days[0]), _day(days[-1]))
