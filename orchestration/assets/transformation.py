"""dbt models as Dagster assets: seeds and the registry's cities (reference),
staging, intermediate, quarantine, the request history snapshot (snapshots) and
marts, in two steps. The raw tables are Dagster's, not dbt sources: the translator
draws each city's raw tables (`raw/<city>/service_requests`, ...) into its staging
model and the quarantine, so a failed blocking check on a city's raw partition
keeps every model built on it from running. Every dbt call passes the registry as
dbt vars (orchestration.resources.dbt_vars), and the run's window as environment
variables (orchestration.resources.window_env).
"""

import filecmp
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Output,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_dbt.asset_utils import (
    get_dbt_test_names_for_check_keys,
    get_manifest_and_translator_from_dbt_assets,
)

from ingestion.geography.spatial import configure
from ingestion.pipeline import WAREHOUSE_ENV, warehouse_path
from ingestion.registry import Registry, load_registry
from ingestion.sources.resource import REJECTED_TABLE
from orchestration.partitions import FULL_REFRESH_TAG, window_of_run
from orchestration.redaction import redacted
from orchestration.resources import (
    WAREHOUSE_POOL,
    dbt_project,
    dbt_vars,
    holds_warehouse,
    prepared_dbt_manifest,
    window_env,
)

# Seeds and snapshots sit at the top of their folders, so their layer is named here.
LAYER_OF_RESOURCE = {"seed": "reference", "snapshot": "snapshots"}


def layer(dbt_resource_props: Mapping[str, Any]) -> str:
    """The folder a dbt node lives in: staging, intermediate, marts, reference or snapshots."""
    return LAYER_OF_RESOURCE.get(dbt_resource_props["resource_type"]) or dbt_resource_props["fqn"][1]


class CivicDbtTranslator(DagsterDbtTranslator):
    """Asset keys by layer, and the raw tables each city's models read, which dbt does
    not know: `raw_tables` maps a city id to its raw tables (City.raw_tables)."""

    def __init__(self, raw_tables: Mapping[str, list[str]]):
        super().__init__()
        self.raw_tables = dict(raw_tables)

    def raw_deps(self, dbt_resource_props: Mapping[str, Any]) -> list[AssetKey]:
        """The raw tables a staging model (its city's) or the quarantine (every city's) reads."""
        name = dbt_resource_props["name"]
        if dbt_resource_props["resource_type"] != "model":
            return []
        if layer(dbt_resource_props) == "staging" and name.startswith("stg_"):
            city = name.removeprefix("stg_").removesuffix("__service_requests")
            return [AssetKey(["raw", city, table]) for table in self.raw_tables.get(city, [])]
        if layer(dbt_resource_props) == "quarantine":
            return [
                AssetKey(["raw", city, table])
                for city, tables in self.raw_tables.items()
                for table in [*tables, REJECTED_TABLE]
            ]
        return []

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        raw = self.raw_deps(self.get_resource_props(manifest, unique_id))
        if not raw:
            return spec
        return spec.replace_attributes(deps=[*spec.deps, *(AssetDep(key) for key in raw)])

    def get_asset_check_spec(
        self, asset_spec: AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> AssetCheckSpec | None:
        """dagster-dbt's check for a dbt test, described: the test's YAML description
        (a singular test's, in tests/singular/singular_tests.yml), else what a generic
        test asserts, said from its arguments."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        test = manifest["nodes"][unique_id]
        described = test.get("description") or test_description(test.get("test_metadata") or {})
        return spec._replace(description=described) if described else spec

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        # The one dbt source is the boundary tables: geography/boundaries, ...
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([layer(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return layer(dbt_resource_props)


def unref(relation: object) -> str:
    """`ref('service_categories')` as the model's name."""
    return re.sub(r"""ref\(['"]([^'"]+)['"]\)""", r"\1", str(relation))


def test_description(metadata: Mapping[str, Any]) -> str | None:
    """What a generic dbt test asserts, from its name and arguments, or None for a
    test this does not know."""
    kwargs = metadata.get("kwargs", {})
    column = kwargs.get("column_name")
    sentences = {
        "not_null": lambda: f"{column} is never null.",
        "unique": lambda: f"{column} is unique.",
        "accepted_values": lambda: f"{column} is one of {', '.join(map(str, kwargs.get('values', [])))}.",
        "relationships": lambda: f"Every {column} is a {kwargs.get('field')} of {unref(kwargs.get('to'))}.",
        "unique_combination": lambda: f"No two rows share ({', '.join(kwargs.get('columns', []))}).",
        "expression_is_true": lambda: f"Every row has {kwargs.get('expression')}.",
    }
    said = sentences.get(metadata.get("name"))
    return said() if said else None


def partition_window_env(context: AssetExecutionContext) -> dict[str, str]:
    """The run's raw partitions as dbt's window (WINDOW_ENV): [first day, day after the
    last). The models are not partitioned; the run's tags carry its days, whether it is
    one partition (a city's daily load, the UI), a range (a backfill run) or the window
    tags of the daily refresh's models run, and an asset
    backfill's own run of the models gets the backfill's days. Incremental models
    rewrite what changed in the window (with their lookback); any other run gives no
    window, and dbt then computes everything."""
    window = window_of_run(context)
    if window is None:
        return window_env()
    return window_env(window.start.date(), window.end.date())


@contextmanager
def dbt_environment(window: Mapping[str, str], tests: str = "eager") -> Iterator[None]:
    """While dbt runs: CIVIC311_WAREHOUSE as the absolute path civic311 resolved (dbt
    runs in dbt_project/, where a relative path names another file), the run's
    `window` (partition_window_env), and how dbt adds tests to the models it builds
    (DBT_INDIRECT_SELECTION, see planned_tests). dagster-dbt hands dbt a copy of this
    environment."""
    settings = {WAREHOUSE_ENV: str(warehouse_path()), "DBT_INDIRECT_SELECTION": tests, **window}
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


PARTIAL_PARSE = "partial_parse.msgpack"


def keep_parse(step_target: Path) -> None:
    """Keep the parse a dbt step ended with as the one the next dbt call starts from:
    the saved parse holds the warehouse path the prepare saw, and dbt parses everything
    again when it differs (docs/design.md, "What is partitioned"). dbt validates a
    saved parse before using it, so a stale one costs a parse, never a wrong build."""
    produced = step_target / PARTIAL_PARSE
    kept = dbt_project.project_dir / dbt_project.target_path / PARTIAL_PARSE
    if not produced.is_file() or (kept.is_file() and filecmp.cmp(produced, kept, shallow=False)):
        return
    partial = kept.with_name(f".{PARTIAL_PARSE}.{os.getpid()}.tmp")
    shutil.copyfile(produced, partial)
    os.replace(partial, kept)


def planned_tests(context: AssetExecutionContext) -> list[str] | None:
    """The dbt tests of the checks Dagster planned, for a step that builds only some of
    its models; None for a whole step, where dbt's own choice is exactly its checks.
    dbt's choice for a subset runs tests on models the run does not build
    (docs/design.md, "What is partitioned")."""
    if not context.is_subset:
        return None
    manifest, translator, _ = get_manifest_and_translator_from_dbt_assets([context.assets_def])
    checks = sorted(context.selected_asset_check_keys, key=lambda key: key.to_user_string())
    return list(get_dbt_test_names_for_check_keys(translator, manifest, context.assets_def, checks))


# How long a dbt step's own folder (its logs, run_results.json, compiled SQL) is kept.
STEP_TARGET_DAYS = 7


def prune_step_targets(target: Path, days: float = STEP_TARGET_DAYS, now: float | None = None) -> list[Path]:
    """Remove the folders dbt calls left in `target` more than `days` ago, and return
    them: dagster-dbt gives each call its own (4 to 7 MB) and never removes it. The
    project's own files (manifest.json, the saved parse) are never touched."""
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = []
    for folder in target.glob("civic311_dbt_*-*-*"):
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


RawTables = tuple[tuple[str, tuple[str, ...]], ...]


def raw_tables_by_city(registry: Registry | None = None) -> RawTables:
    """Each city of the registry (the active one by default) and the raw tables its
    staging model reads."""
    return tuple((city.id, tuple(city.raw_tables)) for city in (registry or load_registry()).cities)


def build_dbt_assets(
    name: str, raw_tables: RawTables, select: str = "fqn:*", exclude: str | None = None
) -> AssetsDefinition:
    """One `dbt build` step over part of the project, in the run's partition window."""

    @dbt_assets(
        manifest=prepared_dbt_manifest(),
        project=dbt_project,
        name=name,
        select=select,
        exclude=exclude,
        dagster_dbt_translator=CivicDbtTranslator(dict(raw_tables)),
        pool=WAREHOUSE_POOL,
        # No backfill policy: the models are not partitioned, so a backfill of any range
        # of raw days builds them once, after the raw runs, over the backfill's days
        # (window_of_run). Declaring BackfillPolicy.single_run() here split that one run
        # in two (the dbt steps, then the publish, a daemon tick later): an asset
        # backfill groups the unpartitioned assets of a run by their policy.
    )
    @redacted
    @holds_warehouse()
    def _models(context: AssetExecutionContext, dbt: DbtCliResource):
        # dbt's unit tests check the models' SQL on fixed rows, never the warehouse's
        # data: the test suite runs every one of them (tests/integration/conftest.py),
        # and a refresh would only pay for them again (about 10 s a run).
        args = ["build", "--exclude-resource-type", "unit_test", "--vars", dbt_vars()]
        # Recreated, not recomputed in place: a model that gained a column (its
        # contract and on_schema_change stop an incremental run) is rebuilt whole.
        # Snapshots ignore the flag: their history stays.
        if context.run.tags.get(FULL_REFRESH_TAG) == "true":
            args.append("--full-refresh")
        tests = planned_tests(context)
        if tests:
            args += ["--select", " ".join(tests)]
        indirect = "eager" if tests is None else "empty"
        events, failure = [], None
        with dbt_environment(partition_window_env(context), tests=indirect):
            invocation = dbt.cli(args, context=context)
            try:
                events.extend(invocation.stream())
            except Exception as exc:  # what dbt built before it failed is still reported
                failure = exc
        yield from with_row_counts(events, invocation.manifest)
        if failure is not None:
            raise failure
        keep_parse(invocation.target_path)
        prune_step_targets(invocation.target_path.parent)

    return _models


# Materializations that hold rows of their own (views run their query when read).
COUNTED = {"table", "incremental", "snapshot", "seed"}


def with_row_counts(events: list[Any], manifest: Mapping[str, Any]) -> Iterator[Any]:
    """dbt's events, each model that holds rows with its row count (`dagster/row_count`,
    which the UI shows on the asset). Counted once dbt has exited: dagster-dbt's own
    `fetch_row_counts` asks while dbt still holds the warehouse, which DuckDB refuses
    to a second process."""
    relations = {}
    for event in events:
        node = manifest["nodes"].get(_unique_id(event))
        if node and node["config"]["materialized"] in COUNTED and node.get("relation_name"):
            relations[node["unique_id"]] = node["relation_name"]
    counts = {}
    if relations:
        with duckdb.connect(str(warehouse_path()), read_only=True) as con:
            configure(con)  # the geography tables have geometry columns
            for unique_id, relation in relations.items():
                counts[unique_id] = con.execute(f"select count(*) from {relation}").fetchone()[0]  # noqa: S608
    for event in events:
        if (unique_id := _unique_id(event)) in counts:
            event = event.with_metadata({**event.metadata, "dagster/row_count": counts[unique_id]})
        yield event


def _unique_id(event: Any) -> str | None:
    """The dbt node an Output of dbt's stands for; None for any other event."""
    unique_id = event.metadata.get("unique_id") if isinstance(event, Output) else None
    return unique_id.value if unique_id is not None else None


# Two steps, so the canonical model is audited before anything is built on it:
# dbt writes a model before it tests it (dbt-core 8979), and a dbt test stops only
# dbt nodes. The first step builds the reference seeds and cities, every city's
# staging view, the canonical union, its taxonomy (int_service_types,
# int_departments) and the quarantine; the blocking checks on
# int_service_requests (dbt tests, the staged rows' contract
# assert_staged_requests_keep_the_contract, its GX suite and the taxonomy gate)
# then decide whether the second step (the spatial join, the
# snapshot, facts, dimensions and marts) runs at all. The raw tables' own keys
# are the blocking Dagster check source_ids_present_and_unique
# (orchestration/checks/raw.py), which runs before this step.
CANONICAL_SELECT = (
    "source:* resource_type:seed path:models/reference path:models/staging path:models/quarantine "
    "int_service_requests int_service_types int_departments audit_int_service_requests"
)


# Built on first use, from the manifest `prepare_dbt_manifest` wrote, and kept for the
# process, once per registry (its cities' raw tables are the staging models' deps).
@cache
def _dbt_step(name: str, raw_tables: RawTables, select: str = "fqn:*", exclude: str | None = None):
    return build_dbt_assets(name, raw_tables, select=select, exclude=exclude)


def civic311_dbt_canonical(registry: Registry | None = None) -> AssetsDefinition:
    return _dbt_step("civic311_dbt_canonical", raw_tables_by_city(registry), select=CANONICAL_SELECT)


def civic311_dbt_marts(registry: Registry | None = None) -> AssetsDefinition:
    return _dbt_step("civic311_dbt_marts", raw_tables_by_city(registry), exclude=CANONICAL_SELECT)
