"""The checks of one layer run as one Dagster step.

A check of its own is a step of its own, and each step pays a start-up (with the
multiprocess executor, a process importing the code location; with GX, GX's own).
So the checks are grouped by the layer they guard, each group one multi-asset check
that evaluates its checks one after the other and reports each as its own Dagster
check result, with its own blocking flag:

    raw_checks         on every city's raw/<city>/service_requests: its keys
                       (source_ids_present_and_unique), its protocol's GX suite, its
                       reconciliation with the portal's counts (reconciled_with_source,
                       Socrata and SeeClickFix) and its freshness (a warning)
    canonical_checks   on intermediate/int_service_requests: its GX suite and the
                       taxonomy gate; they decide whether dbt's second step runs
    mart_checks        the GX suite of every fact and mart, on its audit view

A run that selects part of a layer (one city's refresh) evaluates that part. A
blocking check that fails fails the step after every check of the step reported,
so one bad city does not hide what the others' checks found.

The checks are not partitioned. Each reads the window of the run's raw partitions
(orchestration.partitions.window_of_run, an asset backfill's days in its run of the
models), or every row in a run without partitions, and records it in its metadata,
with the seconds its evaluation took (`seconds`).

A window is enough only when every row outside it was validated before. So a check
of a dbt model (the canonical and mart layers) reads every row, whatever the run's
window, when its last result in another run failed, when it has none, or when a run
that did not check the model wrote it since (`why_every_row`). The raw checks keep
their window: a raw row is never rebuilt, and one bad row would otherwise block its
city for good.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetRecordsFilter,
    MetadataValue,
    multi_asset_check,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from ingestion.registry import Registry
from orchestration.partitions import EVERYTHING, window_of_run
from orchestration.redaction import redacted
from orchestration.resources import WAREHOUSE_POOL, holds_warehouse


@dataclass(frozen=True)
class Check:
    """One check of a layer: its spec, and its evaluation over the window [start, end).
    A check that is not `windowed` reads what it reads whatever the window."""

    spec: AssetCheckSpec
    evaluate: Callable[[datetime, datetime], AssetCheckResult]
    windowed: bool = True

    @property
    def defined_in(self) -> str:
        """The file that defines the check, e.g. orchestration/checks/raw.py."""
        return self.evaluate.__module__.replace(".", "/") + ".py"

    def spec_with_source(self) -> AssetCheckSpec:
        """The spec, its metadata naming the file that defines the check (shown in the UI)."""
        spec = self.spec
        return AssetCheckSpec(
            spec.name,
            asset=spec.asset_key,
            description=spec.description,
            blocking=spec.blocking,
            metadata={**spec.metadata, "defined_in": self.defined_in},
        )


def why_every_row(context: AssetCheckExecutionContext, key: AssetCheckKey) -> str | None:
    """Why the check must read every row in this run although the run has a window,
    or None when the window is enough: its last result (in another run) passed, and
    no run but that one and this one wrote its asset since."""
    done = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
    history = context.instance.event_log_storage.get_asset_check_execution_history(key, limit=5, status=done)
    last = next((record for record in history if record.run_id != context.run.run_id), None)
    if last is None:
        return "it has no earlier result"
    if last.status == AssetCheckExecutionRecordStatus.FAILED:
        return f"its last result (run {last.run_id[:8]}) failed"
    checked_runs = {last.run_id, context.run.run_id}
    evaluated_at = last.event.timestamp
    cursor = None
    while True:
        # the storage may keep whole seconds: ask from a second before, compare exactly
        written = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key.asset_key, after_timestamp=evaluated_at - 1),
            limit=100,
            cursor=cursor,
            ascending=True,
        )
        for record in written.records:
            if record.timestamp > evaluated_at and record.run_id not in checked_runs:
                return f"run {record.run_id[:8]} wrote {key.asset_key.to_user_string()} without this check"
        if not written.has_more:
            return None
        cursor = written.cursor


def layer_checks(
    name: str,
    description: str,
    checks: Sequence[Check],
    warehouse: Path,
    *,
    windowed_after_check: bool = False,
) -> AssetChecksDefinition:
    """One step evaluating `checks` (those the run selected) under the warehouse lock.
    With `windowed_after_check`, a check reads the run's window only when `why_every_row`
    finds no reason to read every row."""
    by_key = {check.spec.key: check for check in checks}

    @multi_asset_check(
        name=name,
        description=description,
        specs=[check.spec_with_source() for check in checks],
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    @redacted
    @holds_warehouse(warehouse)
    def _checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        window = window_of_run(context)
        for key in sorted(context.selected_asset_check_keys, key=lambda key: key.to_user_string()):
            check = by_key[key]
            start, end = window or EVERYTHING
            if window is None or not check.windowed:
                read = "every row"
            elif windowed_after_check and (reason := why_every_row(context, key)):
                start, end = EVERYTHING
                read = f"every row, not the run's window: {reason}"
            else:
                read = f"changes from {start:%Y-%m-%d} to {end:%Y-%m-%d} (excl.)"
            started = time.perf_counter()
            result = check.evaluate(start, end)
            seconds = round(time.perf_counter() - started, 3)
            yield AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=result.passed,
                severity=result.severity,
                description=result.description,
                metadata={"window": MetadataValue.text(read), "seconds": seconds, **result.metadata},
            )

    return _checks


def build_layer_checks(registry: Registry, warehouse: Path) -> list[AssetChecksDefinition]:
    """The three steps: the raw tables', the canonical model's and the marts' checks."""
    from ingestion.sources.counts import countable
    from orchestration.checks.expectations import INT_ASSET, audit_suite_check, audits, raw_suite_check
    from orchestration.checks.freshness import freshness_check
    from orchestration.checks.raw import source_ids_check
    from orchestration.checks.reconcile import reconciliation_check
    from orchestration.checks.taxonomy import taxonomy_check

    suites = [audit_suite_check(audit, registry, warehouse) for _, audit in sorted(audits().items())]
    raw = [
        check
        for city in registry.cities
        for check in (
            source_ids_check(city, warehouse),
            raw_suite_check(city, warehouse),
            *([reconciliation_check(city, warehouse)] if countable(city) else []),
            freshness_check(city, warehouse),
        )
    ]
    canonical = [suite for suite in suites if suite.spec.asset_key == INT_ASSET]
    canonical.append(taxonomy_check(registry, warehouse))
    marts = [suite for suite in suites if suite.spec.asset_key != INT_ASSET]
    return [
        layer_checks(
            "raw_checks",
            "Every city's raw table: its keys, its protocol's GX suite, its reconciliation with the "
            "portal's counts (blocking) and its freshness.",
            raw,
            warehouse,
        ),
        layer_checks(
            "canonical_checks",
            "The canonical model's GX suite and the taxonomy gate, both blocking: dbt's second step "
            "runs only when they pass.",
            canonical,
            warehouse,
            windowed_after_check=True,
        ),
        layer_checks(
            "mart_checks",
            "The GX suite of every fact and mart on its audit view, blocking.",
            marts,
            warehouse,
            windowed_after_check=True,
        ),
    ]
