"""Alerts, driven by the replay over the real NYC sample: a spike of new requests in one
ZIP on the day after the backfill comes in through the daily refresh. The sensors'
own run requests then launch the `alerts` job, on runs of their own:

- the fresh_requests subscription of that ZIP alerts once, through a webhook and an
  SMTP server (STARTTLS and a login) started here, listing exactly the new requests;
- the emerging_hotspot subscription alerts on the spike's area-week, from the
  published file, with its map attached to the email and linked from the webhook;
- a second evaluation sends nothing new, and `civic311 alerts list` shows both alerts
  delivered on both channels;
- a channel that is down is recorded failed, and the retry sensor's run delivers it
  once it is back, without sending it twice;
- a failed run alerts once, naming its failing check;
- a replica answering short fails the reconciliation with the portal's count, and the
  failed run alerts with that check;
- a city loaded longer ago than its cadence fails its freshness policy (Dagster's
  freshness daemon) and alerts once.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
import yaml
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    build_run_status_sensor_context,
    build_sensor_context,
)
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.freshness import FreshnessDaemon

from ingestion.registry import load_registry
from orchestration.alerts.delivery import BACKOFF_ENV
from orchestration.cli import main
from orchestration.definitions import build_definitions
from orchestration.launch import WORKSPACE, launch, launch_days
from tests.helpers.daily import run_daily_refresh
from tests.helpers.nyc_sample import BAD_DAY, serve_nyc_sample
from tests.helpers.receivers import smtp_receiver, subscribe, webhook_receiver
from tests.helpers.registry import write_registry
from tooling.replay import Fault, FaultPlan, ReplayServer

pytestmark = pytest.mark.integration

SPIKE_DAY = date(2012, 11, 22)
# The daily refresh of SPIKE_DAY runs the next morning; the alerts are evaluated then.
MORNING = datetime(2012, 11, 23, 6, tzinfo=UTC)
SPIKE = 12


def spike(feed: list[dict]) -> list[dict]:
    """SPIKE copies of the first located request with a ZIP, made on SPIKE_DAY under new keys."""
    model = next(r for r in feed if r.get("incident_zip") and r.get("latitude") and r.get("complaint_type"))
    return [
        {**model, "unique_key": f"9{number:08d}", "created_date": f"{SPIKE_DAY}T10:{number:02d}:00.000",
         "closed_date": None, "status": "Open"}
        for number in range(SPIKE)
    ]  # fmt: skip


def subscriptions(path, zip_code: str, mailbox) -> None:
    email = {
        "channel": "email",
        "to": ["desk@example.org"],
        "sender": "civic311@example.org",
        "smtp_host": "127.0.0.1",
        "smtp_port": mailbox.port,
        "username_env": "CIVIC311_TEST_SMTP_USER",
        "password_env": "CIVIC311_TEST_SMTP_PASSWORD",
        "ca_file": str(mailbox.ca_file),
    }
    webhook = {"channel": "webhook", "url_env": "CIVIC311_TEST_WEBHOOK"}
    document = {
        "subscriptions": [
            {"name": "zip_watch", "kind": "fresh_requests", "hours": 24, "cities": ["nyc"],
             "areas": [{"layer": "zip", "ids": [zip_code]}], "deliver": [webhook, email]},
            {"name": "hotspots", "kind": "emerging_hotspot", "cities": ["nyc"], "deliver": [webhook, email]},
        ]
    }  # fmt: skip
    path.write_text(yaml.safe_dump(document))


def sensor_runs(instance: DagsterInstance, *names: str) -> list:
    """The alerts runs the named sensors request now, launched with the instant pinned
    to the refresh's morning (the sample is of 2012)."""
    repository = build_definitions().get_repository_def()
    results = []
    for name in names:
        context = build_sensor_context(instance=instance, repository_def=repository)
        for request in repository.get_sensor_def(name).evaluate_tick(context).run_requests:
            config = request.run_config
            config["ops"]["evaluate_and_deliver"]["config"]["now"] = MORNING.isoformat()
            result = launch("alerts", run_config=config, tags=request.tags, instance=instance)
            assert result.success, name
            results.append(result)
    return results


def test_a_spike_alerts_once_by_webhook_and_email_with_its_map(
    nyc_sample_backfill, tmp_path, dagster_home, monkeypatch, capsys
):
    warehouse = nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    monkeypatch.setenv(BACKOFF_ENV, "0.01")
    instance = DagsterInstance.get()
    new = spike(nyc_sample_backfill.feed)
    zip_code = new[0]["incident_zip"]
    # The areas the hotspot is placed in: NYC's boundary layers that need no download.
    offline = [layer.name for layer in load_registry().city("nyc").boundaries if layer.loads_offline]
    loaded = launch(
        "refresh_boundaries",
        run_config={"ops": {"geography__boundaries": {"config": {"cities": ["nyc"], "layers": offline}}}},
        instance=instance,
    )
    assert loaded.success

    with webhook_receiver() as hook, smtp_receiver(tmp_path) as mailbox:
        monkeypatch.setenv("CIVIC311_TEST_WEBHOOK", hook.url)
        monkeypatch.setenv("CIVIC311_TEST_SMTP_USER", mailbox.user)
        monkeypatch.setenv("CIVIC311_TEST_SMTP_PASSWORD", mailbox.password)
        subscriptions(tmp_path / "alerts.yaml", zip_code, mailbox)
        monkeypatch.setenv("CIVIC311_ALERTS", str(tmp_path / "alerts.yaml"))
        with ReplayServer() as server:
            serve_nyc_sample(server, [*nyc_sample_backfill.feed, *new])
            monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
            refreshed = run_daily_refresh(instance, MORNING)
        assert all(result.success for _, result in refreshed)
        # The day reconciles: what the load holds is what the portal counts.
        passed, _, _, counted = check_result(instance, "raw/nyc/service_requests", "reconciled_with_source")
        assert passed and counted["source_count"] == counted["held_count"] >= SPIKE
        assert (counted["share"], counted["times_asked"]) == (1.0, 3)

        first = sensor_runs(instance, "fresh_request_alerts", "published_alerts")
        assert len(first) == 2
        documents = {doc["subscription"]: doc for doc in hook.received}
        assert len(hook.received) == 2 and set(documents) == {"zip_watch", "hotspots"}
        fresh = documents["zip_watch"]
        assert {item["request_id"] for item in fresh["items"]} == {r["unique_key"] for r in new}
        assert {item["zip"] for item in fresh["items"]} == {zip_code}
        hotspot = documents["hotspots"]
        assert hotspot["items"] and all(item["week"] == "2012-11-19" for item in hotspot["items"])
        assert max(item["requests"] for item in hotspot["items"]) >= SPIKE
        assert hotspot["map"].startswith("file://")
        mails = {mail["Subject"]: mail for mail in mailbox.messages}
        assert len(mailbox.messages) == 2 and mailbox.logins == ["alerts", "alerts"]
        (hotspot_mail,) = [mail for subject, mail in mails.items() if "hotspot" in subject]
        (png,) = list(hotspot_mail.iter_attachments())
        assert png.get_content_type() == "image/png" and png.get_content().startswith(b"\x89PNG")

        # The same evaluations again, and one from the command line: nothing new, nothing sent.
        assert len(sensor_runs(instance, "fresh_request_alerts", "published_alerts")) == 2
        assert main(["alerts", "run", "--now", MORNING.isoformat()]) == 0
        assert len(hook.received) == 2 and len(mailbox.messages) == 2

        # A channel down: recorded failed; the retry sensor's run delivers it later, once.
        # (The ZIP's requests are made new again by forgetting they were sent.)
        with duckdb_alerts(warehouse) as con:
            con.execute("delete from alerts.sent where subscription = 'zip_watch'")
        hook.failing = -1
        assert main(["alerts", "run", "--kind", "fresh_requests", "--now", MORNING.isoformat()]) == 1
        assert len(hook.received) == 2 and len(mailbox.messages) == 3  # the email went
        hook.failing = 0
        assert len(sensor_runs(instance, "alert_retries")) == 1
        assert len(hook.received) == 3 and len(mailbox.messages) == 3
        assert sensor_runs(instance, "alert_retries") == []

    capsys.readouterr()
    assert main(["alerts", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("zip_watch (fresh_requests, 12 items)") == 2
    assert "hotspots (emerging_hotspot" in listed
    assert listed.count("email:desk@example.org delivered; webhook:CIVIC311_TEST_WEBHOOK delivered") == 3
    assert "failed" not in listed
    assert "T0K3N" not in listed


def duckdb_alerts(warehouse):
    from orchestration.alerts.store import alerts_db, alerts_db_path

    return alerts_db(alerts_db_path(warehouse), write=True)


def failure_alert(instance: DagsterInstance, run_id: str) -> None:
    """The run_failure_alerts sensor's request for the failed run, launched."""
    repository = build_definitions().get_repository_def()
    (failure,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        "run_failure_alerts",
        failure.dagster_event,
        instance,
        instance.get_run_by_id(run_id),
        repository_def=repository,
    ).for_run_failure()
    request = repository.get_sensor_def("run_failure_alerts")(context)
    assert launch("alerts", run_config=request.run_config, tags=request.tags, instance=instance).success


def test_a_failed_run_alerts_once_with_its_failing_check(
    nyc_sample_backfill, tmp_path, dagster_home, monkeypatch
):
    """The sample's bad day (requests dated in 2031) fails the plausibility check: the
    run-failure sensor's run sends one alert naming the job, the day, the failed step
    and the check with what it guards."""
    nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=400)))
    instance = DagsterInstance.get()
    with webhook_receiver() as hook:
        subscribe(tmp_path, monkeypatch, hook, "run_failure", ["nyc"])
        with ReplayServer() as server:
            serve_nyc_sample(server, nyc_sample_backfill.feed)
            monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
            bad = launch_days("refresh_nyc", BAD_DAY, BAD_DAY, instance=instance)
        assert not bad.success
        for _ in range(2):  # the sensor's request, twice: one alert
            failure_alert(instance, bad.run_id)
    (document,) = hook.received
    (item,) = document["items"]
    assert (item["job"], item["partition"], item["city_id"]) == ("refresh_nyc", BAD_DAY.isoformat(), "nyc")
    assert item["checks"] == [
        {
            "check": "intermediate/int_service_requests:assert_requests_are_plausible",
            "description": item["checks"][0]["description"],
        }
    ]
    assert item["checks"][0]["description"]  # what the check guards, from its definition
    assert item["steps"]
    assert document["title"] == f"civic311 run_failure: run of refresh_nyc failed ({BAD_DAY})"
    assert any(
        line.startswith("failed check intermediate/int_service_requests") for line in document["lines"]
    )


def check_result(instance: DagsterInstance, asset: str, name: str):
    """The latest evaluation of a check: (passed, severity, description, metadata values)."""
    key = AssetCheckKey(AssetKey(asset.split("/")), name)
    (record,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    evaluation = record.event.dagster_event.event_specific_data
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    return evaluation.passed, evaluation.severity, evaluation.description, metadata


def test_a_replica_answering_short_fails_reconciliation_and_alerts(
    nyc_sample_backfill, tmp_path, dagster_home, monkeypatch
):
    """The spike day is refreshed from a replica five changes behind: the load misses
    five of the day's requests. The portal's count says what it holds; the day is long
    past NYC's lookback, so reconciliation fails blocking below 98%, the run fails, and
    the run-failure alert names the check."""
    nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml")))
    instance = DagsterInstance.get()
    feed = [*nyc_sample_backfill.feed, *spike(nyc_sample_backfill.feed)]
    # NYC's current dataset answers empty, and an empty page is asked for twice; then
    # the one page of the frozen dataset comes from the lagging replica. The counts that
    # follow come from up-to-date replicas.
    plan = FaultPlan(queue=[Fault(), Fault(), Fault(lagging=5)])
    with webhook_receiver() as hook:
        subscribe(tmp_path, monkeypatch, hook, "run_failure", ["nyc"])
        with ReplayServer(faults=plan) as server:
            serve_nyc_sample(server, feed)
            monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
            short = launch_days("refresh_nyc", SPIKE_DAY, SPIKE_DAY, instance=instance)
            counts = [r for r in server.requests if "$group" in r.query]
        assert not short.success and plan.queue == []
        assert len(counts) == 2  # both datasets, once: short at the first answer
        passed, severity, description, metadata = check_result(
            instance, "raw/nyc/service_requests", "reconciled_with_source"
        )
        day = sum(1 for r in feed if r["created_date"].startswith(SPIKE_DAY.isoformat()))
        assert (passed, severity) == (False, AssetCheckSeverity.ERROR)
        # The day and the lookback's three before it, which the load read again.
        assert metadata["spans_compared"] == 4 and metadata["spans_short"] == 1
        assert metadata["source_count"] - metadata["held_count"] == 5 and metadata["times_asked"] == 1
        (short_day,) = metadata["short_spans"]
        share = round((day - 5) / day, 4)
        assert short_day == {"span": SPIKE_DAY.isoformat(), "portal": day, "held": day - 5, "share": share}
        assert f"holds {day - 5} of {day}" in description
        assert f"civic311 refresh --city nyc --from {SPIKE_DAY} --to {SPIKE_DAY}" in description

        failure_alert(instance, short.run_id)
    (document,) = hook.received
    (item,) = document["items"]
    assert item["partition"] == SPIKE_DAY.isoformat()
    (check,) = item["checks"]
    assert check == {"check": "raw/nyc/service_requests:reconciled_with_source", "description": description}


def evaluate_freshness(instance: DagsterInstance) -> None:
    """One pass of Dagster's freshness daemon over the workspace's code location (as
    `dagster dev` runs it every 30 s), in this process."""
    with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(WORKSPACE)])) as context:
        # The daemon's iteration is a generator: it does its work as it is consumed.
        list(FreshnessDaemon().run_iteration(context))


def test_a_stale_city_fails_its_freshness_policy_and_alerts_once(
    nyc_sample_backfill, tmp_path, dagster_home, monkeypatch
):
    """NYC's raw asset, loaded by the backfill, with a cadence shorter than the time
    since: Dagster's freshness daemon fails its freshness policy, and the freshness
    sensor's run alerts once, naming the asset, its last load and the cadence; the same
    breach seen again sends nothing new."""
    nyc_sample_backfill.restore(tmp_path / "warehouse", dagster_home, monkeypatch)
    # A city expected every minute (Dagster's shortest window), last loaded over a minute ago.
    registry = write_registry(tmp_path / "cities.yaml", page_size=400, cadence_hours=1 / 60)
    monkeypatch.setenv("CIVIC311_CITIES", str(registry))
    instance = DagsterInstance.get()
    raw = AssetKey(["raw", "nyc", "service_requests"])
    loaded = instance.get_latest_materialization_event(raw).timestamp
    time.sleep(max(0.0, loaded + 61 - time.time()))
    with webhook_receiver() as hook:
        subscribe(tmp_path, monkeypatch, hook, "freshness", ["nyc"])
        assert sensor_runs(instance, "freshness_alerts") == []  # not evaluated yet: no state
        evaluate_freshness(instance)
        assert instance.get_freshness_state_records([raw])[raw].freshness_state == FreshnessState.FAIL
        assert len(sensor_runs(instance, "freshness_alerts")) == 1
        assert len(sensor_runs(instance, "freshness_alerts")) == 1  # the same breach: nothing new sent
    (document,) = hook.received
    (item,) = document["items"]
    assert item["asset"] == "raw/nyc/service_requests" and item["cadence_hours"] == pytest.approx(1 / 60)
    assert item["last_loaded"] is not None
    assert document["title"] == "civic311 freshness: nyc is stale (1 raw asset)"
