"""Replay memory benchmark (issue 18): the emulator's resident memory per record.

    .venv/bin/python -m bench.replay_memory [--requests 50000 100000 200000] [--folder DIR]

For each size, a SYNTHETIC NYC SODA feed of that many requests created over the 365
days before 1 November 2026 (P8's feed in bench/scale.py, generated once per size and
kept in --folder, data/bench/ by default) is served by `ReplayProcess`, the emulator in
a process of its own. Then a client reads it the way P8's backfill does: every row in
keyset pages of 50,000 (`$order=:updated_at, :id`, `$select=:*, *`), and then one
window of 31 days at a time (the default days per raw backfill run). Every served row
is counted, so a short read fails the script.

Per size it prints the load time (start to listening), the process's RSS after loading,
its peak while loading and its peak while serving (the kernel's high-water mark,
VmHWM, reset between the two), each per record; then a least-squares line over the
sizes and what it projects at 1,000,000 records. Ends with one JSON line. The machine
is shared: times vary with its load, which is printed; memory does not.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import psutil
import requests

from bench.ingest import BENCH_DATA
from ingestion.registry import load_registry
from ingestion.sources.socrata.client import Window
from tooling.replay.process import ReplayProcess
from tooling.synthetic import generate_nyc

FEED_END = date(2026, 11, 1)
FEED_DAYS = 365
PAGE_SIZE = 50_000
WINDOW_DAYS = 31
PROJECTED_RECORDS = 1_000_000


def feed(requests_count: int, folder: Path) -> Path:
    """P8's synthetic feed of `requests_count` requests, generated once."""
    path = folder / f"synthetic_nyc_backfill_{requests_count}_{FEED_DAYS}d.json"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        generate_nyc(path, requests=requests_count, days=FEED_DAYS, end=FEED_END)
    return path


def high_water_bytes(pid: int) -> int:
    """The process's peak resident memory since it started or since `reset_high_water`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM")


def reset_high_water(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS


def read_window(session: requests.Session, url: str, window: Window) -> int:
    """Rows served for `window`, read in keyset pages as the Socrata client does."""
    served, after = 0, None
    while True:
        params = {"$select": ":*, *", "$order": ":updated_at, :id", "$limit": str(PAGE_SIZE)}
        if where := window.where(after):
            params["$where"] = where
        response = session.get(url, params=params, timeout=600)
        response.raise_for_status()
        rows = response.json()
        served += len(rows)
        if len(rows) < PAGE_SIZE:
            return served
        after = (rows[-1][":updated_at"], rows[-1][":id"])


def measure(requests_count: int, folder: Path) -> dict:
    path = feed(requests_count, folder)
    city = load_registry().city("nyc")
    started = time.perf_counter()
    with ReplayProcess({"nyc": [path]}) as replay:
        load_seconds = time.perf_counter() - started
        process = psutil.Process(replay.pid)
        after_load = process.memory_info().rss
        load_peak = high_water_bytes(replay.pid)
        reset_high_water(replay.pid)
        url = f"{city.base_url(replay.url)}/resource/{city.source.all_datasets[0].id}.json"
        started = time.perf_counter()
        with requests.Session() as session:
            everything = read_window(session, url, Window())
            first = datetime.combine(FEED_END - timedelta(days=FEED_DAYS), datetime.min.time())
            windows = [
                Window(first + timedelta(days=day), first + timedelta(days=day + WINDOW_DAYS))
                for day in range(0, FEED_DAYS + 1, WINDOW_DAYS)
            ]
            windowed = sum(read_window(session, url, window) for window in windows)
        serve_seconds = time.perf_counter() - started
        serve_peak = high_water_bytes(replay.pid)
        after_serving = process.memory_info().rss
    # The windows cover the feed's year, so each row is served once by them.
    if everything != requests_count or windowed != requests_count:
        raise SystemExit(
            f"{requests_count:,} records: served {everything:,} in one read, {windowed:,} by window"
        )
    return {
        "records": requests_count,
        "feed_bytes": path.stat().st_size,
        "load_seconds": round(load_seconds, 2),
        "serve_seconds": round(serve_seconds, 2),
        "rss_after_load": after_load,
        "peak_rss_loading": load_peak,
        "peak_rss_serving": serve_peak,
        "rss_after_serving": after_serving,
    }


def line(sizes: list[dict], key: str) -> tuple[float, float]:
    """Least-squares bytes (or seconds) per record and fixed cost of `key` over the sizes."""
    slope, intercept = np.polyfit([size["records"] for size in sizes], [size[key] for size in sizes], 1)
    return float(slope), float(intercept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    parser.add_argument("--folder", type=Path, default=BENCH_DATA, help="where the feeds are kept")
    args = parser.parse_args()
    report: dict = {"synthetic": True, "cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg())}
    sizes = []
    for requests_count in args.requests:
        size = measure(requests_count, args.folder)
        sizes.append(size)
        per = {k: round(size[k] / requests_count) for k in size if k.startswith(("rss", "peak"))}
        print(
            f"{requests_count:>9,} records ({size['feed_bytes'] / requests_count:.0f} B of JSON each): "
            f"load {size['load_seconds']:.1f} s "
            f"({size['load_seconds'] / requests_count * 1e6:.1f} us/record), "
            f"serve {size['serve_seconds']:.1f} s; bytes/record {per}",
            flush=True,
        )
    report["sizes"] = sizes
    if len(sizes) > 1:
        for key in ("rss_after_load", "peak_rss_loading", "peak_rss_serving", "load_seconds"):
            slope, intercept = line(sizes, key)
            projected = slope * PROJECTED_RECORDS + intercept
            report[f"{key}_per_record"] = round(slope, 7 if key == "load_seconds" else 0)
            report[f"{key}_at_1m"] = round(projected, 1 if key == "load_seconds" else 0)
            unit = "s" if key == "load_seconds" else "GB"
            shown = projected if key == "load_seconds" else projected / 1e9
            print(f"{key}: {slope:.6g} per record + {intercept:.4g}; at 1M records {shown:.2f} {unit}")
    report["loadavg_at_end"] = list(os.getloadavg())
    print(json.dumps(report))


if __name__ == "__main__":
    main()
