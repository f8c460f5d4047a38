"""A load that kills itself with SIGKILL at a named point; run as a child process.

    python -m tests.helpers.killable_load REGISTRY CITY WAREHOUSE REPLAY_URL START END [KILL_AT]
    python -m tests.helpers.killable_load REGISTRY CITY WAREHOUSE file:EXPORT_PATH - - [KILL_AT]
        [--no-recovery] [--export-batch-rows ROWS]

The kill points wrap dlt's own steps, so the process dies exactly where a
crash, an OOM kill or a pulled plug would leave a real run:

    extract        while fetching page 2 (page 1 already extracted); for an export file,
                   after its first batch is read
    normalize      after extract, before normalize starts
    mid_normalize  after the first extracted file of the package is normalized
    load           after normalize, before load starts
    mid_load       as the first load job writes its rows (the copy into the staging table)
    mid_load_jobs  after the first load job is completed, while others of the package wait
    complete       after every load job, before the package is marked loaded

mid_normalize and mid_load_jobs print how far the step got ("after 1 of 4 files")
before dying, so a test can check that the package had more left to do.

--no-recovery makes `ingestion.pipeline.finish_pending` a no-op in this process
only: the test that shows the kill test fails without recovery. --export-batch-rows
reads an export in smaller batches, so a small file makes a package of several
files, as a large export does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

# The points the fresh-warehouse test kills at; the second-window test adds mid_load_jobs.
KILL_POINTS = ("extract", "normalize", "mid_normalize", "load", "mid_load", "complete")
ALL_KILL_POINTS = (*KILL_POINTS, "mid_load_jobs")
RECOVERY_DISABLED = "finish_pending disabled: packages left by a killed run are not finished"


def _die(progress: str = "") -> None:
    if progress:
        print(progress, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _disable_recovery() -> None:
    """Replace `finish_pending` before any module imports it by name."""
    import ingestion.pipeline

    def finish_pending(pipeline):
        print(RECOVERY_DISABLED, file=sys.stderr)

    ingestion.pipeline.finish_pending = finish_pending


def _install(kill_at: str) -> None:
    from dlt.common.storages.load_package import PackageStorage
    from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient
    from dlt.load.load import Load
    from dlt.normalize import items_normalizers
    from dlt.normalize.normalize import Normalize
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
        original_spool, files = Normalize.spool_files, []

        def spool_files(self, load_id, schema, map_f, package_files):
            files[:] = package_files
            return original_spool(self, load_id, schema, map_f, package_files)

        Normalize.spool_files = spool_files

        def after_first_file(original):
            def call(self, *args, **kwargs):
                result = original(self, *args, **kwargs)
                _die(f"killed at mid_normalize after 1 of {len(files)} files")
                return result

            return call

        # Each kind of extracted file (Arrow, JSON lines, imported) has its own normalizer.
        for name in items_normalizers.__all__:
            normalizer = getattr(items_normalizers, name)
            if normalizer is not items_normalizers.ItemsNormalizer:
                normalizer.__call__ = after_first_file(normalizer.__call__)
    elif kill_at == "mid_load":
        original_execute = DuckDbSqlClient.execute_sql

        def execute_sql(self, sql, *args, **kwargs):
            text = sql if isinstance(sql, str) else str(sql)
            if "DELETE FROM" in text.upper() or "INSERT INTO" in text.upper():
                _die()
            return original_execute(self, sql, *args, **kwargs)

        DuckDbSqlClient.execute_sql = execute_sql
    elif kill_at == "mid_load_jobs":
        original_complete = PackageStorage.complete_job

        def complete_job(self, load_id, file_name):
            result = original_complete(self, load_id, file_name)
            # A completed copy may already have queued its table's merge job.
            waiting = len(self.list_new_jobs(load_id)) + len(self.list_started_jobs(load_id))
            _die(f"killed at mid_load_jobs after 1 of {1 + waiting} jobs")
            return result

        PackageStorage.complete_job = complete_job
    elif kill_at == "complete":

        def complete_package(self, *args, **kwargs):
            _die()

        Load.complete_package = complete_package


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.helpers.killable_load")
    for name in ("registry", "city_id", "warehouse", "replay_url", "start", "end"):
        parser.add_argument(name)
    parser.add_argument("kill_at", nargs="?", choices=ALL_KILL_POINTS)
    parser.add_argument("--no-recovery", action="store_true")
    parser.add_argument("--export-batch-rows", type=int)
    return parser.parse_intermixed_args(argv)


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    if arguments.no_recovery:
        _disable_recovery()
    if arguments.kill_at:
        _install(arguments.kill_at)
    if arguments.export_batch_rows:
        from ingestion.sources.exports import files

        files.BATCH_ROWS = arguments.export_batch_rows
    from ingestion.pipeline import load_source
    from ingestion.registry import load_registry
    from ingestion.sources import source_for

    city = load_registry(Path(arguments.registry)).city(arguments.city_id)
    warehouse = Path(arguments.warehouse)
    if arguments.replay_url.startswith("file:"):
        from ingestion.sources.exports import load_export

        load_export(city, Path(arguments.replay_url.removeprefix("file:")), warehouse)
        return 0
    source = source_for(
        city,
        start=datetime.fromisoformat(arguments.start),
        end=datetime.fromisoformat(arguments.end),
        base_url=city.base_url(arguments.replay_url),
        backoff_seconds=0.01,
    )
    load_source(city, source, warehouse)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
