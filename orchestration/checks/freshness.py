"""Per-city freshness: is the newest change loaded for a city within the cadence
its registry entry expects? A warning, not a gate: a quiet feed does not stop the
other cities from publishing, but it shows in the UI (Checks tab of the raw asset)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec

from ingestion.pipeline import raw_dataset, raw_table_exists
from ingestion.registry import City
from orchestration.assets.ingestion import raw_asset_key
from orchestration.checks.layers import Check


def newest_change(warehouse: Path, city: City) -> datetime | None:
    """The latest source_updated_at in the city's raw requests; None before its first load."""
    if not raw_table_exists(warehouse, city):
        return None
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            f'select max(source_updated_at) from "{raw_dataset(city)}".service_requests'
        ).fetchone()[0]


def freshness_check(city: City, warehouse: Path) -> Check:
    """The window does not matter: the newest change loaded is what it measures."""
    cadence = timedelta(hours=city.source.cadence_hours)
    spec = AssetCheckSpec(
        asset=raw_asset_key(city),
        name="fresh_within_cadence",
        description=(
            f"The newest {city.name} change loaded is less than {city.source.cadence_hours:g} hours "
            "old (the registry's source.cadence_hours)."
        ),
        blocking=False,
    )

    def evaluate(start: datetime | None = None, end: datetime | None = None) -> AssetCheckResult:
        now = datetime.now(UTC)
        newest = newest_change(warehouse, city)
        age = None if newest is None else now - newest
        passed = age is not None and age <= cadence
        description = None
        if not passed:
            seen = "nothing loaded yet" if newest is None else f"newest change {newest:%Y-%m-%d %H:%M} UTC"
            description = (
                f"{city.id}: {seen}, older than its cadence of {city.source.cadence_hours:g} h. "
                "Check that the feed still publishes and that the daily refresh ran; if the city "
                "updates less often, raise source.cadence_hours in ingestion/cities.yaml."
            )
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.WARN,
            description=description,
            metadata={
                "newest_change": newest.isoformat() if newest else "",
                "age_hours": round(age.total_seconds() / 3600, 1) if age is not None else -1.0,
                "cadence_hours": city.source.cadence_hours,
            },
        )

    return Check(spec, evaluate, windowed=False)
