"""`civic311 demo`: the demo city's boundary layers, Dagster runs over the demo
window (each ends with a publish when every blocking check passed), its maps,
then a short summary with the quarantine counts and the publish."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
from dagster import AssetKey, DagsterInstance
from dagster._core.remote_representation.code_location import InProcessCodeLocation

from ingestion.geography.city_maps import SYNTHETIC_ENV, untested
from ingestion.pipeline import warehouse_path
from ingestion.registry import City, load_registry
from orchestration.launch import code_location, failures, launch, launch_days
from orchestration.progress import Display
from orchestration.quarantine import format_counts, read_counts
from orchestration.serving import published_dir, serving_path


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def area_layer(con: duckdb.DuckDBPyConnection, city: City) -> str:
    """The layer the summary shows areas in: the city's first boundary layer once it
    is loaded, else the reported ZIP (the area marts count each request per layer)."""
    if city.boundaries:
        layer = city.boundaries[0].name
        (rows,) = con.execute(
            "select count(*) from marts.mart_service_gaps where city_id = ? and layer = ?", [city.id, layer]
        ).fetchone()
        if rows:
            return layer
    return "zip"


def mart_lines(con: duckdb.DuckDBPyConnection, city: City) -> list[str]:
    """A few lines from each mart: what a BI user would look at first."""
    layer = area_layer(con, city)
    return [
        *response_time_lines(con, city.id),
        *service_gap_lines(con, city.id, layer),
        *hotspot_lines(con, city.id, layer),
        *demand_timing_lines(con, city.id),
        *department_lines(con, city.id),
        *history_lines(con, city.id),
        *joint_spike_lines(con, city.id),
    ]


def response_time_lines(con: duckdb.DuckDBPyConnection, city_id: str) -> list[str]:
    """The slowest department and category groups of the latest month."""
    rows = con.execute(
        """
        select department_id, category_id, requested_month, counted_requests, open_requests,
               median_hours_to_close, km_median_hours_to_close, pct_closed_within_sla
        from marts.mart_response_times
        where city_id = $city
          and requested_month = (
              select max(requested_month) from marts.mart_response_times where city_id = $city
          )
          and counted_requests >= 20
        order by km_median_hours_to_close desc nulls first
        limit 3
        """,
        {"city": city_id},
    ).fetchall()
    lines = ["Response times, the slowest groups of the latest month (hours to close):"]
    if not rows:
        lines.append("  none: no department and category had 20 counted requests in the latest month")
    for (
        department_id,
        category_id,
        month,
        counted,
        still_open,
        closed_only_median,
        kaplan_meier_median,
        pct_within_sla,
    ) in rows:
        sla = "no SLA known" if pct_within_sla is None else f"{pct_within_sla:.0f}% within SLA"
        lines.append(
            f"  {department_id} / {category_id} {month:%Y-%m}: {counted:,} counted, {still_open:,} open; "
            f"closed-only median {_hours(closed_only_median)}, "
            f"Kaplan-Meier median {_hours(kaplan_meier_median)}, {sla}"
        )
    return lines


def service_gap_lines(con: duckdb.DuckDBPyConnection, city_id: str, layer: str) -> list[str]:
    """How many area-months have a gap index, are gaps, or are chronically underserved; the widest."""
    tested, gaps, chronic = con.execute(
        "select count(gap_index), count(*) filter (where is_gap), "
        "count(*) filter (where chronically_underserved) from marts.mart_service_gaps "
        "where city_id = ? and layer = ?",
        [city_id, layer],
    ).fetchone()
    lines = [
        f"Service gaps by {layer}: {tested:,} area-months with a gap index, {gaps:,} gaps, "
        f"{chronic:,} chronically underserved" + ("; the widest:" if gaps else ".")
    ]
    if not tested:
        lines.append("  no area-month has enough closed and open requests for a gap index (docs/metrics.md)")
    rows = con.execute(
        "select area_id, category_id, requested_month, gap_index, km_median_hours_to_close, "
        "median_hours_to_close, city_km_median_hours_to_close, city_median_hours_to_close "
        "from marts.mart_service_gaps where city_id = ? and layer = ? and is_gap "
        "order by gap_index desc limit 2",
        [city_id, layer],
    ).fetchall()
    for (
        area_id,
        category_id,
        month,
        gap_index,
        kaplan_meier_median,
        closed_only_median,
        city_kaplan_meier_median,
        city_closed_only_median,
    ) in rows:
        lines.append(
            f"  {area_id} {category_id} {month:%Y-%m}: gap index {gap_index:.1f} (Kaplan-Meier / "
            f"closed-only median {_hours(kaplan_meier_median)} / {_hours(closed_only_median)} h, "
            f"city-wide {_hours(city_kaplan_meier_median)} / {_hours(city_closed_only_median)} h)"
        )
    return lines


def hotspot_lines(con: duckdb.DuckDBPyConnection, city_id: str, layer: str) -> list[str]:
    """How many area-weeks are emerging hotspots; the least likely under their baseline."""
    (emerging,) = con.execute(
        "select count(*) from marts.mart_hotspots where city_id = ? and layer = ? and is_emerging",
        [city_id, layer],
    ).fetchone()
    if not emerging:
        why = untested(con, city_id, layer)
        said = f"{why} (docs/metrics.md)." if why else "The weeks tested against their baseline held none."
        return [f"Hotspots by {layer}: no emerging area-week. {said}"]
    lines = [f"Hotspots by {layer}: {emerging:,} emerging area-weeks; the most surprising:"]
    rows = con.execute(
        "select area_id, category_id, requested_week, requests, baseline_mean, poisson_p "
        "from marts.mart_hotspots where city_id = ? and layer = ? and is_emerging "
        "order by poisson_p, requests desc limit 2",
        [city_id, layer],
    ).fetchall()
    for area_id, category_id, week, requests, baseline_mean, poisson_p in rows:
        lines.append(
            f"  {area_id} {category_id}, week of {week:%Y-%m-%d}: {requests:,} requests against "
            f"a baseline of {baseline_mean:.1f} a week (p = {poisson_p:.1e})"
        )
    return lines


def demand_timing_lines(con: duckdb.DuckDBPyConnection, city_id: str) -> list[str]:
    """The busiest hour of the week of the three largest categories."""
    rows = con.execute(
        """
        select category_id, day_name, hour_of_day, share_of_week
        from marts.mart_demand_timing
        where city_id = $city
          and category_id in (
              select category_id from marts.mart_demand_timing where city_id = $city
              group by category_id order by sum(requests) desc limit 3
          )
        qualify row_number() over (partition by category_id order by requests desc, hour_of_week) = 1
        order by share_of_week desc
        """,
        {"city": city_id},
    ).fetchall()
    lines = ["Demand timing, the busiest hour of the week of the largest categories:"]
    for category_id, day_name, hour, share_of_week in rows:
        lines.append(f"  {category_id}: {day_name} {hour:02d}:00 ({share_of_week:.1%} of the week)")
    return lines


def department_lines(con: duckdb.DuckDBPyConnection, city_id: str) -> list[str]:
    """Hand-offs and duplicates across departments; the highest duplicate rates."""
    handoffs, duplicate_rate = con.execute(
        "select sum(handoffs_out), sum(duplicate_requests) / sum(requests) "
        "from marts.mart_cross_department where city_id = ?",
        [city_id],
    ).fetchone()
    if not duplicate_rate:
        return [
            f"Departments: {handoffs or 0:,} hand-offs between departments; no request was flagged a "
            "duplicate, so there are no duplicate rates to rank."
        ]
    lines = [
        f"Departments: {handoffs or 0:,} hand-offs between departments, "
        f"{duplicate_rate:.1%} of requests duplicates; the highest duplicate rates:"
    ]
    rows = con.execute(
        "select department_id, category_id, sum(duplicate_requests) / sum(requests) as rate, sum(requests) "
        "from marts.mart_cross_department where city_id = ? group by all having sum(requests) >= 50 "
        "order by rate desc limit 2",
        [city_id],
    ).fetchall()
    for department_id, category_id, rate, requests in rows:
        lines.append(f"  {department_id} / {category_id}: {rate:.1%} of {requests:,} requests")
    return lines


def history_lines(con: duckdb.DuckDBPyConnection, city_id: str) -> list[str]:
    """Hand-offs and reopenings caught between loads; the busiest hand-offs."""
    events = dict(
        con.execute(
            "select event_type, count(*) from marts.fct_request_events where city_id = ? "
            "and event_type in ('reassigned', 'reopened') group by 1",
            [city_id],
        ).fetchall()
    )
    if not events.get("reassigned"):
        return [
            f"History: no hand-off and {events.get('reopened', 0):,} reopenings caught between loads "
            "(a hand-off shows once a later load sees a request's department change)."
        ]
    lines = [
        f"History: {events['reassigned']:,} hand-offs and {events.get('reopened', 0):,} reopenings "
        "caught between loads; the busiest hand-offs:"
    ]
    rows = con.execute(
        "select from_department_id, to_department_id, count(*) as handoffs, "
        "median(hours_with_from_department) from marts.fct_request_events "
        "where city_id = ? and event_type = 'reassigned' group by all order by handoffs desc limit 2",
        [city_id],
    ).fetchall()
    for from_department, to_department, handoffs, median_hours_with_from in rows:
        lines.append(
            f"  {from_department} -> {to_department}: {handoffs:,} hand-offs, "
            f"median {_hours(median_hours_with_from)} h with {from_department} first"
        )
    return lines


def joint_spike_lines(con: duckdb.DuckDBPyConnection, city_id: str) -> list[str]:
    (joint,) = con.execute(
        "select count(*) from marts.mart_department_joint_spikes where city_id = ?", [city_id]
    ).fetchone()
    said = f"Joint spikes: {joint:,} area-weeks where two or more departments' demand spiked together"
    if joint:
        return [said]
    (weeks,) = con.execute(
        "select count(distinct date_trunc('week', requested_at_local)) from marts.fct_service_requests "
        "where city_id = ?",
        [city_id],
    ).fetchone()
    if weeks <= 8:
        return [
            f"{said}: too little history to test, {weeks} week{'' if weeks == 1 else 's'} of requests "
            "and a week is tested only after 8 weeks of baseline (docs/metrics.md)."
        ]
    return [f"{said}: the weeks tested against their 8-week baseline held none."]


def map_lines(con: duckdb.DuckDBPyConnection, city: City, maps: dict[str, str]) -> list[str]:
    """Which boundary layers the demo loaded, and where its maps are."""
    loaded = con.execute(
        "select layer, vintage, count(*), count(population) from geography.boundaries "
        "where city_id = ? group by all order by layer",
        [city.id],
    ).fetchall()
    lines = ["Boundary layers:"]
    lines += [
        f"  {layer} ({vintage}): {areas:,} areas, {people:,} with population"
        for layer, vintage, areas, people in loaded
    ]
    skipped = [layer.name for layer in city.boundaries if not layer.loads_offline]
    if skipped:
        lines.append(
            f"  not loaded, their files need a download: {', '.join(skipped)} "
            "(run refresh_boundaries online, or with CIVIC311_BOUNDARY_MIRROR set)"
        )
    lines.append(f"Maps (SYNTHETIC data; also in the Dagster UI, asset maps/{city.id}):")
    lines += [f"  {name}: {path}" for name, path in maps.items()]
    return lines


def publish_lines(warehouse: Path) -> list[str]:
    """What BI tools read now: the last publish in the serving file, and its Parquet."""
    serving, parquet = serving_path(warehouse), published_dir(warehouse) / "current"
    if not serving.exists():
        return ["Published: nothing yet (no refresh passed every blocking check)."]
    with duckdb.connect(str(serving), read_only=True) as con:
        publish_id, published_at, rows = con.execute(
            "select publish_id, published_at, table_rows from civic311.publishes"
        ).fetchone()
    rows = json.loads(rows)
    tables = [t for t in rows if not t.startswith("geo/")]
    return [
        f"Published {publish_id} at {published_at:%Y-%m-%d %H:%M:%S} UTC, after every blocking check passed:",
        f"  serving file (BI tools, read-only): {serving}  ({len(tables)} tables, "
        f"{rows.get('fct_service_requests', 0):,} facts)",
        f"  Parquet: {parquet}/<table>.parquet; GeoParquet: {parquet}/geo/ (docs/bi.md)",
    ]


def summary(warehouse: Path, city_id: str, maps: dict[str, str] | None = None) -> str:
    city = load_registry().city(city_id)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        layers = [
            ("raw", f"raw_{city_id}.service_requests"),
            ("staging", f"staging.stg_{city_id}__service_requests"),
            ("intermediate", "intermediate.int_service_requests"),
            ("marts", "marts.fct_service_requests"),
        ]
        counts = [(name, con.execute(f"select count(*) from {t}").fetchone()[0]) for name, t in layers]  # noqa: S608
        first, last, open_share = con.execute(
            "select min(requested_at_local), max(requested_at_local), avg((closed_at is null)::int) "
            "from marts.fct_service_requests where city_id = ?",
            [city_id],
        ).fetchone()
        marts = mart_lines(con, city)
        drawn = map_lines(con, city, maps) if maps is not None else []
        held = format_counts(read_counts(con))
    lines = [
        "",
        "civic311 demo: SYNTHETIC NYC-shaped data (generated, not real 311 records)",
        "",
        "Rows per layer:",
        *(f"  {name:<13}{n:>10,}" for name, n in counts),
        "",
        f"Requested: {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} (city local time); "
        f"{open_share:.1%} not closed yet (open, as the marts count them)",
        "",
        *marts,
        "",
        *drawn,
        "",
        held,
        "",
        *publish_lines(warehouse),
        "",
        f"Working warehouse: {warehouse}",
        "Definitions of every figure: docs/metrics.md.",
        "Next: `make dev` opens the Dagster UI on http://127.0.0.1:3000 over this warehouse.",
    ]
    return "\n".join(lines)


EXAMPLE_ALERTS = Path(__file__).resolve().parents[1] / "alerts.example.yaml"


def run_demo(
    city_id: str,
    replay_url: str,
    start: date,
    end: date,
    before_last_day: Callable[[], int] | None = None,
    verbose: bool = False,
) -> int:
    """The city's boundary layers that need no download, then one backfill run over
    every day but the last, then the last day on its own, as the daily refresh
    would run it, then the city's maps. `before_last_day` changes the replayed
    portal in between (the demo's synthetic closings, reopenings and hand-offs),
    so the last run has history to catch. Each run is launched from the workspace's
    code location, so the UI lists it under its job."""
    os.environ["CIVIC311_REPLAY_URL"] = replay_url
    os.environ[SYNTHETIC_ENV] = "1"
    from orchestration.resources import prepare_dbt_manifest

    prepare_dbt_manifest()
    display = Display("demo", verbose=verbose)
    with display.shown(), code_location(DagsterInstance.get()) as location:
        outcome = demo_runs(city_id, start, end, before_last_day, display, location)
    print("\n".join([*display.notes, display.ended()]).strip())
    if isinstance(outcome, list):
        print("\n".join(outcome))
        return 1
    print(summary(warehouse_path(), city_id, outcome))
    print("\n".join(demo_alerts(warehouse_path(), datetime.combine(end, time(), UTC))))
    return 0


def demo_alerts(warehouse: Path, now: datetime) -> list[str]:
    """alerts.example.yaml evaluated once after the last publish, at `now` (the end of the
    demo's window: today, unless --end moved it), the alerts recorded in alerts.sent and
    delivered to the console, here."""
    from orchestration.alerts.run import run_alerts
    from orchestration.alerts.subscriptions import KINDS, load_subscriptions

    printed: list[str] = []
    subscriptions = load_subscriptions(EXAMPLE_ALERTS)
    report = run_alerts(KINDS, warehouse, now=now, subscriptions=subscriptions, say=printed.append)
    lines = [
        "",
        f"Alerts ({EXAMPLE_ALERTS.name}, evaluated once after the last publish; SYNTHETIC): "
        f"{len(report.messages)} recorded in alerts.sent, delivered to the console:",
        *(f"  {line}" for text in printed for line in text.splitlines()),
    ]
    alerted = {message.subscription for message in report.messages}
    lines += [
        f"  {sub.name} ({sub.kind}): nothing new"
        for sub in subscriptions.subscriptions
        if sub.name not in alerted
    ]
    lines.append("Next: `civic311 alerts list` shows them again, with each channel's outcome.")
    return lines


def demo_runs(
    city_id: str,
    start: date,
    end: date,
    before_last_day: Callable[[], int] | None,
    display: Display,
    location: InProcessCodeLocation,
) -> dict[str, str] | list[str]:
    """The demo's runs; the maps drawn, or the lines that say what failed."""
    offline = [layer.name for layer in load_registry().city(city_id).boundaries if layer.loads_offline]
    display.phase("loading the boundary layers")
    result = launch(
        "refresh_boundaries",
        run_config={"ops": {"geography__boundaries": {"config": {"cities": [city_id], "layers": offline}}}},
        location=location,
        display=display,
    )
    if not result.success:
        return ["civic311 demo: loading the boundary layers failed.", *failures(result)]
    last_day = end - timedelta(days=1)
    runs = [(start, last_day - timedelta(days=1)), (last_day, last_day)]
    for number, (first, last) in enumerate(runs):
        if first > last:  # a one-day demo has no backfill before its last day
            continue
        if number == 1 and before_last_day is not None:
            changed = before_last_day()
            display.note(f"The replayed portal changed {changed:,} requests on {last_day} (SYNTHETIC).")
        result = launch_days(f"refresh_{city_id}", first, last, location=location, display=display)
        if not result.success:
            said = f"civic311 demo: the run of {first} to {last} failed; nothing was published."
            return [said, *failures(result)]
    display.phase("drawing the maps")
    maps_only = [AssetKey(["maps", city_id])]
    result = launch("draw_maps", asset_selection=maps_only, location=location, display=display)
    if not result.success:
        return ["civic311 demo: drawing the maps failed.", *failures(result)]
    (drawn,) = result.get_asset_materialization_events()
    metadata = drawn.materialization.metadata
    maps = {name: metadata[name].path for name in ("service_gap_png", "hotspot_png")}
    return maps | {name: path for name, path in metadata["exports"].data.items() if name.endswith(".parquet")}
