"""Scale benchmark (issue 18): the history bootstrap at two sizes, a day's refresh
after it, and a year's backfill from the UI, on SYNTHETIC NYC data.

    .venv/bin/python -m bench.scale [--requests-small 1000000] [--requests-large 5000000]
                                    [--days 730] [--p8-requests 1000000] [--p8-per-run N]
                                    [--p8-launch job,assets]
                                    [--repeat 1] [--goals p7,p6,p4,p8] [--keep DIR]

P7  `civic311 bootstrap --city nyc --from-file <export>` of a synthetic NYC portal CSV
    export of --requests-large rows (bench/ingest.py's generator, kept in data/bench/),
    in a subprocess with a fresh warehouse and DAGSTER_HOME: load, one full dbt build,
    every check, the publish. Prints the wall time, the time per phase the command
    reports, and the ratio of the wall time to DuckDB `read_csv` of the same file in
    the same run (the goal: at most 25x).
P6  peak RSS of the bootstrap's process tree (the command and the dbt processes it
    starts, sampled with psutil) at --requests-large over --requests-small (the goal:
    at most 1.5x).
P4  on the --requests-large warehouse, with NYC's offline boundary layers loaded: a
    full rebuild (`dagster job execute -j rebuild`), then one city-day refresh
    (`dagster job execute -j refresh_nyc` for the day after the export, the run the
    UI launches for one partition; the daily refresh runs each city's load, then the
    models once): raw load through the replay (in its own process), both dbt steps, every
    check, the publish. The day's feed is a day's share of the history, all new
    requests. Prints both walls and the ratio (goals: at most 60 s, at most 0.2x).
P8  a backfill of 365 days started the way a user starts one: a SYNTHETIC NYC feed of
    --p8-requests requests created over the 365 days before 1 November 2026 (kept in
    data/bench/), served by the replay in its own process; a fresh warehouse with NYC's
    offline boundary layers; a throwaway PostgreSQL cluster for the instance; `civic311
    dev --postgres` (webserver and daemon); then the UI's `launchPartitionBackfill` over
    the 365 days, once per --p8-launch (default both): `job`, from the job refresh_nyc's
    page (Materialize all: its partition set with all its assets, so each run is the
    whole job over its days), and
    `assets`, of refresh_nyc's assets (NYC's raw asset, every dbt model, the publish;
    their checks come with them), each awaited until the daemon marks it done. Wall is
    from the mutation to the backfill's end. Work is what the instance's event log
    records: each raw load's dlt pipeline (`load_seconds`), each check's evaluation
    (`seconds`), and each dbt command's own time (its dbt.log under
    dbt_project/target/<step>-<run>-<uuid>/; dbt's interpreter start is not in it).
    Prints every run (raw days, models, or the whole job) with its wall, step and work
    times, when the daemon first looked at the backfill, and Dagster's share, 1 - work
    / wall (the goal: at most 20%; the publish counts as Dagster's, being none of the
    three). `p8_*` are the first launch's figures, `p8_<launch>_*` each launch's.
    --p8-per-run sets the days per raw run (CIVIC311_RAW_PARTITIONS_PER_RUN).

The export's requests are created over the --days before 1 November 2026.

Times are the best of --repeat runs (P8 runs once); the peak RSS the highest. Run from
the repository root. Ends with one JSON line holding every figure (`p7_ratio`,
`p6_rss_ratio`, `p4_ratio`, `p8_dagster_share`, ...). A goal is one function
`(args, work) -> dict` of JSON keys listed in GOALS; the bootstrapped warehouses stay
in `work` until the end, for goals that start from one; with --keep DIR they stay in
DIR afterwards, to profile (the dbt steps' run_results.json are under
dbt_project/target/; P8's PostgreSQL cluster is removed either way).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import psutil

from bench.ingest import BENCH_DATA, duckdb_csv, generated_once, synthetic_export
from tooling.synthetic import generate_nyc

REPO = Path(__file__).resolve().parents[1]
CIVIC311 = Path(sys.executable).with_name("civic311")
RSS_SAMPLE_SECONDS = 0.1
# The bootstrap's "time per phase" lines: "  load            1.8 s".
PHASE_LINE = re.compile(r"^  (?P<phase>[A-Za-z][A-Za-z ]*?)\s+(?P<seconds>[\d.]+) s$")


@dataclass
class BootstrapRun:
    """One `civic311 bootstrap` in a subprocess: its wall time, the phases it printed,
    the peak RSS of its process tree, and the warehouse and Dagster home it wrote."""

    requests: int
    seconds: float
    phases: dict[str, float]
    peak_rss_bytes: int
    warehouse: Path
    dagster_home: Path
    output: str = field(repr=False)
    # The tree's members at its peak: what each kind of process held then (tree_members).
    peak_members: dict[str, int] = field(default_factory=dict)


def tree_members(process: psutil.Process) -> dict[str, int]:
    """Resident bytes of a process and every descendant, now, by kind: the process
    itself (`civic311`: the bootstrap, its Dagster run, the checks and the publish),
    `dbt` (its commands) and `other`."""
    members: dict[str, int] = {}
    for number, member in enumerate([process, *process.children(recursive=True)]):
        try:
            rss = member.memory_info().rss
            command = " ".join(member.cmdline())
        except psutil.NoSuchProcess:
            continue
        kind = "civic311" if number == 0 else "dbt" if "dbt" in command else "other"
        members[kind] = members.get(kind, 0) + rss
    return members


def environment(warehouse: Path, home: Path, replay_url: str | None = None) -> dict[str, str]:
    """civic311's settings for a subprocess on `warehouse` and the instance in `home`."""
    env = {
        **os.environ,
        "CIVIC311_WAREHOUSE": str(warehouse),
        "DAGSTER_HOME": str(home),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "GX_ANALYTICS_ENABLED": "False",
    }
    env.pop("CIVIC311_REPLAY_URL", None)
    if replay_url:
        env["CIVIC311_REPLAY_URL"] = replay_url
    return env


def run_bootstrap(export: Path, requests: int, folder: Path) -> BootstrapRun:
    """`civic311 bootstrap` of `export` into a fresh warehouse and Dagster home under `folder`."""
    warehouse, home = folder / "warehouse" / "warehouse.duckdb", folder / "dagster_home"
    warehouse.parent.mkdir(parents=True)
    home.mkdir()
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    env = environment(warehouse, home)
    peak, peak_members = 0, {}
    started = time.perf_counter()
    process = psutil.Popen(
        [str(CIVIC311), "bootstrap", "--city", "nyc", "--from-file", str(export)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the progress bars
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        members = tree_members(process)
        if sum(members.values()) > peak:
            peak, peak_members = sum(members.values()), members
        time.sleep(RSS_SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    reader.join()
    output = "".join(lines)
    if process.returncode != 0:
        raise SystemExit(f"civic311 bootstrap of {export} failed ({process.returncode}):\n{output[-3000:]}")
    phases = {m["phase"]: float(m["seconds"]) for m in map(PHASE_LINE.match, output.splitlines()) if m}
    return BootstrapRun(requests, seconds, phases, peak, warehouse, home, output, peak_members)


@functools.cache
def bootstrapped(requests: int, days: int, work: Path, repeat: int) -> BootstrapRun:
    """The best of `repeat` bootstraps of the synthetic export of `requests` rows over
    `days` (the fastest run, with the highest peak RSS of them all); shared by the goals."""
    export = synthetic_export(requests, days)
    runs = [run_bootstrap(export, requests, work / f"bootstrap_{requests}_{n}") for n in range(repeat)]
    best = min(runs, key=lambda run: run.seconds)
    best.peak_rss_bytes = max(run.peak_rss_bytes for run in runs)
    return best


def read_csv_seconds(requests: int, days: int, work: Path, repeat: int) -> float:
    """DuckDB `read_csv` of the same export into a fresh database, best of `repeat`."""
    export = synthetic_export(requests, days)
    best = float("inf")
    for n in range(repeat):
        started = time.perf_counter()
        rows = duckdb_csv(export, work, f"{requests}_{n}")
        best = min(best, time.perf_counter() - started)
        (work / f"baseline_csv_{requests}_{n}.duckdb").unlink()
    if rows != requests:
        raise SystemExit(f"read_csv read {rows} rows of {requests}")
    return best


def p7(args: argparse.Namespace, work: Path) -> dict:
    """Bootstrap of --requests-large rows against DuckDB read_csv of the same file."""
    run = bootstrapped(args.requests_large, args.days, work, args.repeat)
    baseline = read_csv_seconds(args.requests_large, args.days, work, args.repeat)
    ratio = run.seconds / baseline
    print(f"P7 bootstrap of {run.requests:,} SYNTHETIC NYC requests: {run.seconds:.1f} s wall")
    for phase, seconds in run.phases.items():
        print(f"     {phase:<11}{seconds:8.1f} s")
    print(f"   DuckDB read_csv of the same file: {baseline:.2f} s; ratio {ratio:.1f}x (goal <= 25x)")
    return {
        "p7_ratio": round(ratio, 2),
        "p7_seconds": round(run.seconds, 1),
        "p7_read_csv_seconds": round(baseline, 2),
        "p7_rows": run.requests,
        "p7_phases": run.phases,
    }


def p6(args: argparse.Namespace, work: Path) -> dict:
    """Peak RSS of the bootstrap at --requests-large over --requests-small."""
    small = bootstrapped(args.requests_small, args.days, work, args.repeat)
    large = bootstrapped(args.requests_large, args.days, work, args.repeat)
    ratio = large.peak_rss_bytes / small.peak_rss_bytes
    print(
        f"P6 bootstrap peak RSS (process tree): {large.peak_rss_bytes / 2**20:,.0f} MiB at "
        f"{large.requests:,} vs {small.peak_rss_bytes / 2**20:,.0f} MiB at {small.requests:,} requests; "
        f"ratio {ratio:.2f}x (goal <= 1.5x)"
    )
    for run in (small, large):
        held = ", ".join(f"{kind} {rss / 2**20:,.0f} MiB" for kind, rss in sorted(run.peak_members.items()))
        print(f"     at the peak of {run.requests:,}: {held}")
    return {
        "p6_rss_ratio": round(ratio, 2),
        "p6_rss_small_mib": round(small.peak_rss_bytes / 2**20),
        "p6_rss_large_mib": round(large.peak_rss_bytes / 2**20),
        "p6_requests_small": small.requests,
        "p6_requests_large": large.requests,
        "p6_seconds_small": round(small.seconds, 1),
        "p6_peak_members_mib": {
            str(run.requests): {kind: round(rss / 2**20) for kind, rss in run.peak_members.items()}
            for run in (small, large)
        },
    }


# The day after the export's last: the generator's history ends on 1 November 2026.
REFRESH_DAY = date(2026, 11, 1)


def day_feed(requests: int, days: int) -> Path:
    """SYNTHETIC NYC requests created on REFRESH_DAY, as the portal's API serves them
    the day after the export: a day's share of `requests` over `days`, keyed after
    every key of the export (so each is a new request). Generated once per size and
    kept in data/bench/."""

    def write(partial: Path, work: Path) -> None:
        generated = work / "day.json"
        end = REFRESH_DAY + timedelta(days=1)
        generate_nyc(generated, requests=max(1, requests // days), days=1, end=end, seed=312)
        records = json.loads(generated.read_text())
        for record in records:
            record["unique_key"] = str(int(record["unique_key"]) + requests)
        partial.write_text(json.dumps(records))

    path = BENCH_DATA / f"synthetic_nyc_day_{requests}_{days}d.json"
    return generated_once(path, write, {"seed": 312, "day": REFRESH_DAY.isoformat()})


def dagster_job(env: dict[str, str], job: str, args: list[str]) -> float:
    """`dagster job execute` of `job` with civic311's settings `env` (a warehouse and an
    instance: `environment`), the way a run is launched outside the UI: a process that
    loads the code location (orchestration.definitions, what workspace.yaml names) and
    runs the job on the instance. Its wall time, in seconds."""
    command = [
        str(CIVIC311.with_name("dagster")),
        "job",
        "execute",
        "-m",
        "orchestration.definitions",
        "-j",
        job,
        *args,
    ]
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this environment's dagster
        command,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dagster job execute -j {job} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def last_run_steps(home: Path) -> dict[str, float]:
    """Seconds per step of the newest run in the instance at `home`, and its whole run."""
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records(RunsFilter(), limit=1)
        steps = {
            stat.step_key: round(stat.end_time - stat.start_time, 1)
            for stat in instance.get_run_step_stats(record.dagster_run.run_id)
            if stat.end_time and stat.start_time
        }
        if record.end_time and record.start_time:
            steps["(run)"] = round(record.end_time - record.start_time, 1)
    return steps


def load_offline_boundaries(env: dict[str, str], config: Path) -> list[str]:
    """NYC's boundary layers that load without the network, into the warehouse of `env`
    (`dagster job execute -j refresh_boundaries`, its run config written to `config`),
    so that the spatial model places the requests. Their names."""
    from ingestion.registry import load_registry

    offline = [layer.name for layer in load_registry().city("nyc").boundaries if layer.loads_offline]
    config.write_text(
        json.dumps({"ops": {"geography__boundaries": {"config": {"cities": ["nyc"], "layers": offline}}}})
    )
    dagster_job(env, "refresh_boundaries", ["-c", str(config)])
    return offline


def p4(args: argparse.Namespace, work: Path) -> dict:
    """A city-day refresh on the --requests-large warehouse against its full rebuild."""
    from tooling.replay.process import ReplayProcess

    run = bootstrapped(args.requests_large, args.days, work, args.repeat)
    env = environment(run.warehouse, run.dagster_home)
    offline = load_offline_boundaries(env, work / "boundaries.yaml")
    rebuild = min(dagster_job(env, "rebuild", []) for _ in range(args.repeat))
    feed = day_feed(args.requests_large, args.days)
    tags = json.dumps({"dagster/partition": REFRESH_DAY.isoformat()})
    with ReplayProcess({"nyc": [feed]}) as replay:
        env = environment(run.warehouse, run.dagster_home, replay.url)
        day = min(dagster_job(env, "refresh_nyc", ["--tags", tags]) for _ in range(args.repeat))
    steps = last_run_steps(run.dagster_home)
    ratio = day / rebuild
    print(
        f"P4 on {run.requests:,} SYNTHETIC NYC requests with {', '.join(offline)}: full rebuild "
        f"{rebuild:.1f} s; the refresh of {REFRESH_DAY} ({args.requests_large // args.days:,} new requests) "
        f"{day:.1f} s (goal <= 60 s); ratio {ratio:.3f} (goal <= 0.2)"
    )
    for step, seconds in steps.items():
        print(f"     {step:<24}{seconds:8.1f} s")
    return {
        "p4_seconds": round(day, 1),
        "p4_ratio": round(ratio, 3),
        "p4_rebuild_seconds": round(rebuild, 1),
        "p4_requests": run.requests,
        "p4_day_requests": args.requests_large // args.days,
        "p4_steps": steps,
    }


# P8's feed: requests created over the 365 days before this day, one raw partition a day.
BACKFILL_END = REFRESH_DAY
BACKFILL_DAYS = 365
BACKFILL_TIMEOUT_SECONDS = 6 * 3600
BACKFILL_JOB = "refresh_nyc"
PUBLISH_STEP = "serving__marts"
# How a user starts the backfill: the job's page (Materialize all), or a selection of its assets.
LAUNCHES = ("job", "assets")
DBT_TARGET = REPO / "dbt_project" / "target"


def backfill_feed(requests: int) -> Path:
    """SYNTHETIC NYC requests created over the BACKFILL_DAYS before BACKFILL_END, as the
    portal's API serves them (SODA JSON, with the generator's .meta.json saying
    synthetic); generated once per size and kept in data/bench/."""
    path = BENCH_DATA / f"synthetic_nyc_backfill_{requests}_{BACKFILL_DAYS}d.json"
    if not path.exists():
        BENCH_DATA.mkdir(parents=True, exist_ok=True)
        generate_nyc(path, requests=requests, days=BACKFILL_DAYS, end=BACKFILL_END)
    return path


@contextlib.contextmanager
def dev_server(env: dict[str, str], cluster: Path, log: Path):
    """`civic311 dev --postgres CLUSTER` (the webserver and the daemon) on a free loopback
    port, its output in `log`; yields the port once the code location has loaded, and
    stops the UI afterwards (which leaves running the cluster it did not start)."""
    from tests.helpers.webserver import free_port, start_dev, stop_dev, wait_for_code_location

    port = free_port()
    with log.open("w") as output:
        dev = start_dev(port, cluster, env, output)
        try:
            entry = wait_for_code_location(port, dev)
            if entry["locationOrLoadError"]["__typename"] != "RepositoryLocation":
                raise SystemExit(f"the code location did not load: {entry}")
            yield port, dev
        except BaseException:
            print(log.read_text()[-5000:], file=sys.stderr)
            raise
        finally:
            stop_dev(dev)


def run_backfill(port: int, dev: subprocess.Popen, launch: str, days: list[str]):
    """`launchPartitionBackfill` over `days`, as the UI sends it: of refresh_nyc's assets
    selected in the asset graph (`launch` "assets"), or from the job refresh_nyc's page
    ("job": Materialize all, which backfills the job's partition set). Then waits for the
    daemon to finish it. The backfill's id, the wall clock when the mutation was sent and
    when the finished status was seen, and that status."""
    from tests.helpers.webserver import (
        BACKFILL_ENDED,
        job_assets,
        launch_backfill,
        launch_job_backfill,
        wait_for_backfill,
    )

    title = f"bench/scale.py P8: {len(days)} days of NYC"
    if launch == "assets":
        assets = job_assets(port, BACKFILL_JOB)
        submitted = time.time()
        backfill_id = launch_backfill(port, assets, days, title=title)
    else:
        submitted = time.time()
        backfill_id = launch_job_backfill(port, BACKFILL_JOB, days, title=title)
    status = wait_for_backfill(port, backfill_id, dev, timeout=BACKFILL_TIMEOUT_SECONDS)
    if status.get("status") not in BACKFILL_ENDED:
        raise SystemExit(f"backfill {backfill_id} did not finish (civic311 dev exit code {dev.poll()})")
    return backfill_id, submitted, time.time(), status["status"]


@contextlib.contextmanager
def postgres_instance(home: Path, settings):
    """The Dagster instance at `home`, whose dagster.yaml reads the PostgreSQL settings
    from this process's environment while it is open."""
    from dagster import DagsterInstance

    before = dict(os.environ)
    os.environ.update(settings.environment())
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        os.environ.clear()
        os.environ.update(before)


def dbt_invocations(run_id: str) -> list[float]:
    """Seconds of each dbt command a run started, as dbt measured it (its CommandCompleted
    event in dbt.log; dagster-dbt gives each invocation dbt_project/target/<step>-<run
    id's first 7>-<uuid>/). dbt's interpreter start, before its first event, is not in it."""
    seconds = []
    for log in DBT_TARGET.glob(f"*-{run_id[:7]}-*/dbt.log"):
        completed = [
            event["data"]["elapsed"]
            for event in map(json.loads, log.read_text().splitlines())
            if event["info"]["name"] == "CommandCompleted"
        ]
        if not completed:
            raise SystemExit(f"{log}: dbt did not complete its command")
        seconds.extend(completed)
    return seconds


@dataclass
class BackfillRunFigures:
    """One run of the backfill: its kind (raw days, or the models), wall, step times and work."""

    kind: str
    days: str
    started: float
    seconds: float
    step_seconds: dict[str, float]
    dlt: float = 0.0
    dbt: float = 0.0
    checks: float = 0.0
    dbt_invocations: int = 0
    check_results: int = 0


def run_figures(instance, record) -> BackfillRunFigures:
    """What a finished run of the backfill spent, from the instance's event log: its
    steps' times, the dlt pipeline's `load_seconds` of its raw step, each check's
    `seconds`, and each dbt command's own time."""
    from dagster import DagsterEventType
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    run = record.dagster_run
    # A run of the whole job (a job backfill's) selects no assets.
    raw = bool(run.asset_selection) and all(key.path[0] == "raw" for key in run.asset_selection)
    tags = run.tags
    ranged = ASSET_PARTITION_RANGE_START_TAG in tags
    days = f"{tags.get(ASSET_PARTITION_RANGE_START_TAG, '')}..{tags.get(ASSET_PARTITION_RANGE_END_TAG, '')}"
    # A job backfill's run is the whole job over its days; an asset backfill's is raw days or models.
    kind = "raw" if raw else ("job" if ranged else "models")
    figures = BackfillRunFigures(
        kind=kind,
        days=days if ranged else f"{len(run.asset_selection)} assets",
        started=record.start_time,
        seconds=record.end_time - record.start_time,
        step_seconds={
            stat.step_key: stat.end_time - stat.start_time
            for stat in instance.get_run_step_stats(run.run_id)
            if stat.start_time and stat.end_time
        },
    )
    load_by_step: dict[str, float] = {}
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        if "load_seconds" in materialization.metadata:  # one per day of the step, the same value
            load_by_step[entry.step_key] = materialization.metadata["load_seconds"].value
    figures.dlt = sum(load_by_step.values())
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        metadata = entry.dagster_event.event_specific_data.metadata
        if "seconds" in metadata:  # a layer's check; dbt's tests are in dbt's time
            figures.checks += metadata["seconds"].value
            figures.check_results += 1
    invocations = dbt_invocations(run.run_id)
    figures.dbt, figures.dbt_invocations = sum(invocations), len(invocations)
    return figures


def error_messages(error) -> str:
    """An error's message and its causes' (a SerializableErrorInfo), without the stacks;
    a long one by its start and its end (dbt's errors come last, after its command)."""
    messages = []
    while error is not None:
        text = error.message.strip()
        messages.append(text if len(text) <= 1500 else f"{text[:200]} [...] {text[-1300:]}")
        error = error.cause
    return "\n    caused by ".join(messages)


def failure_report(instance, records) -> str:
    """Each failed run's assets, its failed steps and their errors, or the run's own failure."""
    from dagster import DagsterEventType, DagsterRunStatus

    said = []
    for record in records:
        run = record.dagster_run
        if run.status == DagsterRunStatus.SUCCESS:
            continue
        assets = sorted(key.to_user_string() for key in run.asset_selection or [])
        said.append(f"run {run.run_id} ({run.status.value}) of {len(assets)} assets: {', '.join(assets)}")
        for entry in instance.all_logs(
            run.run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
        ):
            event = entry.dagster_event
            failed = event.step_failure_data if event.is_step_failure else event.job_failure_data
            detail = error_messages(failed.error) if failed and failed.error else (event.message or "")
            said.append(f"  step {entry.step_key or '(the run)'}: {detail}")
    return "\n".join(said)


DAEMON_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+0000.* - dagster\.daemon\.BackfillDaemon - ")


def daemon_first_look(log: Path, backfill_id: str) -> float | None:
    """When the backfill daemon first logged `backfill_id` in `civic311 dev`'s output (a
    UTC wall clock, to the second): it looks at new backfills every 30 s, a period fixed
    in Dagster (dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS)."""
    for line in log.read_text(errors="replace").splitlines():
        if backfill_id in line and (found := DAEMON_LINE.search(line)):
            return datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    return None


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """How long at least one of the [start, end] intervals was in progress."""
    busy, reached = 0.0, float("-inf")
    for start, end in sorted(intervals):
        start = max(start, reached)
        if end > start:
            busy += end - start
        reached = max(reached, end)
    return busy


def p8(args: argparse.Namespace, work: Path) -> dict:
    """A year's backfill of NYC from the UI, with the daemon, on PostgreSQL storage, once
    per --p8-launch: Dagster's own share of its wall time. `p8_*` are the first launch's
    figures (the job's, by default), `p8_<launch>_*` each launch's."""
    launches = args.p8_launch.split(",")
    if unknown := set(launches) - set(LAUNCHES):
        raise SystemExit(f"--p8-launch {','.join(sorted(unknown))}: give {' or '.join(LAUNCHES)}")
    report: dict = {}
    for number, launch in enumerate(launches):
        figures = p8_backfill(args, work, launch)
        if number == 0:
            report |= figures
        report |= {key.replace("p8_", f"p8_{launch}_", 1): value for key, value in figures.items()}
    return report


def p8_backfill(args: argparse.Namespace, work: Path, launch: str) -> dict:
    """One backfill of P8, launched as `launch` says (LAUNCHES)."""
    import secrets

    from dagster import DagsterRunStatus, RunsFilter

    from orchestration.partitions import PARTITIONS_PER_RUN_ENV, raw_partitions_per_run
    from tests.helpers.webserver import free_port
    from tooling.postgres import PASSWORD_ENV, PORT_ENV, LocalCluster, Settings, write_instance_settings
    from tooling.replay.process import ReplayProcess

    per_run = args.p8_per_run or raw_partitions_per_run()
    feed = backfill_feed(args.p8_requests)
    first_day = BACKFILL_END - timedelta(days=BACKFILL_DAYS)
    days = [(first_day + timedelta(days=n)).isoformat() for n in range(BACKFILL_DAYS)]
    folder = work / f"p8_{launch}_{args.p8_requests}_{per_run}"
    warehouse = folder / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    # The cluster's folder must be reachable by the postgres user when we run as root:
    # a folder of its own under the system's temporary folder, not `work`.
    cluster_folder = Path(tempfile.mkdtemp(prefix="civic311-p8-pg-"))
    settings = Settings.from_env({PASSWORD_ENV: secrets.token_urlsafe(18), PORT_ENV: str(free_port())})
    cluster = LocalCluster(cluster_folder, settings)
    try:
        cluster.start()
        home = write_instance_settings(cluster_folder / "dagster_home").parent
        env = {**environment(warehouse, home), **settings.environment(), PARTITIONS_PER_RUN_ENV: str(per_run)}
        offline = load_offline_boundaries(env, folder / "boundaries.yaml")
        with ReplayProcess({"nyc": [feed]}) as replay:
            env["CIVIC311_REPLAY_URL"] = replay.url
            with dev_server(env, cluster_folder, folder / "dev.log") as (port, dev):
                backfill_id, submitted, polled, status = run_backfill(port, dev, launch, days)
        with postgres_instance(home, settings) as instance:
            backfill = instance.get_backfill(backfill_id)
            records = instance.get_run_records(RunsFilter.for_backfill(backfill_id))
            if status != "COMPLETED_SUCCESS":
                raise SystemExit(
                    f"the backfill ended {status}; {backfill.error.to_string() if backfill.error else ''}\n"
                    + failure_report(instance, records)
                )
            # A run can fail while the backfill completes: the daemon requests its assets again.
            failed_runs = failure_report(instance, records)
            failed_count = sum(record.dagster_run.status != DagsterRunStatus.SUCCESS for record in records)
            runs = sorted((run_figures(instance, record) for record in records), key=lambda run: run.started)
            first_start = min(record.start_time for record in records)
            last_end = max(record.end_time for record in records)
            busy = busy_seconds([(record.start_time, record.end_time) for record in records])
    finally:
        cluster.stop()
        shutil.rmtree(cluster_folder, ignore_errors=True)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (loaded,) = con.execute("select count(*) from raw_nyc.service_requests").fetchone()
        (in_facts,) = con.execute(
            "select count(*) from marts.fct_service_requests where city_id = 'nyc'"
        ).fetchone()
    if loaded != args.p8_requests:
        raise SystemExit(f"the backfill loaded {loaded:,} of the feed's {args.p8_requests:,} requests")
    completed = backfill.backfill_end_timestamp or polled
    first_look = daemon_first_look(folder / "dev.log", backfill_id)
    tick_wait = max(0.0, first_look - submitted) if first_look else float("nan")
    publish = sum(run.step_seconds.get(PUBLISH_STEP, 0.0) for run in runs)
    wall = completed - submitted
    by_kind = {kind: [run for run in runs if run.kind == kind] for kind in ("raw", "models", "job")}
    work_by_kind = {
        "dlt": sum(run.dlt for run in runs),
        "dbt": sum(run.dbt for run in runs),
        "checks": sum(run.checks for run in runs),
    }
    work_seconds = sum(work_by_kind.values())
    share = 1 - work_seconds / wall
    steps = sum(sum(run.step_seconds.values()) for run in runs)
    run_counts = ", ".join(f"{len(members)} {kind}" for kind, members in by_kind.items() if members)
    print(
        f"P8 backfill of {BACKFILL_DAYS} days of {args.p8_requests:,} SYNTHETIC NYC requests from the UI "
        f"(launchPartitionBackfill of {BACKFILL_JOB}'s {'assets' if launch == 'assets' else 'partitions'}; "
        f"daemon; PostgreSQL storage; {per_run} days per raw run; with {', '.join(offline)}): "
        f"{wall:.1f} s wall; "
        f"{loaded:,} requests loaded, {in_facts:,} in fct_service_requests"
    )
    print(
        f"   {len(runs)} runs ({run_counts}); "
        f"submission to the daemon's first look at it {tick_wait:.0f} s (it looks every 30 s), "
        f"to first run start {first_start - submitted:.1f} s; no run in progress for "
        f"{wall - busy:.1f} s; last run's end to completion {completed - last_end:.1f} s"
    )
    for run in runs:
        print(
            f"     {run.kind:<7}{run.days:<24}run {run.seconds:7.1f} s  "
            f"steps {sum(run.step_seconds.values()):7.1f} s"
            f"  dlt {run.dlt:6.1f}  dbt {run.dbt:6.1f} ({run.dbt_invocations})  "
            f"checks {run.checks:5.1f} ({run.check_results})"
        )
        if run.kind != "raw":
            for step, seconds in run.step_seconds.items():
                print(f"       {step:<28}{seconds:8.1f} s")
    print(
        f"   sum of step times {steps:.1f} s; work {work_seconds:.1f} s (dlt {work_by_kind['dlt']:.1f}, "
        f"dbt {work_by_kind['dbt']:.1f}, checks {work_by_kind['checks']:.1f}); "
        f"Dagster's share {share:.1%} (goal <= 20%; it counts the publish, {publish:.1f} s, "
        "as Dagster's: it is none of dlt, dbt and the checks)"
    )
    if failed_runs:
        print(f"   WARNING: the backfill completed, but {failed_count} of its runs failed:\n{failed_runs}")
    return {
        "p8_dagster_share": round(share, 3),
        "p8_seconds": round(wall, 1),
        "p8_requests": args.p8_requests,
        "p8_days": BACKFILL_DAYS,
        "p8_partitions_per_run": per_run,
        "p8_runs": len(runs),
        "p8_runs_by_kind": {kind: len(members) for kind, members in by_kind.items() if members},
        "p8_run_seconds": {
            kind: [round(run.seconds, 1) for run in members] for kind, members in by_kind.items() if members
        },
        "p8_step_seconds": round(steps, 1),
        "p8_work_seconds": {kind: round(seconds, 1) for kind, seconds in work_by_kind.items()},
        "p8_submission_to_first_run_seconds": round(first_start - submitted, 1),
        "p8_idle_seconds": round(wall - busy, 1),
        "p8_daemon_wait_seconds": round(tick_wait, 1),
        "p8_publish_seconds": round(publish, 1),
        "p8_failed_runs": failed_count,
    }


GOALS: dict[str, Callable[[argparse.Namespace, Path], dict]] = {"p7": p7, "p6": p6, "p4": p4, "p8": p8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests-small", type=int, default=1_000_000, help="P6's smaller bootstrap")
    parser.add_argument(
        "--requests-large", type=int, default=5_000_000, help="P7's and P6's larger bootstrap"
    )
    parser.add_argument(
        "--days", type=int, default=730, help="the days of history the synthetic export spans"
    )
    parser.add_argument(
        "--p8-requests", type=int, default=1_000_000, help="P8's requests, created over its 365 days"
    )
    parser.add_argument(
        "--p8-per-run",
        type=int,
        metavar="N",
        help="P8: days per raw backfill run (CIVIC311_RAW_PARTITIONS_PER_RUN; default the code's)",
    )
    parser.add_argument(
        "--p8-launch",
        default=",".join(LAUNCHES),
        help="P8: how the backfill is launched, comma-separated: job (refresh_nyc's partitions), "
        "assets (a selection of refresh_nyc's assets)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is kept")
    parser.add_argument("--goals", default=",".join(GOALS), help="which goals to run, comma-separated")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="work in DIR (which must not exist) and keep it: the warehouses and instances, to profile",
    )
    args = parser.parse_args()
    report: dict = {"data": "SYNTHETIC NYC", "cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True)
            work = args.keep
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="civic311-scale-")))
        for name in args.goals.split(","):
            report |= GOALS[name](args, work)
    report["load_average_after"] = os.getloadavg()
    print(
        "Machine load (1, 5, 15 min) before and after:",
        report["load_average_before"],
        report["load_average_after"],
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
