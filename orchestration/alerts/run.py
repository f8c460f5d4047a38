"""One evaluation of the subscriptions: find what is new, record it once, deliver it.

`run_alerts` is what the `alerts` job's run does (launched by the sensors in
orchestration/alerts/sensors.py, never inside a refresh) and what `civic311 demo`
runs after its last publish:

1. For each subscription of the kinds asked for: its evaluator's items, per city;
   those never sent before become one message per (subscription, city), recorded in
   `alerts.sent` and `alerts.messages` before anything is delivered. An emerging
   hotspot's message carries its map, drawn from the published areas.
2. For every subscription: each message a channel has not delivered yet (this run's,
   and any earlier one that failed) is delivered, and the outcome recorded.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingestion.registry import Registry, load_registry
from ingestion.warehouse_lock import warehouse_lock
from orchestration.alerts.delivery import Message, Outcome, channel_id, deliver
from orchestration.alerts.evaluate import EVALUATORS, Found, dataset_rollovers, describe
from orchestration.alerts.store import (
    alerts_db,
    alerts_db_path,
    record_delivery,
    record_message,
    undelivered,
    unsent,
)
from orchestration.alerts.subscriptions import AlertsError, Subscriptions, load_subscriptions
from orchestration.resources import replay_url
from orchestration.serving import published_dir, serving_path


def synthetic() -> bool:
    """Whether the warehouse holds the demo's SYNTHETIC data (the demo sets it): its
    alerts and maps say so."""
    from ingestion.geography.city_maps import SYNTHETIC_ENV

    return os.environ.get(SYNTHETIC_ENV) == "1"


# Kinds read from the working warehouse (the rest read the published serving file).
FROM_WAREHOUSE = ("fresh_requests",)
# Kinds found by evaluating published data (run_failure items come from the failed run).
PUBLISHED_KINDS = ("emerging_hotspot", "gap_change", "sla_breach")
# Kinds found by asking the portals.
PORTAL_KINDS = ("dataset_rollover",)


@dataclass
class Report:
    messages: list[Message] = field(default_factory=list)
    outcomes: list[tuple[Message, Outcome]] = field(default_factory=list)

    @property
    def failed(self) -> list[tuple[Message, Outcome]]:
        return [(message, outcome) for message, outcome in self.outcomes if not outcome.delivered]


def run_alerts(
    kinds: Sequence[str],
    warehouse: Path,
    *,
    now: datetime | None = None,
    subscriptions: Subscriptions | None = None,
    registry: Registry | None = None,
    say: Callable[[str], None] = print,
    found: Sequence[Found] = (),
) -> Report:
    """Evaluate the subscriptions of `kinds` at `now` (default: the clock), with `found`
    (items found elsewhere: a failed run's), then deliver every message not yet
    delivered, of any subscription."""
    now = now or datetime.now(UTC)
    registry = registry or load_registry()
    subscriptions = subscriptions or load_subscriptions(registry=registry)
    report = Report()
    chosen = [s for s in subscriptions.subscriptions if s.kind in kinds and s.kind in EVALUATORS]
    asking = [s for s in subscriptions.subscriptions if s.kind in kinds and s.kind in PORTAL_KINDS]
    found = [*_evaluate(chosen, warehouse, now, registry), *found]
    if asking:
        found += dataset_rollovers(asking, now, registry, lambda city: city.base_url(replay_url()), say)
    with alerts_db(alerts_db_path(warehouse), write=True) as alerts:
        for entry in found:
            new = unsent(alerts, entry.subscription.name, entry.items)
            if not new:
                continue
            title, lines = describe(entry, new)
            title = f"[SYNTHETIC] {title}" if synthetic() else title
            message_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
            attachment = None
            if entry.subscription.kind == "emerging_hotspot":
                attachment, note = _hotspot_map(entry, new, warehouse, registry, message_id)
                lines = [*lines, note] if note else lines
            body = {"lines": lines, "items": [item.payload for item in new]}
            record_message(
                alerts,
                message_id=message_id,
                subscription=entry.subscription.name,
                kind=entry.subscription.kind,
                title=title,
                body=body,
                attachment=attachment,
                items=new,
            )
            report.messages.append(
                Message(message_id, entry.subscription.name, entry.subscription.kind, title, body, attachment)
            )
        for sub in subscriptions.subscriptions:
            channels = {channel_id(channel): channel for channel in sub.deliver}
            for pending in undelivered(alerts, sub.name, list(channels)):
                message = Message(
                    pending["message_id"], sub.name, pending["kind"], pending["title"], pending["body"],
                    pending["attachment"],
                )  # fmt: skip
                for name in pending["channels"]:
                    outcome = deliver(message, channels[name], say=say)
                    said = "delivered" if outcome.delivered else "failed"
                    record_delivery(alerts, message.message_id, name, said, outcome.attempts, outcome.error)
                    report.outcomes.append((message, outcome))
    return report


def _evaluate(chosen, warehouse: Path, now: datetime, registry: Registry) -> list[Found]:
    found: list[Found] = []
    local = [s for s in chosen if s.kind in FROM_WAREHOUSE]
    published = [s for s in chosen if s.kind not in FROM_WAREHOUSE]
    if local:
        # The working warehouse, read between its writers' steps.
        with (
            warehouse_lock(warehouse, command="civic311 alerts"),
            duckdb.connect(str(warehouse), read_only=True) as con,
        ):
            for sub in local:
                found += EVALUATORS[sub.kind](con, sub, now, registry)
    if published:
        serving = serving_path(warehouse)
        if not serving.exists():
            raise AlertsError(
                f"{serving}: nothing has been published yet; the alerts on published data wait for the "
                "first publish (`civic311 publish`)"
            )
        with duckdb.connect(str(serving), read_only=True) as con:
            for sub in published:
                found += EVALUATORS[sub.kind](con, sub, now, registry)
    return found


def _hotspot_map(
    entry: Found, new, warehouse: Path, registry: Registry, message_id: str
) -> tuple[Path | None, str]:
    """The new hotspots of the city on its map, from the published areas' shapes."""
    import geopandas as gpd
    import pandas as pd

    from ingestion.geography.maps import h3_cell_polygons, hotspot_map

    shapes = published_dir(warehouse) / "current" / "geo" / "dim_area.parquet"
    if not shapes.exists():
        return None, "No map: the publish wrote no area shapes (load the boundary layers)."
    city = registry.city(entry.city_id)
    areas = gpd.read_parquet(shapes)
    areas = areas[areas["city_id"] == city.id]
    spots = pd.DataFrame([item.payload for item in new])
    # The newest week's hotspots: a map is of one week.
    week = max(spots["week"])
    earlier = int((spots["week"] != week).sum())
    spots = spots[spots["week"] == week]
    layers = [layer for layer in spots["layer"].unique() if layer != "h3"]
    layer = layers[0] if layers else (city.boundaries[0].name if city.boundaries else "zip")
    context = areas[areas["layer"] == layer][["area_id", "geometry"]]
    if context.empty:
        return None, f"No map: the published areas have no {layer} layer for {city.id}."
    cells = h3_cell_polygons(spots.loc[spots["layer"] == "h3", "area_id"]).assign(layer="h3")
    polygons = pd.concat([context.assign(layer=layer), cells[["area_id", "geometry", "layer"]]])
    drawn = spots[spots["layer"].isin([layer, "h3"])].merge(polygons, on=["layer", "area_id"], how="inner")
    drawn = drawn.rename(columns={"category_id": "category"})
    path = warehouse.parent / "alerts" / f"{message_id}.png"
    hotspot_map(
        context,
        gpd.GeoDataFrame(drawn, geometry="geometry", crs=areas.crs),
        city_name=city.name,
        week=pd.Timestamp(week).date(),
        path=path,
        layer_label=next((b.label for b in city.boundaries if b.name == layer), layer),
        synthetic=synthetic(),
    )
    said = [f"The map shows the {len(drawn)} of the week of {week} on the {layer} layer and H3"]
    if len(spots) > len(drawn):
        said.append(f"{len(spots) - len(drawn)} of that week on other layers are listed only")
    if earlier:
        said.append(f"{earlier} of the week before are listed only")
    return path, "; ".join(said) + "."
