"""The `daily_refresh` sensor: from 06:00 UTC, one load of the day before for each
city whose feed has begun, then, once every load has ended, the models' run over
that day, once. What it has launched it reads from the instance's runs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, TimeWindow, build_sensor_context

from ingestion.registry import load_registry
from orchestration.daily import DAILY_TAG, MODELS_JOB, daily_requests, day_to_refresh, raw_keys_of
from orchestration.definitions import build_definitions
from orchestration.partitions import WINDOW_FIRST_TAG, WINDOW_LAST_TAG, run_window

NOW = datetime(2025, 6, 2, 6, 30, tzinfo=UTC)
DAY = date(2025, 6, 1)


@pytest.fixture(scope="module")
def location():
    registry = load_registry()
    defs = build_definitions(registry)
    return registry, defs, raw_keys_of(defs.get_repository_def(), registry)


def record(instance: DagsterInstance, job_name: str, status: DagsterRunStatus) -> DagsterRun:
    run = DagsterRun(job_name=job_name, tags={DAILY_TAG: DAY.isoformat()}, status=status)
    instance.add_run(run)
    return run


def test_the_day_is_the_one_before_from_six_utc():
    assert day_to_refresh(datetime(2025, 6, 2, 5, 59, tzinfo=UTC)) == date(2025, 5, 31)
    assert day_to_refresh(datetime(2025, 6, 2, 6, 0, tzinfo=UTC)) == DAY
    assert day_to_refresh(datetime(2025, 6, 2, 23, 0, tzinfo=UTC)) == DAY


def test_each_city_loads_then_the_models_run_once(location):
    registry, _, raw_keys = location
    instance = DagsterInstance.ephemeral()
    loads = daily_requests(instance, registry, raw_keys, NOW)
    begun = sorted(city.id for city in registry.cities if city.first_day <= DAY)
    assert sorted(request.job_name.removeprefix("refresh_") for request in loads) == begun
    # Jersey City's feed begins in 2026: no partition of 2025 to load.
    assert "jersey_city" in {city.id for city in registry.cities} and "jersey_city" not in begun
    for request in loads:
        city = request.job_name.removeprefix("refresh_")
        assert request.partition_key == DAY.isoformat()
        assert request.asset_selection == raw_keys[city] and all(
            k.path[:2] == ["raw", city] for k in raw_keys[city]
        )

    runs = [record(instance, request.job_name, DagsterRunStatus.STARTED) for request in loads]
    assert daily_requests(instance, registry, raw_keys, NOW) == []  # loads still running
    for number, run in enumerate(runs):
        # The loads end; one city's failure does not hold back the others' models.
        instance.delete_run(run.run_id)
        record(instance, run.job_name, DagsterRunStatus.FAILURE if number == 0 else DagsterRunStatus.SUCCESS)

    (models,) = daily_requests(instance, registry, raw_keys, NOW)
    assert models.job_name == MODELS_JOB and models.partition_key is None
    assert (models.tags[WINDOW_FIRST_TAG], models.tags[WINDOW_LAST_TAG]) == ("2025-06-01", "2025-06-01")
    assert run_window(models.tags) == TimeWindow(
        datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)
    )

    record(instance, MODELS_JOB, DagsterRunStatus.STARTED)
    assert daily_requests(instance, registry, raw_keys, NOW) == []


def test_the_sensor_requests_yesterday_through_dagster(location):
    registry, defs, _ = location
    repository = defs.get_repository_def()
    sensor = repository.get_sensor_def("daily_refresh")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, repository_def=repository)
        requests = sensor.evaluate_tick(context).run_requests
    day = day_to_refresh(datetime.now(UTC))
    assert {request.partition_key for request in requests} == {day.isoformat()}
    assert {request.job_name for request in requests} <= set(repository.job_names)
    assert len(requests) == sum(city.first_day <= day for city in registry.cities)
