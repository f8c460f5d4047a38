"""serving/marts: the write-audit-publish step.

The models are written in the working warehouse and audited there by every
blocking check (dbt tests, GX suites, the raw checks). This asset then publishes
the marts to the serving file and the Parquet folder BI tools read
(orchestration/serving.py). Two gates stand before it:

- in a run, Dagster skips it when a blocking check upstream failed or a dbt step
  failed (a failing dbt test fails its `dbt build`);
- and it checks for itself that the latest result of every blocking check is not
  a failure, so a publish started on its own (from the UI, after a failed
  refresh) cannot serve what failed either. Maps use the same gate.
"""

from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from orchestration.redaction import redacted
from orchestration.resources import WAREHOUSE_POOL, holds_warehouse
from orchestration.serving import publish, published_dir, serving_path

SERVED = AssetKey(["serving", "marts"])


def failing_checks(instance: DagsterInstance, checks: Sequence[AssetCheckKey]) -> dict[str, str]:
    """The blocking checks whose latest result is an error-severity failure, with
    what each said. A check that never ran (a city not loaded yet) is not a failure."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(checks))
    failing = {}
    for key, record in latest.items():
        # A planned record (its run still going, or gone) has no evaluation yet.
        if record.status != AssetCheckExecutionRecordStatus.FAILED:
            continue
        evaluation = record.evaluation
        if evaluation is None or evaluation.severity != AssetCheckSeverity.ERROR:
            continue
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        failing[name] = evaluation.description or f"failed in run {record.run_id}"
    return failing


def audit(instance: DagsterInstance, checks: Sequence[AssetCheckKey], what: str) -> None:
    """Raise a Failure naming every failing blocking check, or return."""
    failing = failing_checks(instance, checks)
    if failing:
        listed = "\n".join(f"- {name}: {said}" for name, said in sorted(failing.items()))
        raise Failure(
            description=(
                f"{what} stopped: {len(failing)} blocking check(s) failed on the last run that "
                f"evaluated them, so the last publish stays as it was.\n{listed}\n"
                "Fix the data or the model, rerun the partition, then publish again."
            ),
            metadata={"failing_checks": MetadataValue.json(failing)},
        )


def build_publish_asset(
    warehouse: Path, marts: Sequence[AssetKey], gating_checks: Sequence[AssetCheckKey]
) -> AssetsDefinition:
    @asset(
        key=SERVED,
        group_name="serving",
        deps=list(marts),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "parquet"},
        description=(
            "The marts and dimensions that passed every blocking check, published for BI tools: "
            "a new serving file swapped in atomically ($CIVIC311_SERVING, default "
            "data/serving.duckdb), plus Parquet and GeoParquet under data/published/current "
            "(docs/bi.md)."
        ),
    )
    @redacted
    @holds_warehouse(warehouse)
    def served_marts(context: AssetExecutionContext) -> MaterializeResult:
        audit(context.instance, gating_checks, "Publishing")
        done = publish(warehouse, serving_path(warehouse), published_dir(warehouse), label=context.run_id)
        context.log.info(f"published {done.publish_id}: {len(done.rows)} tables to {done.serving}")
        return MaterializeResult(
            metadata={
                "publish_id": done.publish_id,
                "serving_file": MetadataValue.path(str(done.serving)),
                "parquet_dir": MetadataValue.path(str(done.parquet_dir)),
                "rows_by_table": MetadataValue.json(done.rows),
                "checks_audited": len(gating_checks),
            }
        )

    return served_marts
