"""The daily refresh as the `daily_refresh` sensor runs it at a given moment: its
requests launched from the workspace's code location, one after another, until it
asks for nothing more (each city's load, then the models' run)."""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, JobExecutionResult, RunRequest

from ingestion.registry import load_registry
from orchestration.daily import daily_requests, raw_keys_of, request_tags
from orchestration.definitions import build_definitions
from orchestration.launch import code_location, launch


def run_daily_refresh(
    instance: DagsterInstance, now: datetime
) -> list[tuple[RunRequest, JobExecutionResult]]:
    """Every run the sensor requests at `now`, in order, with its result."""
    registry = load_registry()
    raw_keys = raw_keys_of(build_definitions(registry).get_repository_def(), registry)
    done = []
    with code_location(instance) as location:
        while requests := daily_requests(instance, registry, raw_keys, now):
            for request in requests:
                result = launch(
                    request.job_name,
                    tags=request_tags(request),
                    asset_selection=request.asset_selection,
                    instance=instance,
                    location=location,
                )
                done.append((request, result))
    return done
