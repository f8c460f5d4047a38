"""Every GX suite on the warehouse built from the real samples, then on copies broken on
purpose: future-dated and repeated raw rows, one city's closings before its requests,
marts that drifted from the facts. The checks also run through Dagster, as a run would execute them."""

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, asset, materialize

from ingestion.registry import City, load_registry
from orchestration.assets.ingestion import build_raw_assets, raw_asset_key
from orchestration.checks import expectations
from orchestration.checks.expectations import (
    audit_suite_check,
    audits,
    mart_suites,
    raw_suite_check,
    read_chunks,
    read_frame,
    validate,
    validate_by_city,
    validate_chunks,
    window_params,
)
from orchestration.checks.layers import build_layer_checks, layer_checks
from orchestration.partitions import EVERYTHING, city_partitions
from tests.helpers.dbt import dbt_build
from tests.helpers.samples import FEEDS
from tests.helpers.warehouse import copy_warehouse

# The suites find their audit models in the dbt manifest.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("dbt_manifest")]

REGISTRY = load_registry()
# Columns of residents' words or whereabouts that must never reach a frame (and the UI).
FREE_TEXT = {
    "description",
    "status_notes",
    "address",
    "incident_address",
    "summary",
    "reporter",
    "media",
    "media_url",
    "resolution_description",
    "service_details",
    "case_title",
    "closure_reason",
    "extras",
}


def raw_outcome(warehouse, city: City, window=EVERYTHING):
    suite = f"raw_{city.source.protocol}"
    frame = read_frame(suite, warehouse, window_params(*window, [city]), city=city)
    return validate(suite, frame), frame


def int_outcome(warehouse, window=EVERYTHING):
    frame = read_frame("int_service_requests", warehouse, window_params(*window, REGISTRY.cities))
    return validate_by_city("int_service_requests", frame), frame


def mart_outcome(warehouse, mart: str):
    frame = read_frame(mart, warehouse)
    return validate(mart, frame), frame


def failures(outcome) -> dict[tuple[str, str], int]:
    return {(f["expectation"], f["column"]): f["unexpected_count"] for f in outcome.failed}


def count(warehouse, sql: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_every_suite_passes_on_the_real_samples(samples_built):
    for city in REGISTRY.cities:
        outcome, frame = raw_outcome(samples_built, city)
        assert outcome.passed, outcome.description()
        assert (outcome.city, outcome.rows) == (city.id, FEEDS[city.id][1])
        assert not FREE_TEXT & set(frame.columns)

    outcome, frame = int_outcome(samples_built)
    assert outcome.passed, outcome.description()
    assert outcome.rows == count(samples_built, "select count(*) from intermediate.int_service_requests")
    assert len(outcome.cities) == len(REGISTRY.cities)
    assert not FREE_TEXT & set(frame.columns)

    for mart in mart_suites():
        outcome, frame = mart_outcome(samples_built, mart)
        assert outcome.passed, outcome.description()
        # no group of the facts is missing, so the frame is the mart row for row
        assert outcome.rows == count(samples_built, f"select count(*) from marts.{mart}"), mart
        assert not FREE_TEXT & set(frame.columns)


def test_future_dated_and_repeated_raw_rows_fail_the_raw_suites(samples_built, tmp_path):
    warehouse = copy_warehouse(samples_built, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        # five NYC requests whose change stamp lies a month after they were loaded
        con.execute(
            "insert into raw_nyc.service_requests by name "
            "select * replace (source_id || '-9' as source_id, unique_key || '-9' as unique_key, "
            "_loaded_at + interval 30 day as source_updated_at) "
            "from raw_nyc.service_requests where source_id in "
            "('24445308', '24445313', '24445314', '24445318', '24445321')"
        )
        # a Boston case delivered twice
        con.execute(
            "insert into raw_boston.service_requests "
            "select * from raw_boston.service_requests where source_id = '101004113298'"
        )
    nyc, _ = raw_outcome(warehouse, REGISTRY.city("nyc"))
    assert (nyc.passed, nyc.rows) == (False, 1005)
    assert failures(nyc) == {("expect_column_values_to_be_between", "source_updated_at_days_after_load"): 5}
    assert nyc.failed[0]["partial_unexpected_list"] == [30.0] * 5
    boston, _ = raw_outcome(warehouse, REGISTRY.city("boston"))
    assert failures(boston) == {("expect_column_values_to_be_unique", "source_id"): 2}
    assert boston.failed[0]["partial_unexpected_list"] == ["101004113298", "101004113298"]
    assert "raw_ckan for boston: 1 of 12 expectations failed on 101 rows." in boston.description()
    # the other cities' raw tables are untouched
    assert raw_outcome(warehouse, REGISTRY.city("sf"))[0].passed


def test_closings_before_requests_fail_the_int_suite_city_by_city(samples_built, tmp_path):
    warehouse = copy_warehouse(samples_built, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        # Bloomington's 3 closed requests closed a day before they were made: 3 of the
        # window's 3,045 closed requests pooled, all of Bloomington's on its own
        con.execute(
            "update raw_bloomington.service_requests set updated_datetime = "
            "strftime(cast(requested_datetime as timestamptz) - interval 1 day, '%Y-%m-%dT%H:%M:%S+00:00') "
            "where status = 'closed'"
        )
    dbt_build(
        warehouse,
        "stg_bloomington__service_requests int_service_requests",
        tmp_path,
        exclude="resource_type:test",
    )
    outcome, frame = int_outcome(warehouse)
    assert outcome.cities["bloomington"] is False
    assert [c for c, passed in outcome.cities.items() if not passed] == ["bloomington"]
    assert failures(outcome) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", "closed_at, requested_at"): 3
    }
    assert validate("int_service_requests", frame).passed  # pooled, it would pass


def test_marts_that_drift_from_the_facts_fail_their_suites(samples_built, tmp_path):
    warehouse = copy_warehouse(samples_built, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update marts.mart_response_times set requests = requests + 1 "
            "where city_id = 'bloomington' and department_id = 'bloomington.engineering' "
            "and category_id = 'sidewalks' and requested_month = date '2012-05-01'"
        )
        # the h3 layer loses Bloomington's missed collections of May 2012 (3 requests)
        con.execute(
            "delete from marts.mart_service_gaps where city_id = 'bloomington' and layer = 'h3' "
            "and category_id = 'missed_collection' and requested_month = date '2012-05-01'"
        )
        con.execute(
            "update marts.fct_service_requests set hours_to_close = -hours_to_close "
            "where city_id = 'toronto' or (city_id = 'chicago' and hours_to_close > 0)"
        )
    response_times, _ = mart_outcome(warehouse, "mart_response_times")
    assert failures(response_times) == {
        ("expect_column_pair_values_to_be_equal", "requests, fct_requests"): 1,
        ("expect_column_pair_values_to_be_equal", "requests, counted_plus_excluded"): 1,
    }
    gaps, frame = mart_outcome(warehouse, "mart_service_gaps")
    assert failures(gaps) == {("expect_column_values_to_be_in_set", "in_mart"): 1}
    missing = frame[~frame["in_mart"]].iloc[0]
    assert (missing["city_id"], missing["layer"], missing["fct_requests"]) == ("bloomington", "h3", 3)
    facts, _ = mart_outcome(warehouse, "fct_service_requests")
    assert failures(facts) == {("expect_column_values_to_be_between", "hours_to_close"): 2}


def stand_in(key: AssetKey, partitions_def=None):
    """The guarded asset, writing nothing: its check reads the warehouse as the test left it."""

    @asset(key=key, partitions_def=partitions_def)
    def _asset() -> None:
        return None

    return _asset


def test_checks_run_through_dagster(samples_built, tmp_path):
    warehouse = copy_warehouse(samples_built, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        # three NYC rows whose change stamp (6 February 2018) is 5 days after their load
        con.execute(
            "insert into raw_nyc.service_requests by name "
            "select * replace (source_id || '-9' as source_id, unique_key || '-9' as unique_key, "
            "timestamptz '2018-02-06 12:00:00+00' as source_updated_at, "
            "timestamptz '2018-02-01 12:00:00+00' as _loaded_at) "
            "from raw_nyc.service_requests where source_id in ('24445308', '24445313', '24445314')"
        )
    nyc = REGISTRY.city("nyc")
    raw_step = layer_checks("raw_checks", "NYC's raw suite", [raw_suite_check(nyc, warehouse)], warehouse)

    # a raw partition's run: the check is not partitioned, it reads the run's day
    result = materialize(
        [stand_in(raw_asset_key(nyc), city_partitions(nyc)), raw_step],
        partition_key="2018-02-06",
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success  # a blocking check with severity ERROR fails the run
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == ("raw_socrata_suite", False)
    assert evaluation.partition is None
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["window"] == "changes from 2018-02-06 to 2018-02-07 (excl.)"
    assert isinstance(metadata["seconds"], float) and metadata["seconds"] > 0  # its evaluation's time
    # the partition's window with NYC's 72 h lookback: [3 February, 7 February)
    assert metadata["rows_validated"] == 3
    assert metadata["expectations_failed"] == 1
    assert metadata["unexpected_count: column_values_to_be_between(source_updated_at_days_after_load)"] == 3
    (failure,) = metadata["failed_expectations"]
    assert failure["partial_unexpected_list"] == [5.0] * 3
    assert {row["source_id"] for row in failure["unexpected_rows"]} == {
        "24445308-9",
        "24445313-9",
        "24445314-9",
    }
    assert evaluation.description.startswith("raw_socrata for nyc: 1 of 10 expectations failed on 3 rows.")

    # a run over a partition range checks once, over the whole range, in one step
    intermediate, hotspots = (
        AssetKey(["intermediate", "int_service_requests"]),
        AssetKey(["marts", "mart_hotspots"]),
    )
    suites = [
        audit_suite_check(audits()[suite], REGISTRY, warehouse)
        for suite in ("int_service_requests", "mart_hotspots")
    ]
    result = materialize(
        [stand_in(intermediate), stand_in(hotspots), layer_checks("checks", "two suites", suites, warehouse)],
        tags={
            "dagster/asset_partition_range_start": "2026-02-08",
            "dagster/asset_partition_range_end": "2026-02-10",
        },
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # Jersey City's 20 requests changed 8-10 February 2026; the mart check ignores the window
    assert evaluations["int_service_requests_suite"].passed
    assert evaluations["int_service_requests_suite"].partition is None
    assert evaluations["int_service_requests_suite"].metadata["rows_validated"].value == 20
    assert evaluations["mart_hotspots_suite"].passed
    assert evaluations["mart_hotspots_suite"].metadata["rows_validated"].value == count(
        warehouse, "select count(*) from marts.mart_hotspots"
    )
    # both in one step, whose every check reported
    assert {e.step_key for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"} == {
        "checks"
    }


def test_checks_fit_the_asset_graph(dbt_manifest, tmp_path):
    from orchestration.assets.transformation import civic311_dbt_canonical, civic311_dbt_marts
    from orchestration.resources import build_resources

    warehouse = tmp_path / "warehouse.duckdb"
    checks = build_layer_checks(REGISTRY, warehouse)
    defs = Definitions(
        assets=[
            *(build_raw_assets(city, warehouse) for city in REGISTRY.cities),
            civic311_dbt_canonical(),
            civic311_dbt_marts(),
        ],
        asset_checks=checks,
        resources=build_resources(),
    )
    graph = defs.resolve_asset_graph()  # fails on a missing asset or a partitions mismatch
    assert [check.node_def.name for check in checks] == ["raw_checks", "canonical_checks", "mart_checks"]
    keys = {key for check in checks for key in check.check_keys}
    suites = {key for key in keys if key.name.endswith("_suite")}
    assert len(suites) == len(REGISTRY.cities) + 1 + len(mart_suites()) == 22
    assert all(graph.get(key).blocking for key in suites)
    assert {key.name for key in keys if key.asset_key == raw_asset_key(REGISTRY.city("detroit"))} == {
        "raw_seeclickfix_suite",
        "source_ids_present_and_unique",
        "reconciled_with_source",
        "fresh_within_cadence",
    }
    # Open311 cannot be counted: no reconciliation there.
    boston_open311 = raw_asset_key(REGISTRY.city("boston_open311"))
    assert "reconciled_with_source" not in {key.name for key in keys if key.asset_key == boston_open311}
    # each audit view is built in the dbt step of the model it audits, so it is there
    # when the check runs: int_service_requests's in step 1, whose checks gate step 2
    for audit in audits().values():
        canonical = audit.asset_key in civic311_dbt_canonical().keys
        step = civic311_dbt_canonical() if canonical else civic311_dbt_marts()
        assert audit.asset_key in step.keys
        assert AssetKey(["audit", audit.model]) in step.keys, audit.model
    assert AssetKey(["audit", "audit_int_service_requests"]) in civic311_dbt_canonical().keys


def test_a_model_check_reads_its_window_only_after_a_passing_check_of_what_was_written(
    samples_built, tmp_path
):
    warehouse = copy_warehouse(samples_built, tmp_path)
    intermediate = AssetKey(["intermediate", "int_service_requests"])
    checks = layer_checks(
        "canonical_checks",
        "the int suite",
        [audit_suite_check(audits()["int_service_requests"], REGISTRY, warehouse)],
        warehouse,
        windowed_after_check=True,
    )
    instance = DagsterInstance.ephemeral()
    every_row = count(warehouse, "select count(*) from audit.audit_int_service_requests")
    # Jersey City's 20 requests changed 8-10 February 2026, the newest changes of the samples
    february = {
        "dagster/asset_partition_range_start": "2026-02-08",
        "dagster/asset_partition_range_end": "2026-02-10",
    }

    def run(selection, tags):
        result = materialize(selection, tags=tags, instance=instance, raise_on_error=False)
        evaluations = result.get_asset_check_evaluations()
        if not evaluations:
            return result, None
        (evaluation,) = evaluations
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        return result, (evaluation.passed, metadata["rows_validated"], metadata["window"])

    # no earlier result: the window is not enough
    first, outcome = run([stand_in(intermediate), checks], february)
    assert outcome == (True, every_row, "every row, not the run's window: it has no earlier result")
    # checked since it was last written: the window is enough
    _, outcome = run([stand_in(intermediate), checks], february)
    assert outcome == (True, 20, "changes from 2026-02-08 to 2026-02-11 (excl.)")
    # written by a run that did not check it: every row again
    unchecked, outcome = run([stand_in(intermediate)], {})
    assert outcome is None
    _, outcome = run([stand_in(intermediate), checks], february)
    assert outcome == (
        True,
        every_row,
        f"every row, not the run's window: run {unchecked.run_id[:8]} wrote "
        "intermediate/int_service_requests without this check",
    )
    # Jersey City's closings a day before their requests fail the window's check...
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update staging.stg_jersey_city__service_requests set closed_at = requested_at - interval 1 day "
            "where closed_at is not null"
        )
    failed, outcome = run([stand_in(intermediate), checks], february)
    assert not failed.success
    assert outcome == (False, 20, "changes from 2026-02-08 to 2026-02-11 (excl.)")
    # ...and every later check, whatever its window, until every row passes again
    _, outcome = run([stand_in(intermediate), checks], {"dagster/partition": "2018-02-06"})
    assert outcome == (
        False,
        every_row,
        f"every row, not the run's window: its last result (run {failed.run_id[:8]}) failed",
    )


def test_a_frame_read_in_chunks_has_the_outcome_of_the_whole_frame(samples_built, tmp_path, monkeypatch):
    warehouse = copy_warehouse(samples_built, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        # 10 NYC requests twice, and 3.5% more of SF's closed requests closed before they
        # were made: under its 95% `mostly` in all, over it in some chunks
        con.execute(
            "insert into staging.stg_nyc__service_requests "
            "select * from staging.stg_nyc__service_requests order by request_id limit 10"
        )
        (closed,) = con.execute(
            "select count(*) from staging.stg_sf__service_requests where closed_at is not null"
        ).fetchone()
        con.execute(
            "update staging.stg_sf__service_requests set closed_at = requested_at - interval 1 hour "
            "where request_id in (select request_id from staging.stg_sf__service_requests "
            f"where closed_at is not null order by hash(request_id) limit {int(closed * 0.035)})"
        )
    monkeypatch.setattr(expectations, "CHUNK_ROWS", 2_000)
    params = window_params(*EVERYTHING, REGISTRY.cities)
    chunks = list(read_chunks("int_service_requests", warehouse, params))
    whole = read_frame("int_service_requests", warehouse, params)
    assert len(chunks) > 5 and sum(len(chunk) for chunk in chunks) == len(whole)
    assert all(len(chunk.columns) == len(whole.columns) for chunk in chunks)
    # every key's rows in one chunk
    keys = [set(zip(chunk.city_id, chunk.request_id, strict=True)) for chunk in chunks]
    assert sum(len(k) for k in keys) == len(set().union(*keys))

    chunked = validate_chunks("int_service_requests", chunks, by_city=True)
    at_once = validate_by_city("int_service_requests", whole)

    def found(outcome):
        return {(f["city"], f["expectation"], f["column"]): f["unexpected_count"] for f in outcome.failed}

    assert (
        found(chunked)
        == found(at_once)
        == {("nyc", "expect_compound_columns_to_be_unique", "city_id, request_id"): 20}
    )
    assert (chunked.passed, chunked.cities, chunked.rows, chunked.evaluated) == (
        at_once.passed,
        at_once.cities,
        at_once.rows,
        at_once.evaluated,
    )
    # a chunk alone would fail SF: the threshold applies to the sums, not chunk by chunk
    assert any(not validate("int_service_requests", chunk[chunk.city_id == "sf"]).passed for chunk in chunks)
