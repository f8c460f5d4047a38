"""The taxonomy gate: a blocking check on int_service_requests that stops the marts
when too many of one city's requests in the run's window are unclassified (their
type matches no seed row and no rule; intermediate.int_service_types says which).
Each city is held to its own registry threshold, `taxonomy.max_unclassified_share`,
never to a share pooled over cities. A type that is merely new does not stop
anything: the build goes on and its requests stay in the marts as `unclassified`.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from ingestion.registry import Registry
from orchestration.checks.expectations import INT_ASSET, window_params
from orchestration.checks.layers import Check

CHECK_NAME = "unclassified_share_within_threshold"
TOP_TYPES = 20

# The requests that changed since the window began (updated_at from start - the city's
# lookback on, or no change stamp at all), the window of the int_service_requests
# suite (its meta.window), each with where its category comes from. A type
# int_service_types does not hold yet counts as unclassified.
UNCLASSIFIED_TYPES_SQL = """
with

requests as (

    select city_id, service_name, service_subtype
    from intermediate.int_service_requests
    where updated_at is null
        or updated_at >= $start - coalesce($lookback_hours[city_id], 0) * interval 1 hour

),

classified as (

    select
        requests.city_id,
        requests.service_name,
        requests.service_subtype,
        coalesce(types.category_source, 'unclassified') = 'unclassified' as is_unclassified

    from requests
    left join intermediate.int_service_types as types
        on requests.city_id = types.city_id
        and requests.service_name is not distinct from types.service_name
        and requests.service_subtype is not distinct from types.service_subtype

)

select city_id, service_name, service_subtype, is_unclassified, count(*) as requests
from classified
group by all
"""


@dataclass(frozen=True)
class CityShare:
    city_id: str
    requests: int
    unclassified: int
    max_share: float

    @property
    def share(self) -> float:
        return self.unclassified / self.requests if self.requests else 0.0

    @property
    def passed(self) -> bool:
        return self.share <= self.max_share


@dataclass(frozen=True)
class TaxonomyReport:
    cities: list[CityShare]
    # (city_id, service_name, service_subtype, requests) of the unclassified types
    unclassified_types: list[tuple[str, str | None, str | None, int]]

    @property
    def passed(self) -> bool:
        return all(city.passed for city in self.cities)

    def top_types(self) -> list[dict[str, Any]]:
        """The most requested unclassified types, those of failing cities first."""
        failing = {city.city_id for city in self.cities if not city.passed}
        ranked = sorted(
            self.unclassified_types, key=lambda t: (t[0] not in failing, -t[3], t[0], str(t[1:3]))
        )
        return [
            {"city_id": city, "service_name": name, "service_subtype": subtype, "requests": requests}
            for city, name, subtype, requests in ranked[:TOP_TYPES]
        ]

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "cities": MetadataValue.json(
                {
                    city.city_id: {
                        "requests": city.requests,
                        "unclassified_requests": city.unclassified,
                        "unclassified_share": round(city.share, 6),
                        "max_unclassified_share": city.max_share,
                        "passed": city.passed,
                    }
                    for city in self.cities
                }
            ),
            "top_unclassified_types": MetadataValue.json(self.top_types()),
        }
        for city in self.cities:
            metadata[f"unclassified_share: {city.city_id}"] = round(city.share, 6)
            metadata[f"requests_in_window: {city.city_id}"] = city.requests
        return metadata

    def description(self) -> str:
        def figure(city: CityShare) -> str:
            return f"{city.share:.1%} unclassified ({city.unclassified:,} of {city.requests:,} requests)"

        if not self.cities:
            return "No request changed in the window."
        if self.passed:
            return "Every city is within its max_unclassified_share: " + "; ".join(
                f"{city.city_id} {figure(city)}" for city in self.cities
            )
        lines = []
        for city in self.cities:
            if city.passed:
                continue
            lines.append(
                f"{city.city_id}: {figure(city)} in the window, above its taxonomy.max_unclassified_share "
                f"of {city.max_share:.1%}; the marts are not rebuilt. Fix: run "
                f"`civic311 taxonomy unmapped --city {city.city_id}` and add service_type_categories "
                "rows (or service_type_rules patterns) for the types it lists, or raise the city's "
                "taxonomy.max_unclassified_share in the registry if the share is expected; then rerun "
                "the partition."
            )
        return "\n".join(lines)


def unclassified_shares(
    warehouse: Path, registry: Registry, start: datetime, end: datetime
) -> TaxonomyReport:
    """Each registry city's unclassified share of the requests changed since `start` (less
    its lookback), up to now: like the suite's frame, the query has no end."""
    params = window_params(start, end, registry.cities)
    del params["end"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(UNCLASSIFIED_TYPES_SQL, params).fetchall()
    totals: dict[str, list[int]] = {}
    unclassified_types = []
    for city_id, name, subtype, is_unclassified, requests in rows:
        counted = totals.setdefault(city_id, [0, 0])
        counted[0] += requests
        if is_unclassified:
            counted[1] += requests
            unclassified_types.append((city_id, name, subtype, requests))
    known = {city.id: city for city in registry.cities}
    cities = [
        CityShare(city_id, requests, unclassified, known[city_id].taxonomy.max_unclassified_share)
        for city_id, (requests, unclassified) in sorted(totals.items())
        if city_id in known
    ]
    return TaxonomyReport(cities=cities, unclassified_types=unclassified_types)


def taxonomy_check(registry: Registry, warehouse: Path) -> Check:
    spec = AssetCheckSpec(
        name=CHECK_NAME,
        asset=INT_ASSET,
        description=(
            "No city has more of its requests in the run's window unclassified (no seed row, no "
            "rule) than its registry taxonomy.max_unclassified_share (default 5%)."
        ),
        blocking=True,
    )

    def evaluate(start: datetime, end: datetime) -> AssetCheckResult:
        report = unclassified_shares(warehouse, registry, start, end)
        return AssetCheckResult(
            passed=report.passed,
            severity=AssetCheckSeverity.ERROR,
            description=report.description(),
            metadata=report.metadata(),
        )

    return Check(spec, evaluate)
