"""The per-city freshness check: the newest change loaded against the registry's
cadence. A warning, never a gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from dagster import AssetCheckSeverity

from ingestion.registry import load_registry
from orchestration.checks.freshness import freshness_check
from tests.helpers.registry import write_registry

pytestmark = pytest.mark.integration


def raw_table(warehouse, *stamps: datetime) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists raw_nyc")
        con.execute(
            "create or replace table raw_nyc.service_requests "
            "(city_id varchar, source_id varchar, source_updated_at timestamptz)"
        )
        for n, stamp in enumerate(stamps):
            con.execute("insert into raw_nyc.service_requests values ('nyc', ?, ?)", [str(n), stamp])


def test_a_feed_is_fresh_within_its_cadence_and_stale_after(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", cadence_hours=6)))
    city = load_registry().city("nyc")
    check = freshness_check(city, warehouse)
    now = datetime.now(UTC)

    result = check.evaluate()
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    assert "nothing loaded yet" in result.description and "cadence_hours" in result.description

    raw_table(warehouse, now - timedelta(days=3), now - timedelta(hours=2))
    result = check.evaluate()
    assert result.passed and 1.9 <= result.metadata["age_hours"].value <= 2.1

    raw_table(warehouse, now - timedelta(hours=30))
    result = check.evaluate()
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    assert result.description.startswith("nyc: newest change") and "6 h" in result.description
    assert result.metadata["cadence_hours"].value == 6


def test_freshness_checks_never_block(tmp_path, warehouse):
    from orchestration.definitions import build_definitions

    defs = build_definitions(warehouse=warehouse)
    graph = defs.resolve_asset_graph()
    fresh = [key for key in graph.asset_check_keys if key.name == "fresh_within_cadence"]
    assert len(fresh) == len(load_registry().cities)
    assert not any(graph.get_check_spec(key).blocking for key in fresh)
