"""Schedules. The daily run loads yesterday's UTC day for every city and
rebuilds the models on it."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from orchestration.partitions import daily_partitions

daily_refresh_job = define_asset_job(
    name="daily_refresh",
    selection=AssetSelection.groups("raw", "staging", "intermediate", "marts"),
    partitions_def=daily_partitions,
    description="Load every city's raw partition, check it, and rebuild the dbt models.",
)

daily_refresh_schedule = build_schedule_from_partitioned_job(
    daily_refresh_job, hour_of_day=6, minute_of_hour=0, name="daily_refresh_schedule"
)
