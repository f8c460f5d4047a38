"""`civic311 demo` end to end on a small synthetic feed: generate, replay, the
boundary layer, Dagster runs over the window, maps, summary."""

from __future__ import annotations

import base64
import json

import duckdb
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance
from PIL import Image

from ingestion.geography.city_maps import SYNTHETIC_ENV
from orchestration.cli import main

pytestmark = pytest.mark.integration


def test_demo_builds_one_fact_row_per_generated_request(
    tmp_path, warehouse, monkeypatch, capsys, dbt_manifest
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SYNTHETIC_ENV, raising=False)  # the demo sets it; put it back after
    code = main(["demo", "--requests", "3000", "--days", "3", "--end", "2026-11-01"])
    out = capsys.readouterr().out
    assert code == 0, out

    (feed,) = (tmp_path / "data" / "demo").glob("synthetic_nyc_*[0-9].json")
    assert json.loads(feed.with_name(feed.name + ".meta.json").read_text())["synthetic"] is True
    generated = {r["unique_key"] for r in json.loads(feed.read_text())}
    assert len(generated) == 3000
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ids = [r[0] for r in con.execute("select request_id from marts.fct_service_requests").fetchall()]
        reasons = dict(
            con.execute(
                "select hours_to_close_null_reason, count(*) from marts.fct_service_requests group by 1"
            ).fetchall()
        )
    assert len(ids) == len(set(ids)) == 3000
    assert set(ids) == generated
    # The generator's defects surface as null durations with their reason.
    assert reasons["closed_before_requested"] == 15 and reasons["date_before_2000"] == 6
    assert "SYNTHETIC" in out and "Rows per layer" in out and str(warehouse) in out
    assert "make dev" in out and "127.0.0.1:3000" in out
    # A few lines from each mart.
    headings = ("Response times", "Service gaps", "Hotspots", "Demand timing", "Departments", "Joint spikes")
    for heading in headings:
        assert heading in out, heading
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts = {
            table: con.execute(f"select count(*) from marts.{table}").fetchone()[0]  # noqa: S608
            for (table,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' "
                "and table_name like 'mart_%'"
            ).fetchall()
        }
    assert len(marts) == 8
    # Three days are too few for an 8-week baseline, so no joint spikes; the portal's
    # synthetic next-day changes give the last run hand-offs and reopenings to catch.
    assert all(n > 0 for t, n in marts.items() if t != "mart_department_joint_spikes"), marts
    assert "The replayed portal changed" in out and "SYNTHETIC" in out
    # Open means not closed, as the marts count it.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (not_closed,) = con.execute(
            "select avg((closed_at is null)::int) from marts.fct_service_requests"
        ).fetchone()
    assert f"{not_closed:.1%} not closed yet" in out
    # A section with nothing to show says why: no heading ends its list with nothing under it.
    lines = out.splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        assert not line.endswith(":") or after.startswith("  "), line
    assert "Too little history to test" in out
    # The example subscriptions, evaluated once at the window's end: what the console got
    # is in alerts.sent, and `civic311 alerts list` shows the same alerts.
    from orchestration.alerts.store import alerts_db, alerts_db_path

    with alerts_db(alerts_db_path(warehouse), write=False) as con:
        titles = [
            t for (t,) in con.execute("select title from alerts.messages order by created_at").fetchall()
        ]
        (items,) = con.execute("select count(*) from alerts.sent").fetchone()
    assert titles and items >= len(titles)
    heading = "Alerts (alerts.example.yaml, evaluated once after the last publish; SYNTHETIC)"
    assert f"{heading}: {len(titles)} recorded" in out
    assert all(f"ALERT {title}" in out and title.startswith("[SYNTHETIC] ") for title in titles)
    assert main(["alerts", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(title in listed for title in titles) and listed.count("console delivered") == len(titles)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        events = dict(
            con.execute("select event_type, count(*) from marts.fct_request_events group by 1").fetchall()
        )
        handed = con.execute(
            "select count(*) from marts.fct_request_events e join marts.fct_service_requests f "
            "using (city_id, request_id) "
            "where e.event_type = 'reassigned' and e.to_department_id = f.department_id"
        ).fetchone()[0]
    assert events["reassigned"] > 0 and events["reopened"] > 0 and events["closed"] > 0
    # Every hand-off ends where the request now is.
    assert handed == events["reassigned"]
    assert "hand-offs and" in out and " -> " in out

    # Maps. The demo loads only NYC's layer whose files ship in a package (MODZCTA);
    # the others need a download.
    assert "modzcta (2020): 178 areas, 178 with population" in out
    assert "not loaded, their files need a download: community_district, council_district" in out
    with duckdb.connect(str(warehouse), read_only=True) as con:
        layers = dict(
            con.execute("select layer, count(*) from intermediate.int_request_areas group by 1").fetchall()
        )
        gap_layers = {
            r[0] for r in con.execute("select distinct layer from marts.mart_service_gaps").fetchall()
        }
    assert layers == {"modzcta": 3000, "zip": 3000, "h3": 3000}
    assert gap_layers == {"modzcta", "zip", "h3"}

    maps = warehouse.parent / "maps" / "nyc"
    for name in ("service_gaps.png", "hotspots.png"):
        assert str(maps / name) in out
        with Image.open(maps / name) as image:
            assert image.format == "PNG" and image.size == (1200, 1200)
    # GeoJSON holds the latest period over simplified shapes; Parquet the whole history.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for export, mart, period, mapped in (
            ("service_gaps_modzcta", "mart_service_gaps", "requested_month", "gap_index is not null"),
            ("hotspots_modzcta", "mart_hotspots", "requested_week", "is_emerging"),
        ):
            mine = f"from marts.{mart} where city_id = 'nyc' and layer = 'modzcta'"
            (rows,) = con.execute(f"select count(*) {mine}").fetchone()  # noqa: S608
            (latest,) = con.execute(
                f"select count(*) {mine} and area_id <> 'unlocated' and {mapped} "  # noqa: S608
                f"and {period} = (select max({period}) {mine})"
            ).fetchone()
            assert pq.read_metadata(maps / f"{export}.parquet").num_rows == rows
            assert len(json.loads((maps / f"{export}.geojson").read_text())["features"]) == latest
    # Three days: gap indexes to map, no week with a full baseline to test for hotspots.
    assert json.loads((maps / "service_gaps_modzcta.geojson").read_text())["features"]
    assert pq.read_metadata(maps / "areas_modzcta.parquet").num_rows == 178
    exported = sum(path.stat().st_size for path in maps.glob("*_modzcta.*"))
    assert exported < 10_000_000, exported

    # The UI shows what the run recorded: the images inline in the asset's metadata.
    event = DagsterInstance.get().get_latest_materialization_event(AssetKey(["maps", "nyc"]))
    metadata = event.asset_materialization.metadata
    for key, png in (("service_gap_map", "service_gaps.png"), ("hotspot_map", "hotspots.png")):
        text = metadata[key].value
        encoded = text.split("data:image/png;base64,", 1)[1].rstrip(")")
        assert base64.b64decode(encoded) == (maps / png).read_bytes(), key
    # Three days cannot be tested for hotspots, and the map says so rather than "none".
    assert "Too little history to test" in metadata["hotspot_map"].value
    assert metadata["layer"].value == "modzcta"
    assert metadata["month"].value == "2026-10"

    # The demo ends published: the serving file and Parquet BI tools read, and the
    # quarantine counts (the synthetic feed has no unkeyed records, and says so).
    serving = warehouse.parent / "serving.duckdb"
    assert f"serving file (BI tools, read-only): {serving}" in out
    assert "Quarantine: empty" in out
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_service_requests").fetchone() == (3000,)
        (publish_id,) = con.execute("select publish_id from civic311.publishes").fetchone()
    assert f"Published {publish_id}" in out
    current = warehouse.parent / "published" / "current"
    assert current.resolve().name == publish_id
    assert (current / "fct_service_requests.parquet").stat().st_size > 0
    assert (current / "geo" / "mart_service_gaps.parquet").stat().st_size > 0
