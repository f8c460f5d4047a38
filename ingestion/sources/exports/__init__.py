"""dlt source for a city's bulk export files (`civic311 load --from-file`).

A city's full history (NYC: tens of millions of rows) comes from the portal's
export, not from paging the API. The export lands in its own table,
`service_requests_export`, merged on (city_id, source_id) like the API's
`service_requests`, but never in it: an export is a snapshot, and a snapshot
loaded after the API must not replace a newer API version of a row (dlt's merge
replaces by key). The staging models union both tables and keep the newest.

Rows the table cannot key (no id) and CSV lines that do not split into the
header's cells go to `rejected_service_requests`; nothing is dropped. The first load
into an empty table appends (nothing to merge with) and then keeps the newest
row of any id the file repeats; later loads merge, so a reload changes nothing.

    from ingestion.registry import load_registry
    from ingestion.sources.exports import load_export

    summary = load_export(load_registry().city("nyc"), "311_Service_Requests.csv")
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dlt
import pyarrow as pa
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.sources import DltResource

from ingestion.pipeline import city_pipeline, finish_pending, release, warehouse_path
from ingestion.redact import get_logger
from ingestion.registry import City
from ingestion.sources.exports.files import ExportError, ExportFile
from ingestion.sources.exports.shape import BatchShaper
from ingestion.sources.readahead import read_ahead
from ingestion.sources.resource import rejected_table
from ingestion.warehouse_lock import warehouse_lock

__all__ = ["EXPORT_TABLE", "ExportError", "ExportSummary", "export_source", "load_export"]

log = get_logger("civic311.exports")

EXPORT_TABLE = "service_requests_export"
MALFORMED_RULE = "malformed_csv_line"


@dataclass
class ExportCounts:
    """What one run read from the file, filled in as the rows stream through."""

    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    columns: dict[str, None] = field(default_factory=dict)
    schema: str = ""
    timestamps: dict[str, str] = field(default_factory=dict)
    # Told the rows of each batch as it is read (a progress bar).
    on_read: Callable[[int], None] | None = None


@dataclass(frozen=True)
class ExportSummary:
    city_id: str
    path: Path
    rows_read: int
    # Rows sent to the export table; rows repeating an id collapse there into the newest.
    rows_loaded: int
    rows_quarantined: int
    columns: tuple[str, ...]
    seconds: float
    # The known layout the header fitted, and how each timestamp field was read.
    schema: str = ""
    timestamps: dict[str, str] = field(default_factory=dict)


@dlt.source(name="exports", max_table_nesting=0)
def export_source(city: City, path: Path, counts: ExportCounts | None = None) -> DltResource:
    """The rows of one export file as the city's `service_requests_export` resource."""
    export = ExportFile.open(city, path)
    counts = counts if counts is not None else ExportCounts()

    def rows() -> Iterator[pa.Table]:
        loaded_at = datetime.now(UTC)
        shape = BatchShaper(city, export.path, loaded_at)
        id_rule = f"missing_{city.source.id_field}"
        shaped = ((batch.num_rows, *shape(batch)) for batch in export.batches())
        # Reading and shaping run a batch or two ahead, on a second core.
        for rows_in, table, rejected in read_ahead(shaped, depth=2):
            counts.rows_read += rows_in
            if counts.on_read is not None:
                counts.on_read(rows_in)
            if table.num_rows:
                counts.rows_loaded += table.num_rows
                yield table
            if rejected:
                counts.rows_quarantined += len(rejected)
                yield rejected_table(city.id, id_rule, rejected, loaded_at)
            yield from malformed_lines(export, counts, loaded_at)
        yield from malformed_lines(export, counts, loaded_at)
        # Every batch is read: a timestamp column that was not read with certainty stops
        # the load here, before dlt writes anything to the warehouse.
        shape.finish()
        counts.columns.update(shape.columns)
        counts.schema = export.schema.name if export.schema else ""
        counts.timestamps = shape.timestamps.layouts()

    return dlt.resource(
        rows,
        name=EXPORT_TABLE,
        write_disposition="merge",
        primary_key=("city_id", "source_id"),
        columns={
            "source_updated_at": {"data_type": "timestamp", "dedup_sort": "desc"},
            "_loaded_at": {"data_type": "timestamp"},
        },
    )


def malformed_lines(export: ExportFile, counts: ExportCounts, loaded_at: datetime) -> Iterator[pa.Table]:
    """CSV lines the parser could not split into the header's cells, as a quarantine page."""
    lines = export.malformed.take() if export.malformed else []
    if lines:
        log.warning(
            "%s: export file %s: %d line(s) do not have the header's %d cells; quarantined",
            export.city.id,
            export.path.name,
            len(lines),
            export.malformed.expected,
        )
        counts.rows_read += len(lines)
        counts.rows_quarantined += len(lines)
        yield rejected_table(export.city.id, MALFORMED_RULE, lines, loaded_at)


def export_pipeline(city: City, warehouse: Path | None = None) -> dlt.Pipeline:
    """The export pipeline: same warehouse and dataset as the city's API pipeline,
    its own name (and so its own state), so an export never moves the API cursor."""
    warehouse = Path(warehouse or warehouse_path()).resolve()
    # A first load may be the first thing run against a new warehouse.
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    return city_pipeline(city, warehouse, name_suffix="_export")


def load_export(
    city: City,
    path: Path | str,
    warehouse: Path | None = None,
    *,
    wait: float | None = None,
    on_read: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Load one export file of `city` into the warehouse; reloading a file changes nothing.
    Holds the warehouse's writer lock throughout, waiting for it `wait` seconds at most
    (None: as long as it takes). `on_read` is told the rows of each batch read."""
    started = time.perf_counter()
    counts = ExportCounts(on_read=on_read)
    source = export_source(city, Path(path), counts)
    warehouse = Path(warehouse or warehouse_path()).resolve()
    with warehouse_lock(warehouse, wait=wait):
        pipeline = export_pipeline(city, warehouse)
        # A load killed part-way left packages behind: they go in first, so this
        # file is then loaded (and merged) rather than skipped.
        finish_pending(pipeline)
        _run(pipeline, source, counts)
        release(pipeline)
    return ExportSummary(
        city_id=city.id,
        path=Path(path),
        rows_read=counts.rows_read,
        rows_loaded=counts.rows_loaded,
        rows_quarantined=counts.rows_quarantined,
        columns=tuple(counts.columns),
        seconds=time.perf_counter() - started,
        schema=counts.schema,
        timestamps=counts.timestamps,
    )


def _run(pipeline: dlt.Pipeline, source: DltResource, counts: ExportCounts) -> None:
    first_load = _export_table_is_empty(pipeline)
    if first_load:
        # Nothing to merge with: append straight into the table, skipping the staging
        # copy and the merge (together about two thirds of a large load's time).
        source.resources[EXPORT_TABLE].apply_hints(
            write_disposition="append", columns={"source_updated_at": {"dedup_sort": None}}
        )
    try:
        pipeline.run(source).raise_on_failed_jobs()
    except PipelineStepFailed as failed:
        # A bad file surfaces mid-extract, wrapped by dlt: hand back our own message.
        bad_file = _export_error(failed)
        if bad_file is None:
            raise
        raise bad_file from None
    if first_load and counts.rows_loaded:
        _keep_newest_per_key(pipeline)


def _export_error(failed: BaseException) -> ExportError | None:
    cause: BaseException | None = failed
    while cause is not None and not isinstance(cause, ExportError):
        cause = cause.__cause__ or cause.__context__
    return cause


def _export_table_is_empty(pipeline: dlt.Pipeline) -> bool:
    """Whether the export table is missing or has no row; False when unsure, so the
    run falls back to the always-correct merge."""
    try:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(EXPORT_TABLE)
            return not client.execute_sql(f"select exists (select 1 from {table})")[0][0]
    except DatabaseUndefinedRelation:
        return True
    except Exception:  # noqa: BLE001 - e.g. the warehouse is locked; merge handles it
        log.info("could not tell whether %s is empty; loading with merge", EXPORT_TABLE, exc_info=True)
        return False


def _keep_newest_per_key(pipeline: dlt.Pipeline) -> None:
    """After an appended first load, do what the merge would have done to ids that
    appear more than once in the file: keep the newest row of each."""
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name(EXPORT_TABLE)
        repeated = client.execute_sql(f"select count(*) - count(distinct source_id) from {table}")[0][0]
        if repeated:
            log.info("%s: %d row(s) repeat an id; keeping the newest of each", EXPORT_TABLE, repeated)
            client.execute_sql(
                f"""
                delete from {table} where rowid in (
                    select rowid from (
                        select rowid, row_number() over (
                            partition by city_id, source_id order by source_updated_at desc nulls last
                        ) as position
                        from {table}
                    ) where position > 1
                )
                """
            )
