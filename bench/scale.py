"""Scale benchmark (issue 18): the history bootstrap at two sizes and a day's refresh
after it, on SYNTHETIC NYC data.

    .venv/bin/python -m bench.scale [--requests-small 1000000] [--requests-large 5000000]
                                    [--days 730] [--repeat 1] [--goals p7,p6,p4] [--keep DIR]

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
    UI launches for one partition; the schedule's daily_refresh is that run for every
    city): raw load through the replay (in its own process), both dbt steps, every
    check, the publish. The day's feed is a day's share of the history, all new
    requests. Prints both walls and the ratio (goals: at most 60 s, at most 0.2x).

The export's requests are created over the --days before 1 November 2026.

Times are the best of --repeat runs; the peak RSS the highest. Run from the repository
root. Ends with one JSON line holding every figure (`p7_ratio`, `p6_rss_ratio`, ...).
A goal is one function `(args, work) -> dict` of JSON keys listed in GOALS; the
bootstrapped warehouses stay in `work` until the end, for goals that start from one;
with --keep DIR they stay in DIR afterwards, to profile (the dbt steps' run_results.json
are under dbt_project/target/).
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
from datetime import date, timedelta
from pathlib import Path

import psutil

from bench.ingest import BENCH_DATA, duckdb_csv, synthetic_export
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


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and every descendant, now."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


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
    peak = 0
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
        peak = max(peak, tree_rss(process))
        time.sleep(RSS_SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    reader.join()
    output = "".join(lines)
    if process.returncode != 0:
        raise SystemExit(f"civic311 bootstrap of {export} failed ({process.returncode}):\n{output[-3000:]}")
    phases = {m["phase"]: float(m["seconds"]) for m in map(PHASE_LINE.match, output.splitlines()) if m}
    return BootstrapRun(requests, seconds, phases, peak, warehouse, home, output)


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
    return {
        "p6_rss_ratio": round(ratio, 2),
        "p6_rss_small_mib": round(small.peak_rss_bytes / 2**20),
        "p6_rss_large_mib": round(large.peak_rss_bytes / 2**20),
        "p6_requests_small": small.requests,
        "p6_requests_large": large.requests,
        "p6_seconds_small": round(small.seconds, 1),
    }


# The day after the export's last: the generator's history ends on 1 November 2026.
REFRESH_DAY = date(2026, 11, 1)


def day_feed(requests: int, days: int) -> Path:
    """SYNTHETIC NYC requests created on REFRESH_DAY, as the portal's API serves them
    the day after the export: a day's share of `requests` over `days`, keyed after
    every key of the export (so each is a new request). Generated once per size and
    kept in data/bench/."""
    path = BENCH_DATA / f"synthetic_nyc_day_{requests}_{days}d.json"
    if path.exists():
        return path
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / "day.json"
        end = REFRESH_DAY + timedelta(days=1)
        generate_nyc(generated, requests=max(1, requests // days), days=1, end=end, seed=312)
        records = json.loads(generated.read_text())
        for record in records:
            record["unique_key"] = str(int(record["unique_key"]) + requests)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(records))
        partial.replace(path)
    meta = {"synthetic": True, "generator": "civic311 synthetic nyc", "seed": 312}
    meta["day"] = REFRESH_DAY.isoformat()
    path.with_name(path.name + ".meta.json").write_text(json.dumps(meta) + "\n")
    return path


def dagster_job(run: BootstrapRun, job: str, args: list[str], replay_url: str | None = None) -> float:
    """`dagster job execute` of `job` on the bootstrapped warehouse and instance, the
    way a run is launched outside the UI: a process that loads the code location
    (orchestration.definitions, what workspace.yaml names) and runs the job on the
    instance. Its wall time, in seconds."""
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
        env=environment(run.warehouse, run.dagster_home, replay_url),
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


def p4(args: argparse.Namespace, work: Path) -> dict:
    """A city-day refresh on the --requests-large warehouse against its full rebuild."""
    from ingestion.registry import load_registry
    from tooling.replay.process import ReplayProcess

    run = bootstrapped(args.requests_large, args.days, work, args.repeat)
    offline = [layer.name for layer in load_registry().city("nyc").boundaries if layer.loads_offline]
    config = work / "boundaries.yaml"
    config.write_text(
        json.dumps({"ops": {"geography__boundaries": {"config": {"cities": ["nyc"], "layers": offline}}}})
    )
    dagster_job(run, "refresh_boundaries", ["-c", str(config)])
    rebuild = min(dagster_job(run, "rebuild", []) for _ in range(args.repeat))
    feed = day_feed(args.requests_large, args.days)
    tags = json.dumps({"dagster/partition": REFRESH_DAY.isoformat()})
    with ReplayProcess({"nyc": [feed]}) as replay:
        day = min(dagster_job(run, "refresh_nyc", ["--tags", tags], replay.url) for _ in range(args.repeat))
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


GOALS: dict[str, Callable[[argparse.Namespace, Path], dict]] = {"p7": p7, "p6": p6, "p4": p4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests-small", type=int, default=1_000_000, help="P6's smaller bootstrap")
    parser.add_argument(
        "--requests-large", type=int, default=5_000_000, help="P7's and P6's larger bootstrap"
    )
    parser.add_argument(
        "--days", type=int, default=730, help="the days of history the synthetic export spans"
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
