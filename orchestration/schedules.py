"""Jobs and schedules. `refresh_<city>` loads one city's raw partitions and rebuilds
the models on them; the daily refresh (orchestration/daily.py) loads the day before
for every city, a run per city, then runs `refresh_models` over that day."""

from dagster import (
    AssetSelection,
    JobDefinition,
    ScheduleDefinition,
    define_asset_job,
)

from ingestion.registry import City
from orchestration.partitions import FULL_REFRESH_TAG

# The geography group holds the boundary loads and the dbt models built on the
# requests' join to them (models/geography): those run with every refresh, the
# loads only when refresh_boundaries runs, before any request may be joined.
DBT_GEOGRAPHY = AssetSelection.groups("geography") & AssetSelection.kind("dbt")
BOUNDARY_LOADS = AssetSelection.groups("geography") - AssetSelection.kind("dbt")
# Every dbt layer, then the publish. The canonical model unions all cities and the
# marts compare them, so a refresh of any city rebuilds (incrementally) all of it,
# and publishes it when every blocking check passed. The audit views are what the
# GX checks read, so they are built in the same steps as the models they audit.
DBT_LAYERS = (
    AssetSelection.groups("reference", "staging", "quarantine", "intermediate", "snapshots", "marts", "audit")
    | DBT_GEOGRAPHY
)
PUBLISH = AssetSelection.groups("serving")

# The models over the days a run's window tags name (incrementally), their checks and
# the publish: what the daily refresh runs once every city's load of the day has ended.
# Without window tags a run rewrites every day the incremental models hold.
refresh_models_job = define_asset_job(
    name="refresh_models",
    selection=DBT_LAYERS | PUBLISH,
    description=(
        "Rebuild the dbt models over the days in the run's window (the daily refresh's day), check "
        "them and publish what passed."
    ),
)


# Every dbt layer, their checks and the publish, with no partition: dbt recreates
# every model from all of raw (`--full-refresh`; snapshots keep their history).
# `civic311 bootstrap` runs it after loading a city's exports; so may anyone after
# a change that invalidates the incremental models (a new model column, a taxonomy
# rule that reclassifies old requests).
rebuild_job = define_asset_job(
    name="rebuild",
    selection=DBT_LAYERS | PUBLISH,
    tags={FULL_REFRESH_TAG: "true"},
    description="Rebuild every dbt model from all of raw (a full refresh), check it and publish what passed.",
)


boundaries_job = define_asset_job(
    name="refresh_boundaries",
    selection=BOUNDARY_LOADS,
    description="Reload the boundary layers; the next refresh rejoins the layers whose version moved.",
)

publish_job = define_asset_job(
    name="publish",
    selection=PUBLISH,
    description="Publish the marts again, if the latest result of every blocking check passed.",
)

maps_job = define_asset_job(
    name="draw_maps",
    selection=AssetSelection.groups("maps"),
    description="Redraw every city's gap and hotspot maps from the marts and export the area marts.",
)

# Boundaries change a few times a decade: a weekly look is plenty. The maps are
# drawn after the daily refresh; they share its writer pool, so a refresh that
# runs late delays them instead of racing them.
boundaries_schedule = ScheduleDefinition(
    job=boundaries_job, cron_schedule="0 5 * * 1", name="weekly_boundaries_schedule"
)
maps_schedule = ScheduleDefinition(job=maps_job, cron_schedule="0 8 * * *", name="daily_maps_schedule")


def city_refresh_job(city: City) -> JobDefinition:
    """One city's raw tables, then every dbt layer: the models are incremental, so
    the run rewrites what the city's partition window changed. Its partitions are the
    city's (from its registry `first_day`); the daily refresh runs its raw tables alone."""
    raw = AssetSelection.groups("raw") & AssetSelection.tag("city", city.id)
    return define_asset_job(
        name=f"refresh_{city.id}",
        selection=raw | DBT_LAYERS | PUBLISH,
        description=f"Load {city.name}'s raw partition, check it, rebuild the models on it and publish.",
    )
