"""A Dagster run SIGKILLed inside dbt or inside the publish serves nothing half made,
and a rerun serves what a clean run serves.

The real NYC SODA sample arrives through the replay server. A `refresh_nyc` run
over 19 November 2012 is published: the previous publish. A run over the 21st
brings 963 more requests, so its publish would change what is served; it is
killed, each run in a child process of its own group
(tests/helpers/killable_run.py):

- inside dbt, three times, each run killed later than the one before, as on bad
  nights in a row, so each meets what the last kill left: while the staging views
  are built, while the request-history snapshot is written, and once the facts are
  rebuilt but the marts not yet. The test reads dbt's structured log and kills the
  process group (the run and its dbt) when that node starts;
- inside the publish (a `publish` job over the rebuilt marts), where the child kills
  itself: after the first table is written as Parquet, and with the new serving
  file complete, just before os.replace swaps it in.

After each kill the warehouse opens read-write (DuckDB replays its WAL), and the
serving file is the previous publish byte for byte, with `current` naming the same
Parquet folder and its files unchanged. A rerun then leaves what a clean run
leaves (a content hash of every table, the load time aside): the marts and the
request history in the warehouse, the serving file and the Parquet; and nothing
of the killed publishes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter, build_sensor_context

from orchestration.resources import WAREHOUSE_POOL
from orchestration.sensors import dead_runs_sensor
from orchestration.serving import SERVING_NAME
from tests.helpers.data import NYC_SODA_SAMPLE, REPO
from tests.helpers.killable_run import KILL_POINTS
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import content_hash, file_digest, instance_folder
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

# Partitions (UTC days, read with NYC's 72-hour lookback): the 19th serves the 33
# requests changed on 16-19 November, the 21st those of 18-21 November (996).
PREVIOUS_DAY, NEW_DAY = "2012-11-19", "2012-11-21"
# The instant the models treat as now, pinned as a backfill pins it, so that runs
# made minutes apart build the same open-request ages.
AS_OF = "2026-11-01 00:00:00+00"
VOLATILE = {"loaded_at"}  # when the raw row was loaded: new at every load
RUN_LIMIT_SECONDS = 900  # a run here takes 1-2 minutes; one still going is stuck


@dataclass(frozen=True)
class DbtPoint:
    """Kill when a node whose id starts with `starts` starts. The kill must land while
    that layer is built: some node whose id starts with `unbuilt` not yet started."""

    name: str
    starts: str
    unbuilt: str


DBT_POINTS = [
    DbtPoint("staging", "model.civic311.stg_", unbuilt="model.civic311.int_service_requests"),
    DbtPoint(
        "snapshot", "snapshot.civic311.snp_service_requests", unbuilt="model.civic311.fct_request_events"
    ),
    DbtPoint("marts", "model.civic311.mart_", unbuilt="model.civic311.mart_"),
]


class DbtLog:
    """The JSON lines dbt writes to dbt.log, for every dbt invocation started after
    this was made (dagster-dbt gives each its own folder under DBT_TARGET_PATH)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.earlier = set(target.glob("*/dbt.log"))
        self.read: dict[Path, int] = {}
        self.events: list[dict] = []
        self.completed: set[Path] = set()  # the invocations that ran to their end

    def poll(self) -> list[tuple[Path, dict]]:
        new = []
        for log in sorted(set(self.target.glob("*/dbt.log")) - self.earlier):
            with log.open("rb") as stream:
                stream.seek(self.read.get(log, 0))
                for line in stream:
                    if not line.endswith(b"\n"):  # a line still being written
                        break
                    self.read[log] = self.read.get(log, 0) + len(line)
                    if line.startswith(b"{"):
                        new.append((log, json.loads(line)))
        self.events += [event for _, event in new]
        self.completed |= {log for log, event in new if event["info"]["name"] == "CommandCompleted"}
        return new

    def nodes(self, event_name: str) -> set[str]:
        return {e["data"]["node_info"]["unique_id"] for e in self.events if e["info"]["name"] == event_name}


@dataclass
class Outcome:
    returncode: int
    output: str
    dbt: DbtLog
    killed_on: str | None = None  # the node whose start the kill came on
    killed_in: Path | None = None  # the log of its dbt invocation


@dataclass
class Site:
    """One place every run of this module uses in turn: the warehouse, serving file and
    Parquet in `run/`, a Dagster instance and dbt's target folder. Always the same
    paths, so dbt's parse of the project (which depends on the warehouse path and the
    vars) is reused. States are saved to and restored from folders beside it."""

    root: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.root / "run"

    @property
    def warehouse(self) -> Path:
        return self.folder / "warehouse.duckdb"

    @property
    def serving(self) -> Path:
        return self.folder / SERVING_NAME

    @property
    def published(self) -> Path:
        return self.folder / "published"

    @property
    def dbt_target(self) -> Path:
        return self.root / "dbt_target"

    def save(self, name: str) -> None:
        shutil.copytree(self.folder, self.root / name, symlinks=True)
        shutil.copytree(self.home, self.root / f"{name}-instance")

    def restore(self, name: str, serving_from: str | None = None) -> None:
        """The state saved as `name`, with the serving file and Parquet of `serving_from`."""
        shutil.rmtree(self.folder)
        shutil.copytree(self.root / name, self.folder, symlinks=True)
        shutil.rmtree(self.home)
        shutil.copytree(self.root / f"{name}-instance", self.home)
        if serving_from:
            shutil.copy(self.root / serving_from / SERVING_NAME, self.serving)
            shutil.rmtree(self.published)
            shutil.copytree(self.root / serving_from / "published", self.published, symlinks=True)

    def run(self, *args: str, kill_when: Callable[[dict], bool] | None = None) -> Outcome:
        """`python -m tests.helpers.killable_run ARGS` in a new process group; with
        `kill_when`, SIGKILL the group at the first dbt log event it accepts."""
        dbt = DbtLog(self.dbt_target)
        log = self.root / "last_run.log"
        with log.open("w") as output:
            child = subprocess.Popen(  # noqa: S603 - fixed argv
                [sys.executable, "-m", "tests.helpers.killable_run", *args],
                cwd=REPO,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            killed_on = killed_in = None
            deadline = time.monotonic() + RUN_LIMIT_SECONDS
            while child.poll() is None and killed_on is None:
                if time.monotonic() > deadline:  # a run waiting forever, say for a pool slot
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
                    raise AssertionError(
                        f"{args} still ran after {RUN_LIMIT_SECONDS} s:\n{log.read_text()[-3000:]}"
                    )
                for log_path, event in dbt.poll() if kill_when else []:
                    if kill_when(event):
                        os.killpg(child.pid, signal.SIGKILL)
                        killed_on, killed_in = event["data"]["node_info"]["unique_id"], log_path
                        break
                time.sleep(0.01)
            child.wait()
        _wait_until_gone(child.pid)
        dbt.poll()
        return Outcome(child.returncode, log.read_text(), dbt, killed_on, killed_in)


def _wait_until_gone(group: int) -> None:
    """Wait until no process of the group is left (dbt, killed with it, is reaped by init)."""
    for _ in range(3000):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process group {group} still runs after its run ended")


def _starts(prefix: str) -> Callable[[dict], bool]:
    def accept(event: dict) -> bool:
        node = event["data"].get("node_info") or {}
        return event["info"]["name"] == "NodeStart" and node.get("unique_id", "").startswith(prefix)

    return accept


@dataclass(frozen=True)
class Published:
    """What BI tools read: the serving file's bytes, the folder `current` names and
    the bytes of every file in it."""

    serving: str
    current: str
    files: dict[str, str]


def published(folder: Path) -> Published:
    """What is published beside the warehouse in `folder`."""
    current = folder / "published" / "current"
    files = {str(p.relative_to(current)): file_digest(p) for p in sorted(current.rglob("*")) if p.is_file()}
    return Published(file_digest(folder / SERVING_NAME), os.readlink(current), files)


def table_hashes(database: Path, schema: str = "marts") -> dict[str, tuple[int, str]]:
    """Every table of `schema`: rows and content hash, the load time aside."""
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "select table_name from duckdb_tables() where schema_name = ?", [schema]
        ).fetchall()
        return {t: content_hash(con, t, exclude=VOLATILE, schema=schema) for (t,) in sorted(tables)}


def parquet_hashes(folder: Path) -> dict[str, tuple[int, str]]:
    """Every Parquet and GeoParquet file in `folder`: rows and content hash."""
    with duckdb.connect() as con:
        con.execute("create schema marts")
        names = {}
        for path in sorted(folder.rglob("*.parquet")):
            name = str(path.relative_to(folder).with_suffix(""))
            view = name.replace("/", "__")
            con.execute(f"create view marts.\"{view}\" as select * from read_parquet('{path}')")
            names[name] = view
        return {name: content_hash(con, view, exclude=VOLATILE) for name, view in names.items()}


def served(folder: Path) -> dict[str, dict]:
    """The marts (and the request history they are built from) in the warehouse in
    `folder`, and what is published from them beside it."""
    return {
        "warehouse": table_hashes(folder / "warehouse.duckdb"),
        "history": table_hashes(folder / "warehouse.duckdb", schema="snapshots"),
        "serving": table_hashes(folder / SERVING_NAME),
        "parquet": parquet_hashes(folder / "published" / "current"),
    }


def opens_read_write(warehouse: Path, scratch: Path) -> int:
    """Open a copy of a killed run's warehouse (with its WAL) read-write, as the next
    run will: DuckDB replays the WAL. The copy leaves the original for that run."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    for path in warehouse.parent.glob(warehouse.name + "*"):
        shutil.copy(path, scratch / path.name)
    with duckdb.connect(str(scratch / warehouse.name)) as con:
        con.execute("checkpoint")
        (requests,) = con.execute("select count(*) from raw_nyc.service_requests").fetchone()
    return requests


def publish_output(site: Site) -> list[str]:
    """The names publishes write beside the warehouse: serving files (a hidden one is a
    publish's before its swap) and what the Parquet folder holds."""
    return sorted(
        [p.name for p in site.folder.glob(f"*{SERVING_NAME}*")]
        + [f"published/{p.name}" for p in site.published.iterdir()]
    )


def only_published(*publish_ids: str) -> list[str]:
    """`publish_output` when the publishes `publish_ids` finished and nothing else is left."""
    return sorted([SERVING_NAME, "published/current", *(f"published/{p}" for p in publish_ids)])


@dataclass(frozen=True)
class Runs:
    previous: Published
    clean: dict[str, dict]


@pytest.fixture(scope="module")
def site(tmp_path_factory, dbt_manifest) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("kills")
    home = instance_folder(root / "dagster_home")
    registry = write_registry(root / "cities.yaml", page_size=1000, requests_per_minute=None)
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    with ReplayServer() as server:
        server.add_dataset(
            "fhrw-4uyv", records, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
        )
        server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")
        env = {k: v for k, v in os.environ.items() if k not in ("CIVIC311_SERVING", "CIVIC311_PUBLISHED")}
        site = Site(root, home)
        site.env = env | {
            "CIVIC311_WAREHOUSE": str(site.warehouse),
            "CIVIC311_CITIES": str(registry),
            "CIVIC311_REPLAY_URL": server.url,
            "DAGSTER_HOME": str(home),
            "DBT_TARGET_PATH": str(site.dbt_target),
        }
        site.folder.mkdir()
        site.dbt_target.mkdir()
        shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
        yield site
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(site) -> Runs:
    """The previous publish (the 19th), then a clean run over the 21st on top of it."""
    first = site.run("refresh_nyc", "--days", PREVIOUS_DAY, PREVIOUS_DAY, "--as-of", AS_OF)
    assert first.returncode == 0, first.output[-3000:]
    site.save("previous")
    clean = site.run("refresh_nyc", "--days", NEW_DAY, NEW_DAY, "--as-of", AS_OF)
    assert clean.returncode == 0, clean.output[-3000:]
    site.save("clean")
    # dbt parses the whole project again when the warehouse path or the vars change.
    # Every later run has the clean run's: dagster-dbt hands them its parse from here.
    parse = max(site.dbt_target.glob("*/partial_parse.msgpack"), key=lambda p: p.stat().st_mtime)
    shutil.copy(parse, site.dbt_target / "partial_parse.msgpack")
    return Runs(published(site.root / "previous"), served(site.root / "clean"))


def test_runs_killed_inside_dbt_then_a_rerun_serve_what_a_clean_run_serves(site, runs, dbt_manifest):
    manifest = json.loads(dbt_manifest.read_text())
    site.restore("previous")
    for point in DBT_POINTS:
        killed = site.run(
            "refresh_nyc", "--days", NEW_DAY, NEW_DAY, "--as-of", AS_OF, kill_when=_starts(point.starts)
        )
        assert killed.returncode == -signal.SIGKILL, (point.name, killed.output[-3000:])
        assert killed.killed_in is not None and killed.killed_in not in killed.dbt.completed, point.name
        unbuilt = {node for node in manifest["nodes"] if node.startswith(point.unbuilt)}
        assert unbuilt - killed.dbt.nodes("NodeStart"), (point.name, "the kill came after the layer")
        assert opens_read_write(site.warehouse, site.root / "scratch") > 0, point.name
        assert published(site.folder) == runs.previous, point.name
        assert publish_output(site) == only_published(runs.previous.current), point.name

    rerun = site.run("refresh_nyc", "--days", NEW_DAY, NEW_DAY, "--as-of", AS_OF)
    assert rerun.returncode == 0, rerun.output[-3000:]
    assert served(site.folder) == runs.clean
    new = published(site.folder).current
    assert publish_output(site) == only_published(runs.previous.current, new)


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_publish_killed_before_its_swap_leaves_the_previous_one(site, runs, kill_at):
    site.restore("clean", serving_from="previous")  # the marts rebuilt, not yet published
    killed = site.run("publish", "--kill-at", kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.output[-3000:]
    assert opens_read_write(site.warehouse, site.root / "scratch") > 0
    assert published(site.folder) == runs.previous
    # Dagster keeps the killed run started, holding the warehouse pool; under `dagster
    # dev` the dead_runs sensor releases it (the dbt kills above are released by the
    # next run itself).
    with DagsterInstance.from_config(str(site.home)) as instance:
        (stuck,) = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
        said = dead_runs_sensor(build_sensor_context(instance=instance))
        assert stuck.run_id in said.skip_message
        assert instance.get_run_by_id(stuck.run_id).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
    # What it wrote before the swap stays, until the next publish removes it.
    assert publish_output(site) != only_published(runs.previous.current)

    rerun = site.run("publish")
    assert rerun.returncode == 0, rerun.output[-3000:]
    assert served(site.folder) == runs.clean
    new = published(site.folder).current
    assert publish_output(site) == only_published(runs.previous.current, new)
