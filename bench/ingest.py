"""Ingest benchmark: the project's Socrata path against DuckDB reading the same records.

    python bench/ingest.py [--requests 200000] [--file PATH]

Path A (civic311): replay server -> HTTP pages -> Arrow tables -> dlt merge -> DuckDB.
Path B (baseline): DuckDB `read_json` of the same file into a table, in the same run.
Prints rows/s for both and their ratio. Synthetic data unless --file is given.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb

from ingestion.pipeline import city_pipeline
from ingestion.registry import load_registry
from ingestion.replay import ReplayServer
from ingestion.sources.socrata import socrata_source
from ingestion.synthetic import generate_nyc


def civic311_path(path: Path, work: Path) -> tuple[int, float]:
    city = load_registry().city("nyc")
    server = ReplayServer()
    server.add_dataset(city.source.dataset_id, path, id_field=city.source.id_field)
    warehouse = work / "civic311.duckdb"
    with server:
        started = time.perf_counter()
        city_pipeline(city, warehouse).run(socrata_source(city, base_url=server.url)).raise_on_failed_jobs()
        elapsed = time.perf_counter() - started
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select count(*) from raw_nyc.service_requests").fetchone()[0]
    return rows, elapsed


def duckdb_path(path: Path, work: Path) -> tuple[int, float]:
    with duckdb.connect(str(work / "baseline.duckdb")) as con:
        started = time.perf_counter()
        con.execute(
            "create table service_requests as select * from read_json(?, format = 'array')",
            [str(path)],
        )
        elapsed = time.perf_counter() - started
        rows = con.execute("select count(*) from service_requests").fetchone()[0]
    return rows, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--file", type=Path, help="a SODA JSON array to use instead of synthetic data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = args.file or work / "synthetic_nyc.json"
        if not args.file:
            generate_nyc(path, requests=args.requests)
        size_mb = path.stat().st_size / 1e6
        ours_rows, ours_s = civic311_path(path, work)
        base_rows, base_s = duckdb_path(path, work)
    ours, base = ours_rows / ours_s, base_rows / base_s
    print(
        json.dumps(
            {
                "file": str(args.file or "synthetic NYC (generated)"),
                "megabytes": round(size_mb, 1),
                "civic311_rows": ours_rows,
                "civic311_seconds": round(ours_s, 2),
                "civic311_rows_per_s": round(ours),
                "duckdb_rows": base_rows,
                "duckdb_seconds": round(base_s, 2),
                "duckdb_rows_per_s": round(base),
                "ratio_civic311_to_duckdb": round(ours / base, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
