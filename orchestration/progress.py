"""What a long command shows while its Dagster runs work, and where their output goes.

`civic311 refresh`, `rebuild`, `publish`, `bootstrap` and `demo` show one progress
display (rich) on stderr: the stage (the step the run is in, or the command's own
phase), the time elapsed, the rows received (loaded or quarantined), the models
built and the checks run, moved by the events the run stores on the instance.
dbt's output and Dagster's log lines go to one log file under `data/logs/` (beside
the working warehouse), named when the command ends. With `--verbose` there is no
display: the output shows live.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRun, JobDefinition
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ingestion.pipeline import warehouse_path
from ingestion.redact import install_filter

POLL_SECONDS = 0.5
# Assets that are neither a raw load (rows) nor a model (the models bar).
NOT_MODELS = {"raw", "serving", "maps"}
BOUNDARIES = AssetKey(["geography", "boundaries"])


def log_dir() -> Path:
    """`data/logs/` beside the working warehouse (`logs/` beside $CIVIC311_WAREHOUSE)."""
    return warehouse_path().parent / "logs"


def is_model(key: AssetKey) -> bool:
    return key.path[0] not in NOT_MODELS and key != BOUNDARIES


class Display:
    """The progress display of one command, over one or more runs, and its log file."""

    def __init__(self, command: str, verbose: bool = False, console: Console | None = None):
        self.command = command
        self.verbose = verbose
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log: Path | None = None if verbose else log_dir() / f"{command}-{stamp}.log"
        self.console = console or Console(file=sys.stderr)
        self.progress: Progress | None = None
        self.stage: TaskID | None = None
        self.rows: TaskID | None = None
        self.models: TaskID | None = None
        self.checks: TaskID | None = None
        self.rows_loaded = 0
        self.models_built = 0
        self.checks_run = 0
        # What the command says once the display is gone (`note`).
        self.notes: list[str] = []

    @contextlib.contextmanager
    def shown(self) -> Iterator[Display]:
        """Show the display, with this process's output sent to the log file (unless verbose)."""
        if self.verbose:
            yield self
            return
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<40}"),
            BarColumn(),
            TextColumn("{task.fields[count]:>11}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.stage = self.progress.add_task("starting", total=None, count="")
        self.rows = self.progress.add_task("rows received", total=None, count="0")
        self.models = self.progress.add_task("models built", total=0, count="0/0")
        self.checks = self.progress.add_task("checks run", total=0, count="0/0")
        with self.progress, output_to(self.log):
            yield self

    def phase(self, text: str) -> None:
        """Say what the command does now (the stage line)."""
        if self.progress is not None:
            self.progress.update(self.stage, description=text)
        else:
            print(f"civic311 {self.command}: {text}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        """Say what the command does now, and again once it has ended."""
        self.notes.append(text)
        self.phase(text)

    def add_rows(self, rows: int) -> None:
        self.rows_loaded += rows
        if self.progress is not None:
            self.progress.update(self.rows, completed=self.rows_loaded, count=f"{self.rows_loaded:,}")

    def _count(self, task: TaskID, done: int) -> None:
        total = int(self.progress.tasks[task].total or 0)
        self.progress.update(task, completed=done, count=f"{done}/{total}")

    @contextlib.contextmanager
    def following(self, run: DagsterRun, job: JobDefinition) -> Iterator[None]:
        """Move the display from `run`'s stored events until the block ends; `job` (the
        run's job, subset to its selection) gives the totals."""
        if self.progress is None:
            yield
            return
        keys = job.asset_layer.executable_asset_keys
        models = sum(1 for key in keys if is_model(key))
        checks = sum(1 for key in job.asset_layer.asset_graph.asset_check_keys if key.asset_key in keys)
        # Over several runs (the demo's), the totals add up.
        self.progress.update(self.models, total=self.progress.tasks[self.models].total + models)
        self.progress.update(self.checks, total=self.progress.tasks[self.checks].total + checks)
        self._count(self.models, self.models_built)
        self._count(self.checks, self.checks_run)
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(run, stop), daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()

    def _watch(self, run: DagsterRun, stop: threading.Event) -> None:
        """Read the run's events through a handle of its own, until `stop` is set."""
        wanted = {
            DagsterEventType.STEP_START,
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.ASSET_CHECK_EVALUATION,
        }
        counted: set[AssetKey] = set()  # a ranged run stores one materialization per partition
        cursor = None
        with DagsterInstance.get() as instance:
            while True:
                finished = stop.is_set()
                found = instance.get_records_for_run(run.run_id, cursor=cursor, of_type=wanted)
                cursor = found.cursor or cursor
                for record in found.records:
                    event = record.event_log_entry.dagster_event
                    if event.event_type == DagsterEventType.STEP_START:
                        self.phase(f"{run.job_name}: {event.step_key}")
                    elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                        self.checks_run += 1
                        self._count(self.checks, self.checks_run)
                    elif event.asset_key not in counted:
                        counted.add(event.asset_key)
                        if event.asset_key.path[0] == "raw":
                            rows = event.materialization.metadata.get("rows_loaded")
                            self.add_rows(int(rows.value) if rows is not None else 0)
                        elif is_model(event.asset_key):
                            self.models_built += 1
                            self._count(self.models, self.models_built)
                if finished:
                    return
                stop.wait(POLL_SECONDS)

    def ended(self) -> str:
        """The line that names the log file, once the command has ended."""
        return f"civic311 {self.command}: dbt's and Dagster's output is in {self.log}" if self.log else ""


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (dagster-dbt echoes dbt's output; Dagster's
    console logger writes there) and its log lines to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    kept = root.handlers[:]
    with path.open("w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        install_filter(handler)  # secrets never reach the file
        # Dagster's console logger writes its lines to the file already.
        handler.addFilter(lambda record: not record.name.startswith("dagster"))
        root.handlers = [handler]
        try:
            yield
        finally:
            root.handlers = kept
