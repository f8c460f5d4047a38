"""The daily refresh: every city's raw partition of the day before, then one run of
the models over that day.

Each city's raw partitions start on its registry `first_day`, and Dagster runs one
partitions definition per run, so one run cannot load every city. The `daily_refresh`
sensor does it in two steps, from 06:00 UTC on, for the UTC day that ended before:

1. One run per city of its `refresh_<city>` job, raw assets (and their checks) only,
   for that day's partition. A city whose feed starts later is left out.
2. Once every one of those runs has ended, one `refresh_models` run: the dbt models
   over the day's window, their checks and the publish. Ended, not succeeded: a
   city whose portal is down must not hold back the others. Its failed run is in the
   UI, its rows are not in the window, and its next load reads them through the
   lookback. A raw check that failed still stops the publish, which audits the
   latest result of every blocking check.

Every run carries the tag `civic311/daily_refresh` (the day), so the sensor reads what
it has launched from the instance: a tick launches only what is missing, and never a
run twice, whether or not the daemon's run keys would have caught it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RepositoryDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.tags import PARTITION_NAME_TAG

from ingestion.registry import Registry
from orchestration.partitions import window_tags

DAILY_TAG = "civic311/daily_refresh"
MODELS_JOB = "refresh_models"
# The hour (UTC) from which the day before is refreshed: late enough for the portals'
# nightly updates of the day.
TICK_HOUR = 6


def day_to_refresh(now: datetime) -> date:
    """The UTC day the daily refresh loads at `now`: the day before, from 06:00 UTC."""
    return (now.astimezone(UTC) - timedelta(hours=TICK_HOUR)).date() - timedelta(days=1)


def city_job(city_id: str) -> str:
    return f"refresh_{city_id}"


def daily_requests(
    instance: DagsterInstance,
    registry: Registry,
    raw_keys: dict[str, Sequence[AssetKey]],
    now: datetime,
) -> list[RunRequest]:
    """The runs the daily refresh still has to launch at `now`: each city's load of the
    day that has none yet; else, when every load has ended, the models' run, once.
    `raw_keys` are each city's raw assets (its job's, by city id)."""
    day = day_to_refresh(now)
    tags = {DAILY_TAG: day.isoformat()}
    # A job's runs of the day: its first, and any re-execution from the UI (which
    # keeps the tag).
    launched: dict[str, list[DagsterRun]] = defaultdict(list)
    for record in instance.get_run_records(RunsFilter(tags=tags)):
        launched[record.dagster_run.job_name].append(record.dagster_run)
    cities = [city for city in registry.cities if city.first_day <= day]
    loads = [
        RunRequest(
            run_key=f"{day}:{city.id}",
            job_name=city_job(city.id),
            asset_selection=list(raw_keys[city.id]),
            partition_key=day.isoformat(),
            tags=tags,
        )
        for city in cities
        if city_job(city.id) not in launched
    ]
    if loads:
        return loads
    ended = all(run.is_finished for city in cities for run in launched[city_job(city.id)])
    if MODELS_JOB in launched or not ended:
        return []
    return [RunRequest(run_key=f"{day}:models", job_name=MODELS_JOB, tags={**tags, **window_tags(day, day)})]


def request_tags(request: RunRequest) -> dict[str, str]:
    """A run request's tags as its run carries them: with its partition."""
    partition = {PARTITION_NAME_TAG: request.partition_key} if request.partition_key else {}
    return {**request.tags, **partition}


def raw_keys_of(repository: RepositoryDefinition, registry: Registry) -> dict[str, list[AssetKey]]:
    """Each city's raw assets, by city id: those its refresh job materializes."""
    return {
        city.id: sorted(
            key
            for key in repository.get_job(city_job(city.id)).asset_layer.executable_asset_keys
            if key.path[0] == "raw"
        )
        for city in registry.cities
    }


def build_daily_refresh_sensor(
    registry: Registry,
    city_jobs: Sequence[UnresolvedAssetJobDefinition],
    models_job: UnresolvedAssetJobDefinition,
) -> SensorDefinition:
    """The `daily_refresh` sensor over the registry's cities and their refresh jobs.
    Stopped until someone starts it (in the UI's Automation page), as a schedule is."""

    @sensor(
        name="daily_refresh",
        jobs=[*city_jobs, models_job],
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.STOPPED,
    )
    def daily_refresh(context: SensorEvaluationContext):
        """From 06:00 UTC: load the day before for every city (a run each), then, when
        every load has ended, rebuild the models over that day, check them and publish."""
        now = datetime.now(UTC)
        raw_keys = raw_keys_of(context.repository_def, registry)
        requests = daily_requests(context.instance, registry, raw_keys, now)
        if not requests:
            return SkipReason(
                f"the daily refresh of {day_to_refresh(now)} is launched: its runs are running or have ended"
            )
        return requests

    return daily_refresh
