"""What each kind of subscription finds new, as items keyed so that none alerts twice.

- fresh_requests: requests created within the subscription's hours, from the working
  warehouse's facts as soon as a refresh has built them (before the marts' checks and
  the publish: a same-day alert is about a record, not a figure).
- emerging_hotspot, gap_change, sla_breach: from the published serving file only, so
  an alert never reports figures that failed a check.
- dataset_rollover: from the portal's catalog, for cities with a dataset per year
  (ingestion/sources/socrata/catalog.py).

Duplicates (`is_duplicate`) and information-only requests never alert. Names and
free text never leave: an item carries the request's id, category, service, department,
times, status, address and ZIP, which the published facts hold too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from ingestion.registry import City, Registry
from orchestration.alerts.store import Item
from orchestration.alerts.subscriptions import Subscription

LISTED = 20  # items a message lists; the rest are counted


@dataclass
class Found:
    """A subscription's items in one city, with the message's title and lines."""

    subscription: Subscription
    city_id: str
    items: list[Item]
    title: str = ""
    lines: list[str] = field(default_factory=list)
    # emerging_hotspot: what the map needs (drawn once the new items are known).
    week: object = None


def map_layers(registry: Registry, city_ids: list[str]) -> list[str]:
    """The layers an area subscription without areas reads, as "city/layer": each city's
    map layer (its first boundary layer, else zip) and H3, as its maps show them. Without
    this, one place would alert once per layer it lies in (a ZIP and its MODZCTA)."""
    layers = []
    for city_id in city_ids:
        city = registry.city(city_id)
        layers += [f"{city_id}/{city.boundaries[0].name if city.boundaries else 'zip'}", f"{city_id}/h3"]
    return layers


def _filters(
    sub: Subscription,
    alias: str,
    *,
    area_layer_column: str | None,
    area_id_column: str,
    default_layers: list[str] | None = None,
) -> tuple[str, list]:
    """The SQL conditions (and parameters) of the subscription's categories and areas;
    without areas, `default_layers` ("city/layer") when given."""
    sql, params = _categories(sub, alias)
    if sub.areas:
        ors = []
        for area in sub.areas:
            if area_layer_column is None:
                ors.append(f"{alias}.{area_id_column} in ?")
            else:
                ors.append(f"({alias}.{area_layer_column} = ? and {alias}.{area_id_column} in ?)")
                params.append(area.layer)
            params.append(list(area.ids))
        sql.append("(" + " or ".join(ors) + ")")
    elif default_layers is not None and area_layer_column is not None:
        sql.append(f"{alias}.city_id || '/' || {alias}.{area_layer_column} in ?")
        params.append(default_layers)
    return "".join(f" and {condition}" for condition in sql), params


def _categories(sub: Subscription, alias: str) -> tuple[list[str], list]:
    """The condition (and parameter) of the subscription's categories, if it names any."""
    return ([f"{alias}.category_id in ?"], [list(sub.categories)]) if sub.categories else ([], [])


def fresh_requests(
    con: duckdb.DuckDBPyConnection, sub: Subscription, now: datetime, registry: Registry
) -> list[Found]:
    """Requests created in the last `hours` before `now` (the working warehouse's facts),
    in the subscription's categories and areas (any layer int_request_areas places them in)."""
    conditions, category_params = _categories(sub, "f")
    categories = "".join(f" and {condition}" for condition in conditions)
    areas_sql, area_params = "", []
    if sub.areas:
        ors = " or ".join("(a.layer = ? and a.area_id in ?)" for _ in sub.areas)
        areas_sql = (
            " and exists (select 1 from intermediate.int_request_areas as a "
            f"where a.city_id = f.city_id and a.request_id = f.request_id and ({ors}))"
        )
        for area in sub.areas:
            area_params += [area.layer, list(area.ids)]
    cursor = con.execute(
        f"""
        select f.city_id, f.request_id, f.category_id, f.service_name, f.department, f.requested_at,
            f.status, f.address, f.zip
        from marts.fct_service_requests as f
        where f.city_id in ? and f.requested_at > ? and f.requested_at <= ?
            and not f.is_duplicate and not f.is_information_only
            {categories}{areas_sql}
        order by f.requested_at, f.request_id
        """,
        [list(sub.cities), now - timedelta(hours=sub.window_hours), now, *category_params, *area_params],
    )
    return _grouped(sub, cursor, lambda r: f"{r['city_id']}:{r['request_id']}")


def emerging_hotspots(
    con: duckdb.DuckDBPyConnection, sub: Subscription, now: datetime, registry: Registry
) -> list[Found]:
    """Emerging (area, category, week)s of each city's two latest weeks in the published
    mart_hotspots: the newest, and the one before, which a missed evaluation leaves."""
    extra, params = _filters(
        sub,
        "h",
        area_layer_column="layer",
        area_id_column="area_id",
        default_layers=map_layers(registry, sub.cities),
    )
    cursor = con.execute(
        f"""
        select h.city_id, h.layer, h.area_id, h.category_id, h.requested_week as week, h.requests,
            round(h.baseline_mean, 2) as expected
        from marts.mart_hotspots as h
        where h.city_id in ? and h.is_emerging and h.area_id <> 'unlocated'
            and h.requested_week >= (
                select max(w.requested_week) - interval 7 day from marts.mart_hotspots as w
                where w.city_id = h.city_id
            )
            {extra}
        order by h.city_id, h.requested_week, h.requests desc, h.area_id
        """,
        [list(sub.cities), *params],
    )
    return _grouped(
        sub, cursor, lambda r: f"{r['city_id']}:{r['layer']}:{r['area_id']}:{r['category_id']}:{r['week']}"
    )


def gap_changes(
    con: duckdb.DuckDBPyConnection, sub: Subscription, now: datetime, registry: Registry
) -> list[Found]:
    """Areas flagged chronically_underserved in their city's latest month of the published
    mart_service_gaps that were not flagged the month before."""
    extra, params = _filters(
        sub,
        "g",
        area_layer_column="layer",
        area_id_column="area_id",
        default_layers=map_layers(registry, sub.cities),
    )
    cursor = con.execute(
        f"""
        with latest as (
            select city_id, max(requested_month) as month from marts.mart_service_gaps group by city_id
        )
        select g.city_id, g.layer, g.area_id, g.category_id, g.requested_month as month,
            round(g.gap_index, 2) as gap_index, g.gap_months_in_last_4
        from marts.mart_service_gaps as g
        join latest as l on g.city_id = l.city_id and g.requested_month = l.month
        where g.city_id in ? and g.chronically_underserved
            and not exists (
                select 1 from marts.mart_service_gaps as p
                where p.city_id = g.city_id and p.layer = g.layer and p.area_id = g.area_id
                    and p.category_id = g.category_id and p.requested_month = l.month - interval 1 month
                    and p.chronically_underserved
            )
            {extra}
        order by g.city_id, g.gap_index desc, g.area_id
        """,
        [list(sub.cities), *params],
    )
    return _grouped(
        sub, cursor, lambda r: f"{r['city_id']}:{r['layer']}:{r['area_id']}:{r['category_id']}:{r['month']}"
    )


def sla_breaches(
    con: duckdb.DuckDBPyConnection, sub: Subscription, now: datetime, registry: Registry
) -> list[Found]:
    """Requests of the published facts still open whose SLA came due in the last `hours`
    before `now` (older breaches are history, not news). The facts place a request by
    its ZIP: the only area layer this kind filters on."""
    extra, params = _filters(sub, "f", area_layer_column=None, area_id_column="zip")
    cursor = con.execute(
        f"""
        select f.city_id, f.request_id, f.department, f.category_id, f.service_name, f.requested_at,
            f.sla_due_at, f.address, f.zip
        from marts.fct_service_requests as f
        where f.city_id in ? and f.closed_at is null and f.sla_due_at <= ? and f.sla_due_at > ?
            and not f.is_duplicate and not f.is_information_only
            {extra}
        order by f.department, f.sla_due_at, f.request_id
        """,
        [list(sub.cities), now, now - timedelta(hours=sub.window_hours), *params],
    )
    return _grouped(sub, cursor, lambda r: f"{r['city_id']}:{r['request_id']}:{r['sla_due_at']}")


def _grouped(sub: Subscription, cursor: duckdb.DuckDBPyConnection, key) -> list[Found]:
    """The query's rows as items of one Found per city, each payload the row by column
    name (times as ISO 8601 text), keyed by `key(payload)`."""
    names = [column[0] for column in cursor.description]
    found: dict[str, Found] = {}
    for values in cursor.fetchall():
        payload = {
            name: value.isoformat() if isinstance(value, date) else value
            for name, value in zip(names, values, strict=True)
        }
        city_id = payload["city_id"]
        found.setdefault(city_id, Found(sub, city_id, [])).items.append(Item(key(payload), city_id, payload))
    return list(found.values())


EVALUATORS = {
    "fresh_requests": fresh_requests,
    "emerging_hotspot": emerging_hotspots,
    "gap_change": gap_changes,
    "sla_breach": sla_breaches,
}


def dataset_rollovers(
    subs: list[Subscription],
    now: datetime,
    registry: Registry,
    base_url: Callable[[City], str],
    say: Callable[[str], None],
) -> list[Found]:
    """Cities whose current year (in their timezone) has begun with no dataset mapped:
    one item per city, year and candidate found, so a candidate that appears later
    alerts again."""
    from ingestion.redact import RedactedError
    from ingestion.sources.socrata.catalog import rollover

    found = []
    for city_id in sorted({c for sub in subs for c in sub.cities}):
        city = registry.city(city_id)
        try:
            missing = rollover(city, now.astimezone(city.tz).date(), base_url=base_url(city))
        except RedactedError as problem:
            say(f"{city_id}: the portal's catalog could not be asked, so its rollover is unknown: {problem}")
            continue
        if missing is None:
            continue
        candidates = [{"id": i, "name": n} for i, n in missing.candidates]
        payload = {
            "city_id": city_id,
            "year": missing.year,
            "mapped_year": missing.mapped_year,
            "mapped_id": missing.mapped_id,
            "mapped_name": missing.mapped_name,
            "expected_name": missing.expected_name,
            "candidates": candidates,
        }
        key = f"{city_id}:{missing.year}:{','.join(c['id'] for c in candidates) or 'no candidate'}"
        item = Item(key, city_id, payload)
        found += [Found(sub, city_id, [item]) for sub in subs if city_id in sub.cities]
    return found


def describe(found: Found, items: list[Item]) -> tuple[str, list[str]]:
    """The message's title and lines for the new `items` of `found`."""
    sub, city, count = found.subscription, found.city_id, len(items)
    rows = [item.payload for item in items]
    if sub.kind == "fresh_requests":
        title = f"civic311 {sub.name}: {count} new request{'s' if count != 1 else ''} in {city}"
        lines = [
            f"{r['requested_at'][:16]} UTC · {r['category_id']} · {r['service_name']} · {r['department']} · "
            f"{r['address'] or 'no address'} {r['zip'] or ''} · #{r['request_id']}".replace("  ", " ")
            for r in rows[:LISTED]
        ]
    elif sub.kind == "emerging_hotspot":
        title = f"civic311 {sub.name}: {count} emerging hotspot{'s' if count != 1 else ''} in {city}"
        lines = [
            f"week of {r['week']} · {r['layer']} {r['area_id']} · {r['category_id']}: "
            f"{r['requests']} requests vs {r['expected']:.1f} expected"
            for r in rows[:LISTED]
        ]
    elif sub.kind == "gap_change":
        areas = f"{count} area{'s' if count != 1 else ''}"
        title = f"civic311 {sub.name}: {areas} newly chronically underserved in {city}"
        lines = [
            f"{r['month'][:7]} · {r['layer']} {r['area_id']} · {r['category_id']}: "
            f"gap index {r['gap_index']}, a gap in {r['gap_months_in_last_4']} of the last 4 months"
            for r in rows[:LISTED]
        ]
    elif sub.kind == "freshness":
        title = f"civic311 {sub.name}: {city} is stale ({count} raw asset{'s' if count != 1 else ''})"
        lines = [
            f"{r['asset']}: last loaded {r['last_loaded'] or 'never'}, past its cadence of "
            f"{r['cadence_hours']:g} h since {r['since']} (its freshness policy failed)"
            for r in rows
        ]
        lines.append(
            "Check that the daily_refresh sensor runs and the city's portal answers (`civic311 status`)."
        )
    elif sub.kind == "dataset_rollover":
        (missing,) = rows
        year = missing["year"]
        title = f"civic311 {sub.name}: {city} has no dataset mapped for {year}"
        mapped = f"{missing['mapped_id']}, {missing['mapped_name'] or 'not in the catalog'}"
        lines = [
            f"{year} has begun and source.datasets_by_year maps {city}'s years up to "
            f"{missing['mapped_year']} ({mapped}): requests made in {year} are not loaded."
        ]
        for candidate in missing["candidates"]:
            lines.append(
                f"The portal's catalog lists {candidate['name']!r} as {candidate['id']}: add "
                f"`{year}: {candidate['id']}` under source.datasets_by_year in ingestion/cities.yaml."
            )
        if not missing["candidates"]:
            looked = (
                f"no dataset named {missing['expected_name']!r}"
                if missing["expected_name"]
                else "no name to look for (the mapped dataset's name does not hold its year)"
            )
            lines.append(
                f"The catalog has {looked}: find the {year} dataset on the portal and add it under "
                "source.datasets_by_year in ingestion/cities.yaml."
            )
    elif sub.kind == "run_failure":
        (failure,) = rows
        title = (
            f"civic311 {sub.name}: run of {failure['job']} failed ({failure['partition'] or 'no partition'})"
        )
        lines = [
            *(
                f"failed check {c['check']}: {c['description'] or 'no description'}"
                for c in failure["checks"]
            ),
            *(f"failed step {step}" for step in failure["steps"]),
            *([f"error: {failure['error']}"] if failure["error"] else []),
            f"run {failure['run_id']} (the UI's Runs page; `civic311 status` lists the failing checks)",
        ]
    else:
        title = (
            f"civic311 {sub.name}: {count} open request{'s' if count != 1 else ''} past their SLA in {city}"
        )
        by_department: dict[str, list[dict]] = {}
        for r in rows:
            by_department.setdefault(r["department"] or "no department", []).append(r)
        lines = [
            f"{department}: {len(breached)} past due (the oldest due {oldest(breached)[:16]} UTC)"
            for department, breached in sorted(by_department.items(), key=lambda kv: -len(kv[1]))
        ][:LISTED]
    if count > LISTED and sub.kind != "sla_breach":
        lines.append(f"... and {count - LISTED} more (every one is in the message's items)")
    return title, lines


def oldest(breached: list[dict]) -> str:
    return min(b["sla_due_at"] for b in breached)
