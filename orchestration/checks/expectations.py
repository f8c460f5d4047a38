"""Great Expectations suites (expectations/*.json) as blocking Dagster asset checks.

Each suite validates a pandas DataFrame read from the DuckDB warehouse: GX's SQL
datasource fails every expectation on DuckDB with "list index out of range"
(GX issues 10738 and 11579). A suite on a dbt model reads its audit model, a view
in the `audit` schema (dbt_project/models/audit) whose YAML meta names the model
it audits and the suite; the checks are wired from those entries in the dbt
manifest. The raw suites read RAW_FRAME_SQL, city by city: they run before any
dbt step, so no dbt view can be there yet (docs/quality.md). A suite with
meta.window reads the rows that changed in the run's window; the others read the
whole model, which is small and may be rebuilt in full. A frame larger than
CHUNK_ROWS is read and validated in chunks, with the outcome the whole frame has
(`read_chunks`, `validate_chunks`). The checks run in their layer's step
(orchestration/checks/layers.py).
"""

import copy
import gc
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue
from dlt.common.normalizers.naming.snake_case import NamingConvention

from ingestion.pipeline import raw_dataset, raw_table_exists
from ingestion.redact import RedactedError
from ingestion.registry import City, Registry
from orchestration.assets.ingestion import raw_asset_key
from orchestration.checks.layers import Check
from orchestration.resources import dbt_project

# GX must never try the network. It is imported lazily (the import takes seconds
# and only a running check needs it), always after this line.
os.environ["GX_ANALYTICS_ENABLED"] = "False"

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
INT_ASSET = AssetKey(["intermediate", "int_service_requests"])
SAMPLE_SIZE = 10
# Kwargs that name the columns under test or are GX bookkeeping, not the rule's settings.
_NOT_SETTINGS = {"column", "column_A", "column_B", "column_list", "batch_id", "result_format"}


# --- suites ---------------------------------------------------------------------------------------


class SuiteError(RedactedError, ValueError):
    """A suite file is malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class Suite:
    name: str
    expectations: list[dict[str, Any]]
    meta: dict[str, Any]

    @property
    def fix(self) -> str:
        return self.meta.get("fix", "")

    @property
    def window(self) -> str | None:
        """The column a partitioned check filters its rows on; None: every row."""
        return self.meta.get("window")


@cache
def load_suite(name: str) -> Suite:
    path = EXPECTATIONS_DIR / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(suite_names())
        raise SuiteError(f"no suite {name!r} in {EXPECTATIONS_DIR}; the suites are: {known}") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path} is not valid JSON: {exc}") from None
    problems = []
    if raw.get("name") != name:
        problems.append(f"'name' must be {name!r}, the file's name")
    if not isinstance(raw.get("expectations"), list) or not raw["expectations"]:
        problems.append("'expectations' must be a non-empty list")
    for i, expectation in enumerate(raw.get("expectations") or []):
        if not (isinstance(expectation.get("type"), str) and isinstance(expectation.get("kwargs"), dict)):
            problems.append(f"expectation {i + 1} needs a 'type' and a 'kwargs' object")
    if not (raw.get("meta") or {}).get("description"):
        problems.append("'meta.description' must say what the suite holds")
    if problems:
        raise SuiteError(f"invalid suite {path}: " + "; ".join(problems))
    return Suite(name=name, expectations=raw["expectations"], meta=raw["meta"])


def suite_names() -> list[str]:
    return sorted(path.stem for path in EXPECTATIONS_DIR.glob("*.json"))


# --- audit models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """An audit model of the dbt project: the view a suite validates, and the asset it audits."""

    suite: str
    model: str
    relation: str
    asset_key: AssetKey


def audits(manifest_path: Path | None = None) -> dict[str, Audit]:
    """Every audit model in the dbt manifest (meta.civic311.audits and .suite), by suite.
    Every fact and mart model must have one: a new model without one, or an entry
    that names a model it does not ref, stops the code location from loading."""
    return _audits(manifest_path or dbt_project.manifest_path)


@cache
def _audits(manifest_path: Path) -> dict[str, Audit]:
    if not manifest_path.is_file():
        raise SuiteError(f"no dbt manifest at {manifest_path}: parse the project first (dbt parse)")
    nodes = json.loads(manifest_path.read_text())["nodes"]
    found, problems = {}, []
    for node in nodes.values():
        entry = (node.get("config", {}).get("meta") or {}).get("civic311", {})
        if node["resource_type"] != "model" or "audits" not in entry:
            continue
        layer, _, model = entry["audits"].partition(".")
        audited = f"model.{node['package_name']}.{model}"
        if audited not in node["depends_on"]["nodes"] or nodes[audited]["fqn"][1] != layer:
            problems.append(f"{node['name']} audits {entry['audits']!r} but does not ref that model")
            continue
        found[entry["suite"]] = Audit(
            suite=entry["suite"],
            model=node["name"],
            relation=f"{_quote(node['schema'])}.{_quote(node['alias'])}",
            asset_key=AssetKey([layer, model]),
        )
    audited = {audit.asset_key.path[-1] for audit in found.values()}
    problems += [
        f"{node['name']} has no audit model (dbt_project/models/audit, meta.civic311.audits)"
        for node in nodes.values()
        if node["resource_type"] == "model"
        and node["fqn"][1] == "marts"
        and node["name"].startswith(("fct_", "mart_"))
        and node["name"] not in audited
    ]
    if problems:
        raise SuiteError("; ".join(sorted(problems)))
    for name in found:
        load_suite(name)  # a missing or malformed suite fails here, not at the first run
    return found


def mart_suites() -> list[str]:
    """The suites of the fact and mart models."""
    return sorted(name for name, audit in audits().items() if audit.asset_key.path[0] == "marts")


# --- frames ---------------------------------------------------------------------------------------

# raw/<city>/service_requests as every protocol's suite reads it. {raw_table} and
# {id_column} are the city's table and its registry id_field, {protocol_columns} the
# columns the protocol's suite checks besides (its meta.protocol_columns):
# identifiers a bound parameter cannot name. Not a dbt model: the raw checks gate
# dbt's first step, so they run before dbt could build any view.
RAW_FRAME_SQL = """
select
    city_id,
    source_id,
    cast({id_column} as varchar) as id_field_value,
    source_updated_at,
    _loaded_at,
    -- how far the change stamp lies after the load (negative: before it)
    date_diff('second', _loaded_at, source_updated_at) / 86400.0 as source_updated_at_days_after_load,
    {protocol_columns},
    _dlt_load_id

from {raw_table}
"""


def frame_sql(suite_name: str, city: City | None = None, windowed: bool = True) -> str:
    """The query of the suite's frame: a raw suite's for the city, else its audit
    model's view; not `windowed`, every row. Windowed, a suite with meta.window keeps
    the rows without a window value and
    those from $start - the city's $lookback_hours on: a raw suite's up to $end (the
    raw days of the run), an audit's with no end, so that a model's row stamped after
    the window (a change from the future, a later update in a backfill of past days)
    is read too."""
    suite = load_suite(suite_name)
    if city is not None:
        sql = RAW_FRAME_SQL.format(**raw_identifiers(city))
    else:
        sql = f"select * from {audits()[suite_name].relation}\n"  # noqa: S608
    if suite.window and windowed:
        column = _quote(suite.window)
        sql += (
            f"where {column} is null\n"
            f"    or ({column} >= $start - coalesce($lookback_hours[city_id], 0) * interval 1 hour"
            + (f"\n        and {column} < $end)" if city is not None else ")")
        )
    return sql


def read_frame(
    suite_name: str,
    warehouse: Path,
    params: Mapping[str, Any] | None = None,
    city: City | None = None,
) -> pd.DataFrame:
    """The suite's frame from the warehouse, read-only (a raw suite's for `city`): the
    window `params` set (`window_params`), or every row without them. Only the
    parameters the query names are bound (DuckDB refuses extra ones)."""
    sql, bound = frame_query(suite_name, params, city)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, bound).df()


def frame_query(
    suite_name: str, params: Mapping[str, Any] | None, city: City | None
) -> tuple[str, dict[str, Any]]:
    """The frame's query (windowed when `params` are given) and the parameters it names."""
    sql = frame_sql(suite_name, city, windowed=params is not None)
    return sql, {k: v for k, v in (params or {}).items() if f"${k}" in sql}


# A frame is validated in chunks of about this many rows, so a suite on tens of
# millions of rows never holds them all in pandas and GX at once (the facts' frames
# at 5M requests: 9.7M events, and GX's peak about 2.5 times the frame).
CHUNK_ROWS = 1_000_000
# Rows are dealt into this many buckets by a hash of their chunk key; a chunk is
# whole buckets, so every row of one key lands in the same chunk.
CHUNK_BUCKETS = 64
_BUCKET = "__civic311_bucket"
# The sort by bucket spills to disk beyond this, rather than holding the frame twice.
CHUNK_READ_SETTINGS = {"memory_limit": "1GB"}


def chunk_key(suite: Suite) -> list[str] | None:
    """The columns every uniqueness expectation of the suite tests (in its row_key's
    order): rows that could be duplicates of one another share them, so chunks cut
    on them validate uniqueness as the whole frame would. Every other expectation
    of the suites judges a row on its own. Empty without a uniqueness expectation
    (any cut will do); None when they share no column (the frame cannot be cut)."""
    shared = None
    for expectation in suite.expectations:
        kwargs = expectation["kwargs"]
        if expectation["type"] == "expect_compound_columns_to_be_unique":
            columns = set(kwargs["column_list"])
        elif expectation["type"] == "expect_column_values_to_be_unique":
            columns = {kwargs["column"]}
        else:
            continue
        shared = columns if shared is None else shared & columns
    if shared is None:
        return []
    if not shared:
        return None
    ordered = [column for column in suite.meta.get("row_key", []) if column in shared]
    return ordered + sorted(shared - set(ordered))


def read_chunks(
    suite_name: str,
    warehouse: Path,
    params: Mapping[str, Any] | None = None,
    city: City | None = None,
) -> Iterator[pd.DataFrame]:
    """The suite's frame (read_frame) in chunks of about CHUNK_ROWS rows, each made of
    whole buckets of its chunk key (`chunk_key`), in one query sorted by bucket. At
    least one chunk, empty if the frame is. A suite with a uniqueness expectation and
    no key every one of them shares is read whole."""
    sql, bound = frame_query(suite_name, params, city)
    key = chunk_key(load_suite(suite_name))
    if key is None:
        yield read_frame(suite_name, warehouse, params, city)
        return
    if key:
        hashed = ", ".join(_quote(column) for column in key)
        sql = f"select *, hash({hashed}) % {CHUNK_BUCKETS} as {_BUCKET} from ({sql}) order by {_BUCKET}"  # noqa: S608
    vectors = max(1, CHUNK_ROWS // duckdb.__standard_vector_size__)
    with duckdb.connect(str(warehouse), read_only=True, config=CHUNK_READ_SETTINGS) as con:
        result = con.execute(sql, bound)
        pending: list[pd.DataFrame] = []
        pending_rows, last_bucket, yielded = 0, None, False
        while not (batch := result.fetch_df_chunk(vectors)).empty:
            if not key:
                yielded = True
                yield batch
                continue
            # sorted by bucket: a chunk ends where a bucket does, once it is big enough
            for bucket, rows in batch.groupby(_BUCKET, sort=False):
                if pending_rows >= CHUNK_ROWS and bucket != last_bucket:
                    yielded = True
                    yield pd.concat(pending, ignore_index=True).drop(columns=_BUCKET)
                    pending, pending_rows = [], 0
                pending.append(rows)
                pending_rows += len(rows)
                last_bucket = bucket
        if pending:
            yield pd.concat(pending, ignore_index=True).drop(columns=_BUCKET)
        elif not yielded:
            yield batch.drop(columns=_BUCKET, errors="ignore")


def window_params(start: datetime, end: datetime, cities: list[City]) -> dict[str, Any]:
    """$start, $end and $lookback_hours (city id -> hours) for a windowed frame."""
    return {
        "start": start,
        "end": end,
        "lookback_hours": {
            "key": [city.id for city in cities],
            "value": [float(city.source.lookback_hours) for city in cities],
        },
    }


def raw_identifiers(city: City) -> dict[str, str]:
    """The city's raw table and id column, as dlt named them, and the columns its
    protocol's suite checks (meta.protocol_columns), quoted for RAW_FRAME_SQL."""
    id_column = NamingConvention().normalize_identifier(city.source.id_field)
    columns = load_suite(f"raw_{city.source.protocol}").meta["protocol_columns"]
    return {
        "raw_table": f"{_quote(raw_dataset(city))}.service_requests",
        "id_column": _quote(id_column),
        "protocol_columns": ", ".join(_quote(c) for c in columns),
    }


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# --- validation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteOutcome:
    """What a suite found in one frame."""

    suite: str
    passed: bool
    failed: list[dict[str, Any]]
    evaluated: int
    rows: int
    city: str | None = None
    fix: str = ""
    unexpected_counts: dict[str, int] = field(default_factory=dict)
    # A suite validated city by city: each city's outcome (True when it passed).
    cities: dict[str, bool] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "suite": self.suite,
            "rows_validated": self.rows,
            "expectations_evaluated": self.evaluated,
            "expectations_failed": len(self.failed),
            "failed_expectations": MetadataValue.json(self.failed),
        }
        if self.city:
            metadata["city"] = self.city
        if self.cities:
            metadata["cities_validated"] = len(self.cities)
            failed = sorted(city for city, passed in self.cities.items() if not passed)
            metadata["cities_failed"] = MetadataValue.json(failed)
        metadata.update(self.unexpected_counts)
        return metadata

    def description(self) -> str:
        where = f" for {self.city}" if self.city else ""
        if self.passed:
            return f"{self.suite}{where}: all {self.evaluated} expectations hold on {self.rows:,} rows."
        lines = [
            f"{self.suite}{where}: {len(self.failed)} of {self.evaluated} expectations failed "
            f"on {self.rows:,} rows."
        ]
        fixes = []
        for failure in self.failed:
            lines.append(f"- {_summary(failure)}")
            fix = failure.get("fix") or self.fix
            if fix and fix not in fixes:
                fixes.append(fix)
        lines += [f"Fix: {fix}" for fix in fixes]
        return "\n".join(lines)


def _summary(failure: dict[str, Any]) -> str:
    head = f"{failure['expectation']} on {failure['column']}"
    if failure.get("city"):
        head = f"{failure['city']}: {head}"
    if failure.get("error"):
        return f"{head} could not run: {failure['error']}"
    count, percent = failure.get("unexpected_count"), failure.get("unexpected_percent")
    found = f"{count:,} unexpected" if count is not None else "failed"
    if percent is not None:
        found += f" ({percent:.2f}%)"
    sample = failure.get("unexpected_rows") or failure.get("partial_unexpected_list")
    text = f"{head}: {found}"
    if sample:
        text += f", e.g. {json.dumps(sample[:3])}"
    return text + (f". {failure['rule']}" if failure.get("rule") else "")


def validate(suite_name: str, frame: pd.DataFrame, city: str | None = None) -> SuiteOutcome:
    """Run the suite on the frame. `city` defaults to the frame's only city_id, if it has one."""
    return validate_chunks(suite_name, [frame], city=city)


def validate_by_city(suite_name: str, frame: pd.DataFrame) -> SuiteOutcome:
    """Each city's rows validated on their own (`validate_chunks` by_city)."""
    return validate_chunks(suite_name, [frame], by_city=True)


def validate_chunks(
    suite_name: str, chunks: Iterable[pd.DataFrame], city: str | None = None, by_city: bool = False
) -> SuiteOutcome:
    """Run the suite on a frame given in chunks (`read_chunks`), with the outcome it
    has on the whole frame: each expectation's counts are summed over the chunks and
    its `mostly` applied to the sums. by_city, each city's rows are judged on their own,
    so a `mostly` threshold is the city's: a small city whose every row breaks a rule
    fails, however many good rows a large city adds to the window; it fails when any
    city fails, and each failure names its city (rows without a city_id are a city of
    their own)."""
    suite = load_suite(suite_name)
    if not by_city:
        run, cities = _SuiteRun(suite), set()
        for chunk in chunks:
            if "city_id" in chunk.columns:
                cities.update(str(c) for c in chunk["city_id"].dropna().unique())
            run.add(chunk)
        if city is None and len(cities) == 1:
            (city,) = cities
        return run.outcome(city)
    runs: dict[str, _SuiteRun] = {}
    last = None
    for chunk in chunks:
        last = chunk
        for key, rows in chunk.groupby("city_id", sort=False, dropna=False):
            name = NO_CITY if pd.isna(key) else str(key)
            runs.setdefault(name, _SuiteRun(suite)).add(rows.reset_index(drop=True))
    if not runs:
        empty = _SuiteRun(suite)
        empty.add(last if last is not None else pd.DataFrame())
        return empty.outcome(None)
    outcomes = [runs[name].outcome(name) for name in sorted(runs)]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        for key, count in outcome.unexpected_counts.items():
            counts[key] = counts.get(key, 0) + count
    return SuiteOutcome(
        suite=suite.name,
        passed=all(o.passed for o in outcomes),
        failed=[{"city": o.city, **failure} for o in outcomes for failure in o.failed],
        evaluated=sum(o.evaluated for o in outcomes),
        rows=sum(o.rows for o in outcomes),
        fix=suite.fix,
        unexpected_counts=counts,
        cities={o.city: o.passed for o in outcomes},
    )


NO_CITY = "(no city_id)"


@dataclass
class _Tally:
    """One expectation's results over the chunks of a frame, summed."""

    config: Any
    considered: int = 0
    unexpected: int | None = 0
    every_chunk_passed: bool = True
    sample: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    observed: Any = None
    error: str | None = None

    def add(self, outcome) -> None:
        result = outcome.result or {}
        self.every_chunk_passed &= bool(outcome.success)
        elements, unexpected = result.get("element_count"), result.get("unexpected_count")
        if unexpected is None or elements is None or self.unexpected is None:
            self.unexpected = None  # no counts: the chunks' verdicts decide
        else:
            self.considered += elements - (result.get("missing_count") or 0)
            self.unexpected += unexpected
        self.sample += list(result.get("partial_unexpected_list") or [])[: SAMPLE_SIZE - len(self.sample)]
        self.rows += list(result.get("partial_unexpected_index_list") or [])[: SAMPLE_SIZE - len(self.rows)]
        if "observed_value" in result and (self.observed is None or not outcome.success):
            self.observed = result["observed_value"]
        self.error = self.error or _exception_message(outcome.exception_info)

    @property
    def success(self) -> bool:
        """GX's own rule over the sums: vacuously true with nothing considered, else
        the share of considered rows that passed is at least `mostly`."""
        if self.error:
            return False
        if self.unexpected is None:
            return self.every_chunk_passed
        if self.considered == 0:
            return True
        mostly = float(self.config.kwargs.get("mostly", 1.0))
        return (self.considered - self.unexpected) / self.considered >= mostly

    def percent(self) -> float | None:
        if self.unexpected is None or self.considered == 0:
            return None
        return self.unexpected / self.considered * 100


class _SuiteRun:
    """A suite run over the chunks of one frame."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.tallies: list[_Tally] | None = None
        self.rows = 0

    def add(self, chunk: pd.DataFrame) -> None:
        result = _run_gx(self.suite, chunk)
        if self.tallies is None:
            self.tallies = [_Tally(outcome.expectation_config) for outcome in result.results]
        for tally, outcome in zip(self.tallies, result.results, strict=True):
            tally.add(outcome)
        self.rows += len(chunk)
        if len(chunk) >= CHUNK_ROWS // 10:
            # GX's validation objects keep a big chunk in reference cycles: free them
            # before the next one (9.7M events: 3.6 GB peak without, 2.5 GB with)
            del result
            gc.collect()

    def outcome(self, city: str | None) -> SuiteOutcome:
        tallies = self.tallies or []
        failed, counts = [], {}
        for tally in tallies:
            if tally.success:
                continue
            failure = _failure(tally)
            failed.append(failure)
            if failure["unexpected_count"] is not None:
                counts[unexpected_count_key(failure)] = failure["unexpected_count"]
        return SuiteOutcome(
            suite=self.suite.name,
            passed=not failed,
            failed=failed,
            evaluated=len(tallies),
            rows=self.rows,
            city=city,
            fix=self.suite.fix,
            unexpected_counts=counts,
        )


def unexpected_count_key(failure: dict[str, Any]) -> str:
    """The metadata key of a failed expectation's count, e.g.
    `unexpected_count: column_values_to_be_unique(source_id)`, stable from run to run."""
    return f"unexpected_count: {failure['expectation'].removeprefix('expect_')}({failure['column']})"


@cache
def _gx():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    def config() -> DataContextConfig:
        # In memory, no data docs site, no analytics, no progress bars in the run's logs.
        return DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        )

    return gx, config


def _run_gx(suite: Suite, frame: pd.DataFrame):
    """Validate in a fresh ephemeral context: nothing is written to disk, and checks
    running side by side share no GX state."""
    gx, config = _gx()
    context = gx.get_context(mode="ephemeral", project_config=config())
    batch = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("frame")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    gx_suite = context.suites.add(
        gx.ExpectationSuite(
            name=suite.name,
            expectations=copy.deepcopy(suite.expectations),
            meta=suite.meta,
        )
    )
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
    if suite.meta.get("row_key"):
        # which rows broke a rule, not only their values
        result_format["unexpected_index_column_names"] = suite.meta["row_key"]
    return batch.validate(gx_suite, result_format=result_format)


def _failure(tally: _Tally) -> dict[str, Any]:
    config = tally.config
    kwargs = dict(config.kwargs)
    columns = kwargs.get("column_list") or [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    percent = tally.percent()
    failure = {
        "expectation": config.type,
        "column": ", ".join(str(c) for c in columns if c),
        "kwargs": _json_safe({k: v for k, v in kwargs.items() if k not in _NOT_SETTINGS}),
        "unexpected_count": tally.unexpected,
        "unexpected_percent": None if percent is None else round(float(percent), 4),
        "partial_unexpected_list": _json_safe(tally.sample),
        "rule": (config.meta or {}).get("rule"),
        "fix": (config.meta or {}).get("fix"),
    }
    if tally.rows:
        failure["unexpected_rows"] = _json_safe(tally.rows)
    if tally.observed is not None:
        failure["observed_value"] = _json_safe(tally.observed)
    if tally.error:
        failure["error"] = tally.error
    return failure


def _exception_message(info: Any) -> str | None:
    """GX reports an exception at the top level or per metric; the first message found."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return info.get("exception_message")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message")
    return None


def _json_safe(value: Any) -> Any:
    """Sample values as JSON: timestamps as ISO text, numpy scalars as numbers, NaN as null."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if hasattr(value, "dtype"):  # numpy scalars, datetime64 included
        if str(value.dtype).startswith("datetime64"):
            return None if pd.isna(value) else pd.Timestamp(value).isoformat()
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- checks ---------------------------------------------------------------------------------------


def check_result(outcome: SuiteOutcome) -> AssetCheckResult:
    return AssetCheckResult(
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR,
        description=None if outcome.passed else outcome.description(),
        metadata=outcome.metadata(),
    )


def raw_suite_check(city: City, warehouse: Path) -> Check:
    """The city's protocol suite on its raw rows changed in the window (with its lookback)."""
    suite_name = f"raw_{city.source.protocol}"
    suite = load_suite(suite_name)
    spec = AssetCheckSpec(
        name=f"{suite_name}_suite",
        asset=raw_asset_key(city),
        description=f"{city.name}: {suite.meta['description']} (expectations/{suite_name}.json)",
        blocking=True,
    )

    def evaluate(start: datetime, end: datetime) -> AssetCheckResult:
        if not raw_table_exists(warehouse, city):
            # Nothing has been loaded for the city yet: there is no row to be wrong.
            return check_result(SuiteOutcome(suite_name, True, [], evaluated=0, rows=0, city=city.id))
        chunks = read_chunks(suite_name, warehouse, window_params(start, end, [city]), city=city)
        return check_result(validate_chunks(suite_name, chunks, city=city.id))

    return Check(spec, evaluate)


def audit_suite_check(audit: Audit, registry: Registry, warehouse: Path) -> Check:
    """The suite on its audit model. A suite with meta.window validates each city's
    rows changed in the window on their own; the others validate every row."""
    suite = load_suite(audit.suite)
    spec = AssetCheckSpec(
        name=f"{suite.name}_suite",
        asset=audit.asset_key,
        description=f"{suite.meta['description']} (expectations/{suite.name}.json on audit.{audit.model})",
        blocking=True,
    )

    def evaluate(start: datetime, end: datetime) -> AssetCheckResult:
        if suite.window is None:
            return check_result(validate_chunks(suite.name, read_chunks(suite.name, warehouse)))
        chunks = read_chunks(suite.name, warehouse, window_params(start, end, registry.cities))
        return check_result(validate_chunks(suite.name, chunks, by_city=True))

    return Check(spec, evaluate, windowed=suite.window is not None)
