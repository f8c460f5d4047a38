"""Resources and run-time settings. Everything secret or machine-specific comes
from the environment and is read when a run starts, so none of it is stored in
run config or shown in the UI."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from dagster_dbt import DagsterDbtProjectPreparer, DbtCliResource, DbtProject
from dagster_dbt.errors import DagsterDbtManifestNotFoundError
from dagster_dlt import DagsterDltResource

from ingestion.pipeline import warehouse_path
from ingestion.registry import REPLAY_URL_ENV, Registry, checked_replay_url, load_registry
from ingestion.warehouse_lock import warehouse_lock

# Every step that opens the DuckDB warehouse runs in this pool; the instance
# (orchestration/dagster.yaml) gives it one slot, as DuckDB allows one writer.
# The pool orders Dagster's own steps; `holds_warehouse` also keeps out any other
# process (a `civic311 load`, another Dagster instance) with the OS-level lock.
WAREHOUSE_POOL = "duckdb_warehouse"

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)


def holds_warehouse(warehouse: Path | None = None) -> Callable[[F], F]:
    """Run a Dagster step's body under the warehouse's writer lock
    (ingestion/warehouse_lock.py). A step that finds it held waits as long as it
    takes and says in the run's log who holds it. The warehouse defaults to
    `$CIVIC311_WAREHOUSE`, read when the step runs, as dbt reads it."""

    def locked(context: Any) -> Any:
        run_id = getattr(context, "run_id", "?")
        return warehouse_lock(
            warehouse or warehouse_path(),
            command=f"dagster run {run_id}, step {context.op_def.name}",
            say=context.log.warning,
        )

    def decorate(body: F) -> F:
        if inspect.isgeneratorfunction(body):

            @functools.wraps(body)
            def stepping(context, *args, **kwargs):
                with locked(context):
                    yield from body(context, *args, **kwargs)

            return stepping  # type: ignore[return-value]

        @functools.wraps(body)
        def step(context, *args, **kwargs):
            with locked(context):
                return body(context, *args, **kwargs)

        return step  # type: ignore[return-value]

    return decorate


DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

# dagster-dbt runs `dbt` from PATH (its manifest preparer too). Put this
# interpreter's scripts first, so the dbt of this environment runs even when
# the environment is not activated (e.g. `.venv/bin/civic311`).
_SCRIPTS = str(Path(sys.executable).parent)
if shutil.which("dbt", path=_SCRIPTS) and _SCRIPTS not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _SCRIPTS + os.pathsep + os.environ.get("PATH", "")


# The run window reaches dbt as environment variables, read only when dbt executes
# (dbt_project/macros/incremental.sql): a new `--vars` each run would make dbt parse
# the whole project again. [first day, day after the last), as YYYY-MM-DD.
WINDOW_ENV = ("CIVIC311_MIN_DATE", "CIVIC311_MAX_DATE")


def window_env(first: date | None = None, end: date | None = None) -> dict[str, str]:
    """The environment that gives dbt the window [first, end): both names of
    WINDOW_ENV set, or, with no window, both empty, so dbt computes everything
    whatever the calling shell had set."""
    if (first is None) != (end is None):
        raise ValueError(f"a dbt window needs both ends, got first={first}, end={end}")
    if first is None or end is None:
        return dict.fromkeys(WINDOW_ENV, "")
    return dict(zip(WINDOW_ENV, (first.isoformat(), end.isoformat()), strict=True))


def dbt_vars(**extra: object) -> str:
    """The `--vars` of every dbt call civic311 makes: the active registry's cities (var
    `cities`, read from CIVIC311_CITIES at the call) and `extra` (say the run's window)."""
    return json.dumps({**load_registry().dbt_vars(), **extra})


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The files a dbt parse reads; the manifest is stale when one is newer than it.
DBT_SOURCE_GLOBS = ("*.yml", "models/**/*", "macros/**/*", "seeds/**/*", "snapshots/**/*", "tests/**/*")
# What to run when the code location finds no manifest.
PREPARE_COMMAND = "civic311 prepare"


def dbt_manifest_is_stale() -> bool:
    """True when there is no manifest or a dbt file changed since it was written: the
    Dagster asset graph would not match what `dbt build` runs."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    written = manifest.stat().st_mtime
    changed = any(
        path.stat().st_mtime > written
        for pattern in DBT_SOURCE_GLOBS
        for path in DBT_PROJECT_DIR.glob(pattern)
        if path.is_file()
    )
    return changed or not manifest_follows_registry(manifest)


def manifest_follows_registry(manifest: Path, registry: Registry | None = None) -> bool:
    """True when the manifest was parsed with the cities of `registry` (the active one by
    default): the canonical union reads exactly their staging models (a registry of other
    cities needs a parse)."""
    union = json.loads(manifest.read_text())["nodes"].get("model.civic311.int_service_requests", {})
    staged = {
        node.removeprefix("model.civic311.stg_").removesuffix("__service_requests")
        for node in union.get("depends_on", {}).get("nodes", [])
    }
    return staged == set((registry or load_registry()).ids)


def dbt_parse_args() -> list[str]:
    """The dbt command that writes the manifest, with the active registry as its vars
    (read when the parse runs, so the manifest follows the registry active then)."""
    return ["parse", "--quiet", "--vars", dbt_vars()]


def prepare_dbt_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or stale, and return the
    manifest. The one place dbt is parsed for Dagster: `make env`, `civic311 dev`,
    `civic311 demo` and the tests call it before the definitions load, so loading
    them parses nothing. dagster-dbt's preparer runs it (dbt deps first when the
    project has packages, and a lock against a parse running at the same time)."""
    if dbt_manifest_is_stale():
        DagsterDbtProjectPreparer(prepare_project_cli_args=dbt_parse_args()).prepare(dbt_project)
    return dbt_project.manifest_path


@functools.cache
def prepared_dbt_manifest() -> Path:
    """The manifest the code location builds its dbt assets from, looked at once per
    process. A missing one fails with the command that writes it; a stale one is used,
    with a warning."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        raise DagsterDbtManifestNotFoundError(
            f"no dbt manifest at {manifest}: run `{PREPARE_COMMAND}` (or `make env`) to parse "
            "the dbt project, then load the code location again."
        )
    if dbt_manifest_is_stale():
        logger.warning(
            "the dbt manifest is older than a file of dbt_project/: the asset graph may not match "
            "what dbt builds; run `%s` and reload the code location.",
            PREPARE_COMMAND,
        )
    return manifest


def replay_url() -> str | None:
    """`CIVIC311_REPLAY_URL`: read every city from this local replay server instead of its portal."""
    return checked_replay_url(os.environ.get(REPLAY_URL_ENV) or None)


def build_resources() -> dict[str, object]:
    return {
        "dlt": DagsterDltResource(),
        "dbt": DbtCliResource(project_dir=dbt_project),
    }
