"""The `alerts` job and the sensors that launch it: alerts run on runs of their own,
never inside a refresh, so a slow or failing channel never holds up the data.

- `fresh_request_alerts`: when a refresh has built `marts/fct_service_requests` in the
  working warehouse (its raw loads are then canonical, placed and categorised), the
  `fresh_requests` subscriptions, before the marts' checks and the publish.
- `published_alerts`: after each publish (`serving/marts`, which happens only when
  every blocking check passed), the emerging_hotspot, gap_change and sla_breach
  subscriptions, on the published file.
- `alert_retries`: every 10 minutes, when a message has a channel that has not
  delivered it, a run that delivers it again.
- `run_failure_alerts`: one run per failed run (not the alerts' own).
- `freshness_alerts`: the raw assets whose freshness policy Dagster's freshness
  daemon found failing.
- `dataset_rollover_alerts`: once a day, the cities with a dataset per year whose
  current year has begun unmapped, as each portal's catalog shows it.

The sensors are stopped until started in the UI (Automation), as the daily refresh
is; each skips, saying why, while no subscriptions file exists.
"""

from datetime import UTC, datetime
from functools import cache

from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    Config,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    EventLogEntry,
    OpExecutionContext,
    RunConfig,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    job,
    op,
    run_failure_sensor,
    sensor,
)
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from ingestion.pipeline import warehouse_path
from ingestion.redact import redact
from ingestion.registry import load_registry
from orchestration.alerts.delivery import channel_id
from orchestration.alerts.evaluate import Found
from orchestration.alerts.run import FROM_WAREHOUSE, PORTAL_KINDS, PUBLISHED_KINDS, run_alerts
from orchestration.alerts.store import Item, alerts_db, alerts_db_path, undelivered
from orchestration.alerts.subscriptions import (
    KINDS,
    AlertsError,
    Subscriptions,
    alerts_path,
    load_subscriptions,
)

FACTS = AssetKey(["marts", "fct_service_requests"])
PUBLISH = AssetKey(["serving", "marts"])


class AlertsConfig(Config):
    """Which kinds of subscription to evaluate (none: only deliver what is pending), and
    the instant to evaluate at (ISO 8601 with an offset; default: now)."""

    kinds: list[str] = []
    now: str | None = None
    # run_failure: the failed run to alert about.
    failed_run: str | None = None
    # freshness: the raw assets failing their freshness policy, and since when.
    stale: list[dict] = []


@op(description="Evaluate the configured kinds of subscription; record what is new; deliver what is pending.")
def evaluate_and_deliver(context: OpExecutionContext, config: AlertsConfig) -> None:
    unknown = sorted(set(config.kinds) - set(KINDS))
    if unknown:
        raise AlertsError(f"kinds {unknown} are not subscription kinds; use {', '.join(KINDS)}")
    now = datetime.fromisoformat(config.now) if config.now else None
    subscriptions = load_subscriptions()
    found = failed_run_found(context.instance, config.failed_run, subscriptions) if config.failed_run else []
    found += stale_found(context.instance, config.stale, subscriptions) if config.stale else []
    report = run_alerts(
        config.kinds,
        warehouse_path(),
        now=now,
        subscriptions=subscriptions,
        say=context.log.info,
        found=found,
    )
    for message in report.messages:
        context.log.info(f"new alert {message.message_id}: {message.title}")
    for message, outcome in report.failed:
        context.log.warning(
            f"alert {message.message_id} not delivered to {outcome.channel} after {outcome.attempts} "
            f"attempts: {outcome.error}; the next evaluation tries again"
        )


@job(
    name="alerts",
    description="Evaluate alert subscriptions and deliver the alerts (launched by the alert sensors).",
)
def alerts_job() -> None:
    evaluate_and_deliver()


def _request(kinds: tuple[str, ...], run_key: str | None, **config: object) -> RunRequest | SkipReason:
    """An alerts run of `kinds` (with the op's other `config`), or why there is none."""
    try:
        subscriptions = load_subscriptions()
    except AlertsError as exc:
        return SkipReason(str(exc))
    if kinds and not subscriptions.of_kinds(kinds):
        return SkipReason(f"{alerts_path()} has no subscription of the kinds {', '.join(kinds)}")
    return RunRequest(
        run_key=run_key,
        run_config=RunConfig(ops={"evaluate_and_deliver": AlertsConfig(kinds=list(kinds), **config)}),
        tags={"civic311/alerts": ",".join(kinds) or "retry"},
    )


@asset_sensor(
    asset_key=FACTS, job=alerts_job, name="fresh_request_alerts", default_status=DefaultSensorStatus.STOPPED
)
def fresh_request_alerts(context: SensorEvaluationContext, event: EventLogEntry):
    """After a refresh built the facts: the fresh_requests subscriptions."""
    return _request(FROM_WAREHOUSE, f"fresh:{event.run_id}")


@asset_sensor(
    asset_key=PUBLISH, job=alerts_job, name="published_alerts", default_status=DefaultSensorStatus.STOPPED
)
def published_alerts(context: SensorEvaluationContext, event: EventLogEntry):
    """After a publish: the subscriptions on published data."""
    return _request(PUBLISHED_KINDS, f"published:{event.run_id}")


@sensor(
    job=alerts_job,
    name="alert_retries",
    minimum_interval_seconds=600,
    default_status=DefaultSensorStatus.STOPPED,
)
def alert_retries(context: SensorEvaluationContext):
    """Deliver again what a channel of its subscription has not delivered yet (a channel
    since removed from the file is not waited for)."""
    path = alerts_db_path(warehouse_path())
    if not path.exists():
        return SkipReason(f"{path} does not exist yet: no alert has been sent")
    try:
        subscriptions = load_subscriptions()
    except AlertsError as exc:
        return SkipReason(str(exc))
    with alerts_db(path, write=False) as con:
        pending = sum(
            len(undelivered(con, sub.name, [channel_id(channel) for channel in sub.deliver]))
            for sub in subscriptions.subscriptions
        )
    if not pending:
        return SkipReason("every alert has been delivered")
    return _request((), None)


def failed_run_found(instance: DagsterInstance, run_id: str, subscriptions: Subscriptions) -> list[Found]:
    """The failed run as one item for each run_failure subscription it concerns: a
    city's refresh concerns that city's; any other run (the models, the publish)
    concerns every city's. The item names the job, the partition, the failed steps and
    the failing blocking checks with what each guards."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return []
    city = run.job_name.removeprefix("refresh_") if run.job_name.startswith("refresh_") else None
    city = None if city == "models" else city
    events = instance.all_logs(
        run_id,
        of_type={
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.RUN_FAILURE,
        },
    )
    steps, checks, error = [], [], None
    described = cache(_check_descriptions)
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_FAILURE:
            steps.append(event.step_key)
            failure = event.step_failure_data.error
            error = error or (failure.message.strip().splitlines()[0][:300] if failure else None)
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
                checks.append(
                    {
                        "check": f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
                        "description": evaluation.description
                        or described().get(AssetCheckKey(evaluation.asset_key, evaluation.check_name)),
                    }
                )
    tags = run.tags
    first, last = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    partition = tags.get(PARTITION_NAME_TAG) or (first if first == last else f"{first} to {last}")
    payload = {
        "run_id": run_id,
        "job": run.job_name,
        "city_id": city,
        "partition": partition,
        "steps": steps,
        "checks": checks,
        "error": redact(error) if error else None,
    }
    found = []
    for sub in subscriptions.of_kinds(["run_failure"]):
        if city is None or city in sub.cities:
            found.append(Found(sub, city or "all", [Item(run_id, city or "all", payload)]))
    return found


def _check_descriptions() -> dict[AssetCheckKey, str | None]:
    """What each check of the code location guards, from its definition: for a failed
    result that said nothing (built once per failed run, when needed)."""
    from orchestration.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    return {key: graph.get(key).description for key in graph.asset_check_keys}


@run_failure_sensor(
    name="run_failure_alerts",
    request_job=alerts_job,
    default_status=DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=30,
)
def run_failure_alerts(context: RunFailureSensorContext):
    """One alert per failed run, on a run of its own; not for the alerts' own runs."""
    if context.dagster_run.job_name == "alerts":
        return SkipReason("an alerts run failed: its own failure is not alerted (its retries are)")
    run_id = context.dagster_run.run_id
    return _request(("run_failure",), f"failure:{run_id}", failed_run=run_id)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def stale_found(instance: DagsterInstance, stale: list[dict], subscriptions: Subscriptions) -> list[Found]:
    """The raw assets failing their freshness policy, as one item each per breach (the
    instant it began), for the freshness subscriptions of their city."""
    registry = load_registry()
    by_city: dict[str, list[Item]] = {}
    for entry in stale:
        key = AssetKey.from_user_string(entry["asset"])
        city = registry.city(key.path[1])
        latest = instance.get_latest_materialization_event(key)
        payload = {
            "asset": entry["asset"],
            "city_id": city.id,
            "since": entry["since"],
            "last_loaded": _utc(latest.timestamp) if latest else None,
            "cadence_hours": city.source.cadence_hours,
        }
        by_city.setdefault(city.id, []).append(Item(f"{entry['asset']}:{entry['since']}", city.id, payload))
    return [
        Found(sub, city_id, items)
        for sub in subscriptions.of_kinds(["freshness"])
        for city_id, items in by_city.items()
        if city_id in sub.cities
    ]


@sensor(
    job=alerts_job,
    name="freshness_alerts",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
)
def freshness_alerts(context: SensorEvaluationContext):
    """The raw assets whose freshness policy fails (Dagster's freshness daemon evaluates
    them): one alerts run per breach."""
    keys = [
        node.key
        for node in context.repository_def.asset_graph.asset_nodes
        if node.key.path[0] == "raw" and node.freshness_policy is not None
    ]
    records = context.instance.get_freshness_state_records(keys)
    stale = sorted(
        (
            {"asset": key.to_user_string(), "since": record.updated_at.isoformat(timespec="seconds")}
            for key, record in records.items()
            if record.freshness_state == FreshnessState.FAIL
        ),
        key=lambda entry: entry["asset"],
    )
    if not stale:
        return SkipReason(
            f"every raw asset with a freshness policy ({len(keys)}) is fresh or not evaluated yet"
        )
    breaches = ",".join(f"{entry['asset']}@{entry['since']}" for entry in stale)
    return _request(("freshness",), f"stale:{breaches}", stale=stale)


@sensor(
    job=alerts_job,
    name="dataset_rollover_alerts",
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.STOPPED,
)
def dataset_rollover_alerts(context: SensorEvaluationContext):
    """Once a day: the cities with a dataset per year whose current year has begun with
    no dataset mapped (asked of each portal's catalog)."""
    return _request(PORTAL_KINDS, f"rollover:{datetime.now(UTC):%Y-%m-%d}")
