"""A load that kills itself with SIGKILL at a named point; run as a child process.

    python -m tests.integration.killable_load REGISTRY CITY WAREHOUSE REPLAY_URL START END [KILL_AT]
    python -m tests.integration.killable_load REGISTRY CITY WAREHOUSE file:EXPORT_PATH - - [KILL_AT]

The kill points wrap dlt's own steps, so the process dies exactly where a
crash, an OOM kill or a pulled plug would leave a real run:

    extract        while fetching page 2 (page 1 already extracted); for an export file,
                   after its first batch is read
    normalize      after extract, before normalize starts
    mid_normalize  after the first extracted file is normalized
    load           after normalize, before load starts
    mid_load       when the merge into the dataset starts (rows copied to staging)
    complete       after every load job, before the package is marked loaded
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from pathlib import Path

KILL_POINTS = ("extract", "normalize", "mid_normalize", "load", "mid_load", "complete")


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install(kill_at: str) -> None:
    from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient
    from dlt.load.load import Load
    from dlt.normalize.items_normalizers.arrow import ArrowItemsNormalizer
    from dlt.pipeline.pipeline import Pipeline

    from ingestion.sources.http import HttpClient

    if kill_at == "extract":
        from ingestion.sources.exports.shape import BatchShaper

        original_shape = BatchShaper.__call__

        def shape(self, batch):
            result = original_shape(self, batch)
            _die()
            return result

        BatchShaper.__call__ = shape
        original_get, calls = HttpClient.get, []

        def get(self, *args, **kwargs):
            result = original_get(self, *args, **kwargs)
            calls.append(args)
            if len(calls) == 2:
                _die()
            return result

        HttpClient.get = get
    elif kill_at in ("normalize", "load"):

        def killed(self, *args, **kwargs):
            _die()

        setattr(Pipeline, kill_at, killed)
    elif kill_at == "mid_normalize":
        original_call = ArrowItemsNormalizer.__call__

        def call(self, *args, **kwargs):
            result = original_call(self, *args, **kwargs)
            _die()
            return result

        ArrowItemsNormalizer.__call__ = call
    elif kill_at == "mid_load":
        original_execute = DuckDbSqlClient.execute_sql

        def execute_sql(self, sql, *args, **kwargs):
            text = sql if isinstance(sql, str) else str(sql)
            if "DELETE FROM" in text.upper() or "INSERT INTO" in text.upper():
                _die()
            return original_execute(self, sql, *args, **kwargs)

        DuckDbSqlClient.execute_sql = execute_sql
    elif kill_at == "complete":

        def complete_package(self, *args, **kwargs):
            _die()

        Load.complete_package = complete_package
    else:
        raise SystemExit(f"unknown kill point {kill_at!r}; choose from {', '.join(KILL_POINTS)}")


def main(argv: list[str]) -> int:
    registry_path, city_id, warehouse, replay_url, start, end, *rest = argv
    if rest:
        _install(rest[0])
    from ingestion.pipeline import load_source
    from ingestion.registry import load_registry
    from ingestion.sources import source_for

    city = load_registry(Path(registry_path)).city(city_id)
    if replay_url.startswith("file:"):
        from ingestion.sources.exports import load_export

        load_export(city, Path(replay_url.removeprefix("file:")), Path(warehouse))
        return 0
    source = source_for(
        city,
        start=datetime.fromisoformat(start),
        end=datetime.fromisoformat(end),
        base_url=city.base_url(replay_url),
        backoff_seconds=0.01,
    )
    load_source(city, source, Path(warehouse))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
