"""A city with one dataset per year (Los Angeles) must not go stale on 1 January: once
its year has begun with no dataset mapped, the daily `dataset_rollover_alerts` sensor's
run asks the portal's catalog (the replay's Discovery API) and alerts, naming the
candidate dataset it found."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, build_sensor_context

from ingestion.registry import load_registry
from orchestration.cli import main
from orchestration.definitions import build_definitions
from orchestration.launch import launch
from tests.helpers.receivers import subscribe, webhook_receiver
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

NAME = "MyLA311 Service Request Data {}"
CANDIDATE = "k7mc-2f9q"


def rollover_runs(instance: DagsterInstance, now: datetime) -> int:
    """The sensor's request launched as the daemon would, evaluated as at `now`."""
    repository = build_definitions().get_repository_def()
    context = build_sensor_context(instance=instance, repository_def=repository)
    requests = repository.get_sensor_def("dataset_rollover_alerts").evaluate_tick(context).run_requests
    for request in requests:
        config = request.run_config
        config["ops"]["evaluate_and_deliver"]["config"]["now"] = now.isoformat()
        assert launch("alerts", run_config=config, tags=request.tags, instance=instance).success
    return len(requests)


def test_a_year_with_no_mapped_la_dataset_alerts_naming_the_candidate(
    warehouse, tmp_path, monkeypatch, capsys
):
    la = load_registry().city("la")
    mapped = la.source.datasets_by_year
    last = max(mapped)
    instance = DagsterInstance.get()
    with webhook_receiver() as hook, ReplayServer() as server:
        for year, dataset in mapped.items():
            server.add_dataset(dataset, [], prefix="/la", name=NAME.format(year))
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        subscribe(tmp_path, monkeypatch, hook, "dataset_rollover", ["la"])

        # New Year's Eve in Los Angeles, though 1 January in UTC: nothing to say yet.
        eve = datetime(last + 1, 1, 1, 7, tzinfo=UTC)
        assert rollover_runs(instance, eve) == 1 and hook.received == []

        # The year has begun, and the portal has not published its dataset yet.
        morning = datetime(last + 1, 1, 1, 12, tzinfo=UTC)
        assert rollover_runs(instance, morning) == 1
        (waiting,) = hook.received
        assert waiting["title"] == f"civic311 dataset_rollover: la has no dataset mapped for {last + 1}"
        assert f"no dataset named {NAME.format(last + 1)!r}" in " ".join(waiting["lines"])

        # It appears, beside one of a similar name: the next day's alert names it.
        server.add_dataset(CANDIDATE, [], prefix="/la", name=NAME.format(last + 1))
        server.add_dataset("zz99-aaaa", [], prefix="/la", name=NAME.format(last + 1) + " (draft)")
        next_day = datetime(last + 1, 1, 2, 12, tzinfo=UTC)
        assert rollover_runs(instance, next_day) == 1
        assert len(hook.received) == 2
        (item,) = hook.received[1]["items"]
        assert item["candidates"] == [{"id": CANDIDATE, "name": NAME.format(last + 1)}]
        assert f"add `{last + 1}: {CANDIDATE}` under source.datasets_by_year" in " ".join(
            hook.received[1]["lines"]
        )
        # Asked again from the command line: the same candidate, nothing new.
        assert main(["alerts", "run", "--kind", "dataset_rollover", "--now", next_day.isoformat()]) == 0
        assert len(hook.received) == 2
        catalog = [r for r in server.requests if r.path == "/la/api/catalog/v1"]
        assert {r.query.get("domains") for r in catalog} == {"data.lacity.org"}

    capsys.readouterr()
    assert main(["alerts", "list"]) == 0
    assert capsys.readouterr().out.count("dataset_rollover (dataset_rollover, 1 item)") == 2
