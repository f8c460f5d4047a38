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

The sensors are stopped until started in the UI (Automation), as the daily refresh
is; each skips, saying why, while no subscriptions file exists.
"""

from datetime import datetime

from dagster import (
    AssetKey,
    Config,
    DefaultSensorStatus,
    EventLogEntry,
    OpExecutionContext,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    job,
    op,
    sensor,
)

from ingestion.pipeline import warehouse_path
from orchestration.alerts.run import FROM_WAREHOUSE, PUBLISHED_KINDS, run_alerts
from orchestration.alerts.store import alerts_db, alerts_db_path
from orchestration.alerts.subscriptions import KINDS, AlertsError, alerts_path, load_subscriptions

FACTS = AssetKey(["marts", "fct_service_requests"])
PUBLISH = AssetKey(["serving", "marts"])


class AlertsConfig(Config):
    """Which kinds of subscription to evaluate (none: only deliver what is pending), and
    the instant to evaluate at (ISO 8601 with an offset; default: now)."""

    kinds: list[str] = []
    now: str | None = None


@op(description="Evaluate the configured kinds of subscription; record what is new; deliver what is pending.")
def evaluate_and_deliver(context: OpExecutionContext, config: AlertsConfig) -> None:
    unknown = sorted(set(config.kinds) - set(KINDS))
    if unknown:
        raise AlertsError(f"kinds {unknown} are not subscription kinds; use {', '.join(KINDS)}")
    now = datetime.fromisoformat(config.now) if config.now else None
    report = run_alerts(config.kinds, warehouse_path(), now=now, say=context.log.info)
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


def _request(kinds: tuple[str, ...], run_key: str | None) -> RunRequest | SkipReason:
    try:
        subscriptions = load_subscriptions()
    except AlertsError as exc:
        return SkipReason(str(exc))
    if kinds and not subscriptions.of_kinds(kinds):
        return SkipReason(f"{alerts_path()} has no subscription of the kinds {', '.join(kinds)}")
    return RunRequest(
        run_key=run_key,
        run_config=RunConfig(ops={"evaluate_and_deliver": AlertsConfig(kinds=list(kinds))}),
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
    """Deliver again what a channel has not delivered yet."""
    path = alerts_db_path(warehouse_path())
    if not path.exists():
        return SkipReason(f"{path} does not exist yet: no alert has been sent")
    with alerts_db(path, write=False) as con:
        (pending,) = con.execute(
            "select count(*) from (select message_id, channel, arg_max(outcome, attempted_at) as latest "
            "from alerts.deliveries group by all) where latest = 'failed'"
        ).fetchone()
    if not pending:
        return SkipReason("every alert has been delivered")
    return _request((), None)
