"""Ingest benchmark: civic311's two load paths, each against DuckDB reading the same file.

    python bench/ingest.py [--requests 200000] [--file PATH] [--export-rows 1000000]
                           [--export-file PATH] [--skip-socrata] [--repeat N]

Socrata path: replay server -> HTTP pages -> Arrow tables -> dlt -> DuckDB, into a
fresh warehouse (so a first load), against DuckDB `read_json` of the same SODA JSON
file. The replay serves from a process of its own (`tooling.replay.process`), so
the figure is civic311's time, not the emulator's sharing its GIL.
Export path: `load_export` of a portal CSV export (pyarrow -> Arrow -> dlt -> DuckDB),
against DuckDB `read_csv(all_varchar=true)` of the same file into a fresh database.
Prints rows/s for each (best of `--repeat` runs) and the ratios as JSON, with the
machine's load average: other work on the machine slows both sides. Synthetic
data unless a file is given: the NYC export CSV is generated once per size
(deterministic, from tooling.synthetic) and kept in data/bench/, which git ignores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from ingestion.pipeline import load_source
from ingestion.registry import load_registry
from ingestion.sources.exports import load_export
from ingestion.sources.socrata import socrata_source
from tooling.replay.process import ReplayProcess
from tooling.replay.records import api_field_name
from tooling.synthetic import generate_nyc

BENCH_DATA = Path(__file__).resolve().parents[1] / "data" / "bench"

# NYC Open Data's 311 CSV export header (erm2-nwe9), in the portal's order.
NYC_EXPORT_TITLES = (
    "Unique Key", "Created Date", "Closed Date", "Agency", "Agency Name", "Complaint Type", "Descriptor",
    "Location Type", "Incident Zip", "Incident Address", "Street Name", "Cross Street 1", "Cross Street 2",
    "Intersection Street 1", "Intersection Street 2", "Address Type", "City", "Landmark", "Facility Type",
    "Status", "Due Date", "Resolution Description", "Resolution Action Updated Date", "Community Board",
    "BBL", "Borough", "X Coordinate (State Plane)", "Y Coordinate (State Plane)", "Open Data Channel Type",
    "Park Facility Name", "Park Borough", "Vehicle Type", "Taxi Company Borough", "Taxi Pick Up Location",
    "Bridge Highway Name", "Bridge Highway Direction", "Road Ramp", "Bridge Highway Segment", "Latitude",
    "Longitude", "Location",
)  # fmt: skip
# Fields the synthetic generator writes (the rest of the export's columns stay empty).
SYNTHETIC_FIELDS = (
    "unique_key", "created_date", "closed_date", "agency", "agency_name", "complaint_type", "descriptor",
    "location_type", "incident_zip", "incident_address", "street_name", "city", "status",
    "resolution_description", "resolution_action_updated_date", "community_board", "borough",
    "x_coordinate_state_plane", "y_coordinate_state_plane", "open_data_channel_type", "latitude", "longitude",
)  # fmt: skip
TIMESTAMP_FIELDS = ("created_date", "closed_date", "due_date", "resolution_action_updated_date")


def timed(run: Callable[[], int], repeat: int) -> tuple[int, float]:
    """Rows and the best wall time of `repeat` runs (the machine may be shared)."""
    best, rows = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = run()
        best = min(best, time.perf_counter() - started)
    return rows, best


def figures(rows: int, seconds: float) -> dict:
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


# --------------------------------------------------------------------------- Socrata path


def socrata_path(url: str, work: Path, run: int) -> int:
    """One load of the NYC feed served at `url` into a fresh warehouse; the rows landed."""
    city = load_registry().city("nyc")
    warehouse = work / f"socrata_{run}" / "civic311.duckdb"
    warehouse.parent.mkdir()
    load_source(city, socrata_source(city, base_url=city.base_url(url)), warehouse).raise_on_failed_jobs()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select count(*) from raw_nyc.service_requests").fetchone()[0]


def duckdb_json(path: Path, work: Path, run: int) -> int:
    with duckdb.connect(str(work / f"baseline_json_{run}.duckdb")) as con:
        con.execute(
            "create table service_requests as select * from read_json(?, format = 'array')", [str(path)]
        )
        return con.execute("select count(*) from service_requests").fetchone()[0]


# --------------------------------------------------------------------------- export path


def generated_once(path: Path, write: Callable[[Path, Path], None], meta: dict) -> Path:
    """`path`, written the first time by `write(partial, work)` (into `partial`, with a
    scratch folder `work`) and moved into place whole, beside a `.meta.json` holding
    `meta`; kept in data/bench/ for the runs after."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory() as work:
        write(partial, Path(work))
    partial.replace(path)
    meta = {"synthetic": True, "generator": "civic311 synthetic nyc", **meta}
    path.with_name(path.name + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def synthetic_export(rows: int, days: int = 30) -> Path:
    """A SYNTHETIC NYC portal CSV export of `rows` requests created over the `days`
    before the generator's end (1 November 2026), generated once per size: display-name
    headers, "MM/DD/YYYY HH:MM:SS AM" timestamps, all 41 columns."""
    span = "" if days == 30 else f"_{days}d"

    def write(partial: Path, work: Path) -> None:
        soda = work / "synthetic_nyc.json"
        generate_nyc(soda, requests=rows, days=days)
        columns = ", ".join(f"'{name}': 'VARCHAR'" for name in SYNTHETIC_FIELDS)
        select = ", ".join(f'{_export_cell(title)} as "{title}"' for title in NYC_EXPORT_TITLES)
        with duckdb.connect() as con:
            con.execute(
                f"copy (select {select} from read_json(?, format = 'array', columns = {{{columns}}})) "
                f"to '{partial}' (header)",
                [str(soda)],
            )

    path = BENCH_DATA / f"synthetic_nyc_export_{rows}{span}.csv"
    return generated_once(path, write, {"seed": 311, "requests": rows, "days": days})


def _export_cell(title: str) -> str:
    """SQL for one export column from the synthetic SODA record."""
    name = api_field_name(title)
    if name == "location":
        return "case when latitude is null then null else '(' || latitude || ', ' || longitude || ')' end"
    if name not in SYNTHETIC_FIELDS:
        return "null::varchar"
    if name in TIMESTAMP_FIELDS:
        return f"strftime(strptime({name}, '%Y-%m-%dT%H:%M:%S.%g'), '%m/%d/%Y %I:%M:%S %p')"
    return name


def export_path(path: Path, work: Path, run: int) -> int:
    warehouse = work / f"export_{run}" / "civic311.duckdb"
    warehouse.parent.mkdir()
    summary = load_export(load_registry().city("nyc"), path, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select count(*) from raw_nyc.service_requests_export").fetchone()[0]
    if rows != summary.rows_read:
        raise SystemExit(f"export path loaded {rows} rows of {summary.rows_read} read")
    return rows


def duckdb_csv(path: Path, work: Path, run: int) -> int:
    with duckdb.connect(str(work / f"baseline_csv_{run}.duckdb")) as con:
        con.execute(
            "create table service_requests as select * from read_csv(?, all_varchar = true)", [str(path)]
        )
        return con.execute("select count(*) from service_requests").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="synthetic rows for the Socrata path")
    parser.add_argument("--file", type=Path, help="a SODA JSON array to use instead of synthetic data")
    parser.add_argument("--export-rows", type=int, default=1_000_000, help="synthetic rows for the export")
    parser.add_argument("--export-file", type=Path, help="an NYC CSV export to use instead of synthetic")
    parser.add_argument("--skip-socrata", action="store_true", help="measure the export path only")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is kept")
    args = parser.parse_args()
    report: dict = {"cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_socrata:
            path = args.file or work / "synthetic_nyc.json"
            if not args.file:
                generate_nyc(path, requests=args.requests)
            runs = itertools.count()
            base_rows, base_s = timed(lambda: duckdb_json(path, work, next(runs)), args.repeat)
            # The emulator runs in a process of its own: the figure is civic311's, not the replay's.
            with ReplayProcess({"nyc": [path]}) as replay:
                ours_rows, ours_s = timed(lambda: socrata_path(replay.url, work, next(runs)), args.repeat)
            report["socrata"] = {
                "file": str(args.file or "synthetic NYC SODA JSON (generated)"),
                "megabytes": round(path.stat().st_size / 1e6, 1),
                "civic311": figures(ours_rows, ours_s),
                "duckdb_read_json": figures(base_rows, base_s),
                "ratio_civic311_to_duckdb": round(base_s / ours_s * ours_rows / base_rows, 3),
            }
        export_file = args.export_file or synthetic_export(args.export_rows)
        runs = itertools.count()
        base_rows, base_s = timed(lambda: duckdb_csv(export_file, work, next(runs)), args.repeat)
        ours_rows, ours_s = timed(lambda: export_path(export_file, work, next(runs)), args.repeat)
        report["export"] = {
            "file": str(export_file) + ("" if args.export_file else " (SYNTHETIC)"),
            "megabytes": round(export_file.stat().st_size / 1e6, 1),
            "load_export": figures(ours_rows, ours_s),
            "duckdb_read_csv": figures(base_rows, base_s),
            "ratio_export_to_duckdb": round(base_s / ours_s * ours_rows / base_rows, 3),
        }
    report["loadavg_at_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
