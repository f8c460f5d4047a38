"""What an analyst sees after `civic311 demo`, in Debian's Chromium, with a screenshot of
each page (tests/helpers/browser.py says where):

- the Evidence dashboard (bi/) built from the demo's serving file, served on 127.0.0.1:
  every chart draws, the map draws its areas on a blank background, the figures are the
  serving file's, nothing is logged to the console and no request leaves the machine;
- the Dagster UI (`civic311 dev`) over the demo's instance: the asset graph, the
  canonical model's checks (Succeeded, none Skipped), the demo's runs on their job's
  page, NYC's raw partitions from the city's own first day, and the gap map opened from
  the maps asset's metadata."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, RunsFilter
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ingestion.geography.city_maps import SYNTHETIC_ENV
from ingestion.registry import load_registry
from orchestration.cli import main
from orchestration.serving import serving_path
from tests.helpers.browser import chromium, visit
from tests.helpers.data import REPO
from tests.helpers.warehouse import file_digest, instance_folder, wire_warehouse
from tests.helpers.webserver import CIVIC311, free_port, stop_dev, wait_for_code_location
from tooling import bi

pytestmark = pytest.mark.integration

# The fewest synthetic requests (seeded, so the same every run) that still give every
# page real data over 10 weeks: emerging hotspots after the 8-week baseline, hand-offs,
# a gap index in most MODZCTAs for noise. The demo's time hardly depends on it.
DEMO_REQUESTS = 8000
DEMO_DAYS = 70
CHART = "div[_echarts_instance_] canvas"
MAP_AREA = ".leaflet-overlay-pane path"
# A chart that draws its axes and nothing else has a few thousand pixels.
DRAWN = 10_000


@dataclass(frozen=True)
class Demo:
    warehouse: Path
    serving: Path
    dagster_home: Path
    seconds: float


@pytest.fixture(scope="module")
def demo(tmp_path_factory, dbt_manifest) -> Iterator[Demo]:
    """`civic311 demo` over DEMO_DAYS days in a folder of its own, with a private warehouse and
    Dagster home, wired through the environment for the module's tests as `make demo`
    wires them."""
    work = tmp_path_factory.mktemp("bi_demo")
    home = instance_folder(work / "dagster_home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        warehouse = wire_warehouse(work / "data" / "warehouse.duckdb", home, monkeypatch)
        for name in (SYNTHETIC_ENV, "CIVIC311_SERVING", "CIVIC311_PUBLISHED"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(work)
        started = time.monotonic()
        code = main(
            ["demo", "--requests", str(DEMO_REQUESTS), "--days", str(DEMO_DAYS), "--end", "2026-11-01"]
        )
        assert code == 0
        yield Demo(warehouse, serving_path(warehouse), home, time.monotonic() - started)
    shutil.rmtree(home, ignore_errors=True)


def _served(serving: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(serving), read_only=True) as con:
        return con.execute(sql).fetchall()


def _expected(serving: Path) -> dict:
    """What the pages must show, from the serving file; each query follows its page's
    defaults (NYC's MODZCTAs, the category with the most areas with a gap index)."""
    ((publish_id,),) = _served(serving, "select publish_id from civic311.publishes")
    ((department, counted),) = _served(
        serving,
        "select departments.department_name, response.counted_requests "
        "from marts.mart_response_times as response "
        "join marts.dim_department as departments using (department_id) "
        "where response.requested_month = (select max(requested_month) from marts.mart_response_times) "
        "order by response.counted_requests desc limit 1",
    )
    ((category, gap_areas, gaps),) = _served(
        serving,
        "select category_id, count(gap_index), count(*) filter (where is_gap) from marts.mart_service_gaps "
        "where layer = 'modzcta' and requested_month = "
        "(select max(requested_month) from marts.mart_service_gaps where layer = 'modzcta') "
        "group by category_id order by count(gap_index) desc limit 1",
    )
    ((emerging,),) = _served(
        serving,
        "select count(*) filter (where is_emerging) from marts.mart_hotspots where layer = 'modzcta' "
        "and requested_week > (select max(requested_week) from marts.mart_hotspots) - interval 8 weeks",
    )
    ((handoffs, pairs),) = _served(
        serving,
        "select sum(handoffs), count(distinct (from_department_id, to_department_id)) "
        "from marts.mart_department_handoffs",
    )
    return {
        "publish_id": publish_id,
        "department": department,
        "counted": counted,
        "category": category,
        "gap_areas": gap_areas,
        "gaps": gaps,
        "emerging": emerging,
        "handoffs": handoffs,
        "pairs": pairs,
    }


def test_the_dashboard_builds_from_the_demo_and_every_page_draws_offline(demo):
    expected = _expected(demo.serving)
    # Every page shows real data, or the test would pass over an empty chart.
    assert expected["gap_areas"] >= 50 and expected["gaps"] > 0
    assert expected["emerging"] > 0 and expected["handoffs"] > 0

    timings = {"demo": demo.seconds}
    started = time.monotonic()
    bi.install()
    timings["npm ci"] = time.monotonic() - started
    served = file_digest(demo.serving)
    started = time.monotonic()
    site = bi.build(demo.serving)
    timings["sources + build"] = time.monotonic() - started
    # Read, never written: Evidence's connector opens a file read-only.
    assert file_digest(demo.serving) == served
    assert (site / "index.html").is_file()
    shapes = (bi.PROJECT / bi.AREA_SHAPES).read_text()
    assert shapes.count('"area_key"') >= 178  # NYC's MODZCTAs, and H3 cells

    httpd = bi.server(site, 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{httpd.server_address[1]}"
    started = time.monotonic()
    texts, visits = {}, []
    try:
        with chromium() as browser:
            for page, wait_for, charts in (
                ("index", "h1", 0),
                ("response-times", CHART, 2),
                ("service-gaps", MAP_AREA, 1),
                ("hotspots", CHART, 1),
                ("demand-timing", CHART, 2),
                ("handoffs", CHART, 1),
            ):
                url = f"{root}/" if page == "index" else f"{root}/{page}"
                with visit(browser, url, wait_for, f"bi-{page}.png") as opened:
                    # ECharts animates its series in; the pixels count once it is done.
                    opened.page.wait_for_timeout(1500)
                    pixels = opened.chart_pixels()
                    assert len(pixels) == charts and all(drawn > DRAWN for drawn in pixels), (page, pixels)
                    texts[page] = opened.page.inner_text("body")
                    if page == "service-gaps":
                        map_drawn = _map(opened.page)
                visits.append(opened)
    finally:
        httpd.shutdown()
        httpd.server_close()
    timings["browser"] = time.monotonic() - started
    phases = ", ".join(f"{name} {seconds:.0f}" for name, seconds in timings.items())
    print(f"bi dashboard phases (s): {phases}")

    for opened in visits:
        assert opened.console == [], (opened.url, opened.console)
        assert opened.foreign_requests == [], (opened.url, opened.foreign_requests)
        assert opened.screenshot.stat().st_size > 10_000, opened.screenshot

    assert expected["publish_id"] in texts["index"]
    assert "from 1 city feed, in the months" in texts["index"]
    assert expected["department"] in texts["response-times"]
    assert f"{expected['counted']:,}" in texts["response-times"]
    # The map: one shape per area with a gap index, coloured by it, on blank tiles.
    assert map_drawn["areas"] == expected["gap_areas"], map_drawn
    assert map_drawn["colours"] > 10 and map_drawn["foreign_tiles"] == 0 and map_drawn["tiles"] > 0
    gaps = f"{expected['gap_areas']} areas with a gap index, of which {expected['gaps']} are service gaps"
    assert gaps in texts["service-gaps"]
    assert f"{expected['emerging']} emerging area-weeks among" in texts["hotspots"]
    assert f"{expected['handoffs']} hand-offs between {expected['pairs']} pairs" in texts["handoffs"]
    assert "Monday" in texts["demand-timing"] and "All categories" in texts["demand-timing"]


def _map(page) -> dict:
    """The Leaflet map's drawn areas, their distinct fills, and its tiles (all data: URLs)."""
    return page.evaluate(
        """() => {
            const areas = [...document.querySelectorAll('.leaflet-overlay-pane path')];
            const tiles = [...document.querySelectorAll('img.leaflet-tile')];
            return {areas: areas.length, colours: new Set(areas.map((a) => a.getAttribute('fill'))).size,
                    tiles: tiles.length,
                    foreign_tiles: tiles.filter((t) => !t.src.startsWith('data:')).length};
        }"""
    )


# The Dagster UI's pages the acceptance asks to see, each with what proves it shows the
# demo's runs: the global asset graph, a check list, a job's runs, a raw asset's
# partitions and the maps' metadata.
UI_PAGES = {
    "asset-graph": ("/asset-groups", "text=Global asset lineage"),
    "checks": ("/assets/intermediate/int_service_requests?view=checks", "text=int_service_requests_suite"),
    "job-runs": ("/locations/civic311/jobs/refresh_nyc/runs", "text=Launched by"),
    "partitions": ("/assets/raw/nyc/service_requests?view=partitions", "text=Materialized"),
    "maps": ("/assets/maps/nyc", "text=service_gap_map"),
}


def _dismiss_welcome(page) -> None:
    """The UI greets a new browser with a newsletter dialog over every page: Skip it."""
    try:
        page.wait_for_selector("text=Join the Dagster community", timeout=5000)
    except PlaywrightTimeout:
        return
    page.get_by_role("button", name="Skip").click()
    page.wait_for_selector("text=Join the Dagster community", state="hidden")


def test_the_dagster_ui_shows_the_demo_runs_under_their_job_with_checks_and_maps(demo):
    """`civic311 dev` over the demo's instance, as `make dev` opens it after `make demo`:
    the runs are on their job's page, every check of the canonical model has Succeeded
    (none Skipped), and the maps open from the asset's metadata."""
    runs = DagsterInstance.get().get_runs(RunsFilter(job_name="refresh_nyc"))
    assert len(runs) == 2  # the backfill of every day but the last, then the last day
    port = free_port()
    dev = subprocess.Popen(  # noqa: S603 - this environment's civic311
        [str(CIVIC311), "dev", "--port", str(port)],
        cwd=REPO,
        env=dict(os.environ),
        stdout=(demo.warehouse.parent / "dev.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    texts = {}
    try:
        wait_for_code_location(port, dev)
        with chromium() as browser:
            for name, (path, wait_for) in UI_PAGES.items():
                with visit(browser, f"http://127.0.0.1:{port}{path}", wait_for, f"ui-{name}.png") as opened:
                    _dismiss_welcome(opened.page)
                    if name == "maps":
                        opened.page.get_by_text("[Show Markdown]").first.click()
                        opened.page.wait_for_selector("img[alt='service gaps']", state="visible")
                    opened.page.wait_for_timeout(2000)  # the graph settles its layout
                    texts[name] = opened.page.inner_text("body")
                    if name == "maps":
                        width = opened.page.evaluate(
                            "() => document.querySelector(\"img[alt='service gaps']\").naturalWidth"
                        )
                # The UI's own warnings (its Apollo client's) are not the demo's concern;
                # a request leaving the machine is.
                assert opened.foreign_requests == [], (name, opened.foreign_requests)
    finally:
        stop_dev(dev)
    assert {"raw", "staging", "intermediate", "marts", "serving", "maps"} <= set(texts["asset-graph"].split())
    assert "Succeeded" in texts["checks"] and "Skipped" not in texts["checks"]
    for run in runs:
        assert run.run_id[:8] in texts["job-runs"], run.run_id
    assert width == 1200  # the choropleth PNG, inline in the metadata
    # NYC's raw partitions start on its first day in the registry, not on a date every
    # city shares; the demo's days are the materialized ones.
    first_day = load_registry().city("nyc").first_day.isoformat()
    assert texts["partitions"].split("\n")[:40].count(first_day) >= 1
    assert f"Materialized ({DEMO_DAYS})" in texts["partitions"]
