"""The checks of one layer run as one Dagster step.

A check of its own is a step of its own, and each step pays a start-up (with the
multiprocess executor, a process importing the code location; with GX, GX's own).
So the checks are grouped by the layer they guard, each group one multi-asset check
that evaluates its checks one after the other and reports each as its own Dagster
check result, with its own blocking flag:

    raw_checks         on every city's raw/<city>/service_requests: its keys
                       (source_ids_present_and_unique), its protocol's GX suite and
                       its freshness (a warning)
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
"""

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    MetadataValue,
    multi_asset_check,
)

from ingestion.registry import Registry
from orchestration.partitions import EVERYTHING, window_of_run
from orchestration.redaction import redacted
from orchestration.resources import WAREHOUSE_POOL, holds_warehouse


@dataclass(frozen=True)
class Check:
    """One check of a layer: its spec, and its evaluation over the window [start, end)."""

    spec: AssetCheckSpec
    evaluate: Callable[[datetime, datetime], AssetCheckResult]

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


def layer_checks(
    name: str, description: str, checks: Sequence[Check], warehouse: Path
) -> AssetChecksDefinition:
    """One step evaluating `checks` (those the run selected) under the warehouse lock."""
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
        start, end = window or EVERYTHING
        read = "every row" if window is None else f"changes from {start:%Y-%m-%d} to {end:%Y-%m-%d} (excl.)"
        for key in sorted(context.selected_asset_check_keys, key=lambda key: key.to_user_string()):
            started = time.perf_counter()
            result = by_key[key].evaluate(start, end)
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
    from orchestration.checks.expectations import INT_ASSET, audit_suite_check, audits, raw_suite_check
    from orchestration.checks.freshness import freshness_check
    from orchestration.checks.raw import source_ids_check
    from orchestration.checks.taxonomy import taxonomy_check

    suites = [audit_suite_check(audit, registry, warehouse) for _, audit in sorted(audits().items())]
    raw = [
        check
        for city in registry.cities
        for check in (
            source_ids_check(city, warehouse),
            raw_suite_check(city, warehouse),
            freshness_check(city, warehouse),
        )
    ]
    canonical = [suite for suite in suites if suite.spec.asset_key == INT_ASSET]
    canonical.append(taxonomy_check(registry, warehouse))
    marts = [suite for suite in suites if suite.spec.asset_key != INT_ASSET]
    return [
        layer_checks(
            "raw_checks",
            "Every city's raw table: its keys, its protocol's GX suite (both blocking) and its freshness.",
            raw,
            warehouse,
        ),
        layer_checks(
            "canonical_checks",
            "The canonical model's GX suite and the taxonomy gate, both blocking: dbt's second step "
            "runs only when they pass.",
            canonical,
            warehouse,
        ),
        layer_checks(
            "mart_checks",
            "The GX suite of every fact and mart on its audit view, blocking.",
            marts,
            warehouse,
        ),
    ]
