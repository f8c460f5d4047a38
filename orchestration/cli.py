"""The `civic311` command.

civic311 demo       generate the synthetic NYC feed, replay it, run the pipeline, summarise
civic311 dev        the Dagster UI on 127.0.0.1 over the same warehouse (and the replay)
civic311 postgres   start or stop a local PostgreSQL cluster for Dagster's instance storage
civic311 prepare    parse the dbt project when its manifest is missing or stale (the code location needs it)
civic311 generate   write the synthetic NYC feed
civic311 replay     serve recorded records as cities' APIs (any protocol), on 127.0.0.1
civic311 load       load a portal export file (CSV or JSON) of a city into the warehouse
civic311 bootstrap  a city's history: load its export files, then one full dbt build, every check, the publish
civic311 refresh    a city's days through Dagster: load, checks, the dbt models, publish
civic311 rebuild    every dbt model from all of raw (after `load`), every check, the publish
civic311 publish    publish the marts again, if every blocking check's latest result passed
civic311 status     per city: the last load, quarantine counts and failing checks; the last publish
civic311 quarantine count what was received and not modelled, by city and rule
civic311 taxonomy   list the service types and departments no seed row maps (or print them as seed rows)
civic311 alerts     evaluate the alert subscriptions now, list the alerts sent, or send a test alert

The replay, the synthetic feed and the demo are tooling (the `tooling` package):
only the commands that use them import it, inside the command, so the runtime
never loads it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from ingestion.redact import install_filter, redact
from ingestion.registry import REPLAY_URL_ENV, checked_replay_url, load_registry
from orchestration.failures import failure_line

T = TypeVar("T")
DEMO_DIR = Path("data/demo")
DEMO_CITY = "nyc"
POSTGRES_DIR = Path("data/postgres")


def _demo_feed(requests: int, days: int, end: date, seed: int) -> Path:
    from tooling.synthetic import generate_nyc

    path = DEMO_DIR / f"synthetic_nyc_{requests}_{days}d_{end.isoformat()}_seed{seed}.json"
    if not path.exists():
        print(f"Generating {requests:,} synthetic NYC requests over {days} days ...", flush=True)
        generate_nyc(path, requests=requests, days=days, end=end, seed=seed)
    return path


def _feed_end(args: argparse.Namespace) -> date:
    """The synthetic feed's exclusive end: --end, else today (UTC)."""
    return args.end or datetime.now(UTC).date()


def _is_record_file(path: Path) -> bool:
    """A file the replay can serve; the generator's `.meta.json` sidecars are not."""
    return path.suffix in (".json", ".csv") and not path.name.endswith(".meta.json")


def _demo_server(feed: Path):
    """The synthetic feed as NYC's current dataset (a ReplayServer); its other datasets answer empty."""
    from tooling.replay import ReplayServer
    from tooling.replay.catalog import mount_city

    server = ReplayServer()
    mount_city(server, load_registry().city(DEMO_CITY), [feed])
    return server


def cmd_generate(args: argparse.Namespace) -> int:
    from tooling.synthetic import generate_nyc

    summary = generate_nyc(
        Path(args.out), requests=args.requests, days=args.days, end=_feed_end(args), seed=args.seed
    )
    print(
        f"Wrote {summary.requests:,} SYNTHETIC NYC requests "
        f"({summary.start} to {summary.end}) to {summary.path}"
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from tooling.replay import Fault, FaultPlan, ReplayServer
    from tooling.replay.catalog import mount_city

    registry = load_registry()
    served: dict[str, list[Path]] = {}
    for spec in args.serve:
        city_id, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--serve takes CITY=PATH, got {spec!r}")
        served.setdefault(city_id, []).append(Path(path))
    if not served:
        raise SystemExit("nothing to serve: give --serve CITY=PATH (repeatable)")
    queue = [Fault(status=429, retry_after=args.retry_after)] * args.fail_429
    queue += [Fault(status=500)] * args.fail_500
    queue += [Fault(delay=args.slow)] * (1 if args.slow else 0)
    server = ReplayServer(host=args.host, port=args.port, faults=FaultPlan(queue=queue))
    for city_id, paths in served.items():
        city = registry.city(city_id)
        mount_city(server, city, paths)
        print(f"serving {', '.join(map(str, paths))} as {city.name} ({city.source.protocol}) at /{city.id}")
    # Announced only once the socket listens: a script that reads this line may connect at once.
    banner = f"replay on http://{args.host}:{args.port}; set CIVIC311_REPLAY_URL to it (Ctrl-C stops)"
    server.serve_forever(ready=lambda: print(banner, flush=True))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from ingestion.sources.exports import ExportError, load_export

    city = load_registry().city(args.city)
    for path in args.from_file:
        try:
            summary = load_export(city, Path(path), wait=args.wait)
        except ExportError as exc:
            print(f"civic311 load: {exc}", file=sys.stderr)
            return 2
        print(
            f"{city.id}: {summary.path}: {summary.rows_read:,} rows read, {summary.rows_loaded:,} loaded "
            f"into raw_{city.id}.service_requests_export, {summary.rows_quarantined:,} quarantined "
            f"({len(summary.columns)} columns, layout {summary.schema}, {summary.seconds:.1f} s)"
        )
        for field, layout in summary.timestamps.items():
            print(f"  {field}: {layout}")
    print(
        "Next: `civic311 rebuild` builds every model from raw (this export included), runs every "
        "check and publishes what passed."
    )
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from dagster._core.errors import DagsterHomeNotSetError

    from ingestion.registry import RegistryError
    from ingestion.sources.exports import ExportError
    from orchestration.bootstrap import bootstrap, report_lines

    try:
        city = load_registry().city(args.city)
    except RegistryError as exc:
        print(
            f"civic311 bootstrap: {exc}. Fix: give --city one of those ids (ingestion/cities.yaml).",
            file=sys.stderr,
        )
        return 2
    try:
        done = bootstrap(city, [Path(path) for path in args.from_file], verbose=args.verbose)
    except ExportError as exc:
        print(f"civic311 bootstrap: {exc}", file=sys.stderr)
        return 2
    except DagsterHomeNotSetError:
        print(
            "civic311 bootstrap: DAGSTER_HOME is not set, so the run has no instance to be recorded in. "
            "Fix: export DAGSTER_HOME=$PWD/.dagster (what the Makefile sets) and copy "
            "orchestration/dagster.yaml into it.",
            file=sys.stderr,
        )
        return 2
    print("\n".join(report_lines(done, city)))
    return 0 if done.success else 1


def _yesterday() -> date:
    """The partition the daily refresh loads: the UTC day before today."""
    return datetime.now(UTC).date() - timedelta(days=1)


def _run_command(command: str, job: str, verbose: bool, **options) -> int:
    """Launch `job` from the workspace's code location (as the UI does) with a progress
    display, then say what it did: the run, what failed, what was published."""
    from orchestration.launch import failures, launch
    from orchestration.progress import Display
    from orchestration.resources import prepare_dbt_manifest

    display = Display(command, verbose=verbose)
    with display.shown():
        display.phase("preparing the dbt manifest")
        prepare_dbt_manifest()
        result = launch(job, display=display, **options)
    if display.log:
        print(display.ended())
    run = f"run {result.run_id} of {job}"
    if not result.success:
        print(f"civic311 {command}: {run} FAILED: nothing new was published.")
        print("\n".join(f"  {line}" for line in failures(result)))
        print(
            "Fix: docs/quality.md says what each check guards and how to correct it. "
            "`civic311 status` lists what fails now; `make dev` shows the run."
        )
        return 1
    did = [
        f"{display.rows_loaded:,} rows received" if display.rows_loaded else "",
        f"{display.models_built} models built" if display.models_built else "",
        f"{display.checks_run} checks run" if display.checks_run else "",
    ]
    said = ", ".join(part for part in did if part)
    print(f"civic311 {command}: {run} succeeded" + (f": {said}." if said else "."))
    published = [
        event.materialization.metadata.get("publish_id")
        for event in result.get_asset_materialization_events()
        if event.asset_key.path == ["serving", "marts"]
    ]
    if published:
        said = published[0].value if published[0] is not None else "a new publish"
        print(f"Published {said}: the serving file and Parquet hold the marts (docs/bi.md).")
    else:
        print("Nothing was published by this run.")
    print("Next: `civic311 status` shows every city's loads and checks; `make dev` opens the UI.")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    from orchestration.partitions import range_tags

    city = load_registry().city(args.city)
    # One day when only one end is given; yesterday (the daily refresh's day) when neither is.
    first = args.from_day or args.to_day or _yesterday()
    last = args.to_day or first
    problem = None
    if first > last:
        problem = f"--from {first} is after --to {last}: give the first day, then the last"
    elif first < city.first_day:
        problem = (
            f"{first} is before {city.id}'s first partition, {city.first_day} (its first_day in the "
            "registry): load older history from the city's export files with `civic311 bootstrap`"
        )
    elif last > _yesterday():
        problem = f"{last} has not ended yet (UTC): the last day to refresh is {_yesterday()}"
    if problem:
        print(f"civic311 refresh: {problem}.", file=sys.stderr)
        return 2
    # One day is one partition, as the daily refresh loads it; more days are one run
    # over their range, as a backfill from the job's page runs them.
    tags = {PARTITION_NAME_TAG: first.isoformat()} if first == last else range_tags(first, last)
    return _run_command("refresh", f"refresh_{city.id}", args.verbose, tags=tags)


def cmd_rebuild(args: argparse.Namespace) -> int:
    return _run_command("rebuild", "rebuild", args.verbose)


def cmd_publish(args: argparse.Namespace) -> int:
    return _run_command("publish", "publish", args.verbose)


def cmd_status(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from ingestion.pipeline import warehouse_path
    from orchestration.definitions import build_definitions
    from orchestration.resources import prepare_dbt_manifest
    from orchestration.status import read_status, status_lines

    registry = load_registry()
    warehouse = warehouse_path()
    if not warehouse.exists():
        print(
            f"civic311 status: {warehouse}: there is no warehouse here yet. Fix: `civic311 refresh --city C` "
            "or `civic311 load --city C --from-file PATH`, or point CIVIC311_WAREHOUSE at yours.",
            file=sys.stderr,
        )
        return 2
    prepare_dbt_manifest()
    keys = sorted(build_definitions(registry, warehouse).resolve_asset_graph().asset_check_keys)
    with DagsterInstance.get() as instance:
        status = _read_warehouse("status", lambda path: read_status(registry, path, instance, keys))
    if status is None:
        return 2
    print(f"civic311 status of {warehouse}")
    print("\n".join(status_lines(status)))
    return 0


def cmd_alerts_run(args: argparse.Namespace) -> int:
    from ingestion.pipeline import warehouse_path
    from orchestration.alerts.run import run_alerts
    from orchestration.alerts.subscriptions import KINDS

    now = args.now
    if now is not None and now.tzinfo is None:
        print("civic311 alerts: --now needs a UTC offset, e.g. 2026-12-06T08:00+00:00.", file=sys.stderr)
        return 2
    report = run_alerts(args.kind or KINDS, warehouse_path(), now=now)
    print(f"civic311 alerts: {len(report.messages)} new alert(s); {len(report.failed)} delivery(ies) failed.")
    for message, outcome in report.failed:
        print(f"  not delivered: {message.title} -> {outcome.channel}: {outcome.error}")
    print("Next: `civic311 alerts list` shows the alerts sent and how each channel took them.")
    return 1 if report.failed else 0


def cmd_alerts_list(args: argparse.Namespace) -> int:
    from ingestion.pipeline import warehouse_path
    from orchestration.alerts.store import alerts_db, alerts_db_path, recent

    path = alerts_db_path(warehouse_path())
    with alerts_db(path, write=False) as con:
        messages = recent(con, args.limit)
    if not messages:
        print(f"civic311 alerts: no alert sent yet ({path}).")
        return 0
    for message in messages:
        outcomes = (
            "; ".join(
                f"{d['channel']} {d['outcome']}"
                + (f" after {d['attempts']} attempts: {d['error']}" if d["outcome"] != "delivered" else "")
                for d in message["deliveries"]
            )
            or "not delivered yet"
        )
        print(
            f"{message['created_at']:%Y-%m-%d %H:%M} UTC  {message['subscription']} ({message['kind']}, "
            f"{message['items']} item{'s' if message['items'] != 1 else ''})  {message['title']}"
        )
        print(f"    {outcomes}")
    return 0


def cmd_alerts_test(args: argparse.Namespace) -> int:
    from orchestration.alerts.delivery import Message, deliver
    from orchestration.alerts.subscriptions import load_subscriptions

    sub = load_subscriptions().named(args.name)
    message = Message(
        message_id=f"test-{datetime.now(UTC):%Y%m%dT%H%M%S}",
        subscription=sub.name,
        kind=sub.kind,
        title=f"civic311 {sub.name}: a test alert (no data)",
        body={
            "lines": [
                f"A test of the channels of the {sub.kind} subscription {sub.name} ({', '.join(sub.cities)})."
            ],
            "items": [],
        },
    )
    failed = 0
    for channel in sub.deliver:
        outcome = deliver(message, channel)
        failed += not outcome.delivered
        said = (
            "delivered" if outcome.delivered else f"FAILED after {outcome.attempts} attempts: {outcome.error}"
        )
        print(f"civic311 alerts test: {outcome.channel}: {said}")
    return 1 if failed else 0


def _read_warehouse(command: str, read: Callable[[Path], T]) -> T | None:
    """What `read` finds in the working warehouse; None, said on stderr, when there is none yet.
    A writer keeps DuckDB from opening the file even to read, so this waits for the writer lock."""
    from ingestion.pipeline import warehouse_path
    from ingestion.warehouse_lock import warehouse_lock

    warehouse = warehouse_path()
    try:
        if not warehouse.exists():
            return read(warehouse)
        with warehouse_lock(warehouse):
            return read(warehouse)
    except FileNotFoundError as exc:
        print(f"civic311 {command}: {warehouse}: {exc}", file=sys.stderr)
        return None


def cmd_quarantine(args: argparse.Namespace) -> int:
    from orchestration.quarantine import format_counts, quarantine_counts

    counts = _read_warehouse("quarantine", lambda warehouse: quarantine_counts(warehouse, args.city))
    if counts is None:
        return 2
    print(format_counts(counts))
    return 0


def cmd_taxonomy(args: argparse.Namespace) -> int:
    from orchestration.taxonomy import (
        department_seed_rows,
        format_unmapped,
        read_unmapped,
        to_csv,
        type_seed_rows,
    )

    unmapped = _read_warehouse("taxonomy", lambda warehouse: read_unmapped(warehouse, args.city))
    if unmapped is None:
        return 2
    if not args.csv:
        print(format_unmapped(unmapped))
        return 0
    if args.departments:
        rows, seed, empty = department_seed_rows(unmapped.departments), "departments.csv", "department_id"
    else:
        rows, seed, empty = type_seed_rows(unmapped.types), "service_type_categories.csv", "category_id"
    sys.stdout.write(to_csv(rows))
    # The rows alone go to stdout, so that `>> dbt_project/seeds/<seed>` appends them as they stand.
    blank = sum(1 for row in rows if not row[2 if args.departments else 3])
    print(
        f"{len(rows)} rows for dbt_project/seeds/{seed}; {blank} have no rule and an empty {empty}: "
        "fill it in (dbt build names them until then).",
        file=sys.stderr,
    )
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from orchestration.resources import prepare_dbt_manifest

    print(f"dbt manifest: {prepare_dbt_manifest()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tooling.demo import run_demo

    end = _feed_end(args)
    feed = _demo_feed(args.requests, args.days, end, args.seed)
    with _demo_server(feed) as server:

        def portal_changes() -> int:
            from tooling.synthetic.changes import next_day_changes

            current = load_registry().city(DEMO_CITY).source.all_datasets[0].id
            dataset = server.dataset(current, f"/{DEMO_CITY}")
            updates = next_day_changes(dataset.snapshot(), end - timedelta(days=1), seed=args.seed)
            dataset.apply_changes(inserts=[], updates=updates)
            return len(updates)

        return run_demo(
            city_id=DEMO_CITY,
            replay_url=server.url,
            start=end - timedelta(days=args.days),
            end=end,
            before_last_day=portal_changes,
            verbose=args.verbose,
        )


def _local_postgres(folder: Path, password_required: bool = True):
    """The local PostgreSQL cluster in `folder` (tooling/postgres.py), its settings
    from the environment."""
    from tooling.postgres import LocalCluster, Settings

    return LocalCluster(folder, Settings.from_env(password_required=password_required))


def cmd_postgres(args: argparse.Namespace) -> int:
    from tooling.postgres import PostgresError

    try:
        cluster = _local_postgres(Path(args.folder), password_required=args.postgres_command == "start")
        if args.postgres_command == "start":
            said = "started" if cluster.start() else "already running"
            print(f"{said}: {cluster.describe()}")
        else:
            said = "stopped" if cluster.stop() else "was not running"
            print(f"{said}: {cluster.data}")
    except PostgresError as exc:
        print(f"civic311 postgres: {exc}", file=sys.stderr)
        return 2
    return 0


def _dev_instance(folder: Path, env: dict[str, str]):
    """Start the local PostgreSQL cluster in `folder` and point `env` at an instance that
    stores in it (`folder`/dagster_home, not DAGSTER_HOME: `make dev` keeps its SQLite
    one). Returns the cluster when this call started it, for the caller to stop."""
    from tooling.postgres import write_instance_settings

    cluster = _local_postgres(folder)
    started = cluster.start()
    home = write_instance_settings(cluster.folder / "dagster_home").parent
    env.update(cluster.settings.environment(), DAGSTER_HOME=str(home))
    print(f"Dagster instance in {home}; storage: {cluster.describe()}", flush=True)
    return cluster if started else None  # one `civic311 postgres start` started is left running


def cmd_dev(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    cluster = None
    if args.postgres:
        from tooling.postgres import PostgresError

        try:
            cluster = _dev_instance(Path(args.postgres), env)
        except PostgresError as exc:
            print(f"civic311 dev: {exc}", file=sys.stderr)
            return 2
    try:
        return _serve_dev(args.port, env)
    finally:
        if cluster:
            cluster.stop()


def _serve_dev(port: int, env: dict[str, str]) -> int:
    from ingestion.geography.city_maps import SYNTHETIC_ENV
    from orchestration.resources import prepare_dbt_manifest

    feeds = [p for p in DEMO_DIR.glob("synthetic_nyc_*.json") if _is_record_file(p)]
    feed = max(feeds, key=lambda p: p.stat().st_mtime, default=None)
    # A replay the caller points at (a city being added: docs/adding-a-city.md) wins over the demo's.
    if checked_replay_url(os.environ.get(REPLAY_URL_ENV)):  # refused in one line if it carries a credential
        feed = None
    prepare_dbt_manifest()  # here, not when the code location loads: loading parses nothing
    server = _demo_server(feed).start() if feed else None
    if server:
        env["CIVIC311_REPLAY_URL"] = server.url
        env[SYNTHETIC_ENV] = "1"  # the maps drawn over the demo's data say it is synthetic
        print(f"Replaying {feed} at {server.url} for runs started from the UI.")
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "workspace.yaml",
    ]
    # A shell that starts us in the background ignores SIGINT, and `dagster dev`
    # copies SIGINT's handling onto SIGTERM, so a child that inherits "ignore"
    # never stops. Handlers installed before the child starts are reset to the
    # default by exec, so the child starts with SIGINT and SIGTERM live; ours
    # forward either signal to it as SIGTERM, then we wait for it to finish.
    children: list[subprocess.Popen] = []

    def forward(signum, _frame):
        for child in children:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        child = subprocess.Popen(command, env=env)  # noqa: S603 - fixed argv, no shell
        children.append(child)
        code = child.wait()
    finally:
        if server:
            server.stop()
    return 0 if code in (0, -signal.SIGTERM, 128 + signal.SIGTERM) else code


class _HelpFormatter(argparse.HelpFormatter):
    """Help that gives each option's default; an option without one (None, a flag that is
    off, a required option) says in its own words what happens without it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required or not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civic311",
        description=__doc__.split("\n\n")[0],
        epilog="`civic311 COMMAND --help` describes a command and its options.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of a failure, not just its one line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    def command(name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=summary, description=description or summary, formatter_class=_HelpFormatter
        )

    def verbose_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--verbose",
            action="store_true",
            help="show dbt's and Dagster's output live instead of the progress display "
            "(without it, the output goes to a log file under data/logs/, named at the end)",
        )

    def feed_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--requests", type=int, default=200_000, help="synthetic requests to generate")
        # Ten weeks: the hotspot test needs 8 weeks of baseline before a week it tests.
        p.add_argument(
            "--days",
            type=int,
            default=70,
            help="days the feed covers, the last one the day before --end",
        )
        p.add_argument(
            "--end",
            type=date.fromisoformat,
            default=None,
            metavar="YYYY-MM-DD",
            help="the day after the feed's last day; without it, today (UTC), so the newest requests are "
            "yesterday's and their ages and the feed's freshness are real (give a date to repeat a run)",
        )
        p.add_argument("--seed", type=int, default=311, help="random seed: the same seed gives the same feed")

    demo = command(
        "demo",
        "run the whole pipeline offline on synthetic NYC data",
        "Generate a SYNTHETIC NYC feed, replay it on 127.0.0.1, load its boundary layers, run the "
        "refresh over its days through Dagster (load, checks, dbt, publish), draw the maps and "
        "print a summary.",
    )
    feed_options(demo)
    verbose_option(demo)
    demo.set_defaults(func=cmd_demo)

    dev = command("dev", "open the Dagster UI on 127.0.0.1")
    dev.add_argument("--port", type=int, default=3000, help="the UI's port on 127.0.0.1")
    dev.add_argument(
        "--postgres",
        nargs="?",
        const=str(POSTGRES_DIR),
        default=None,
        metavar="FOLDER",
        help=f"store runs and events in a local PostgreSQL cluster in FOLDER (default {POSTGRES_DIR}), "
        "started for the session and stopped after; the password comes from CIVIC311_PG_PASSWORD",
    )
    dev.set_defaults(func=cmd_dev)

    postgres = command("postgres", "start or stop a local PostgreSQL cluster for Dagster's instance storage")
    postgres.add_argument("postgres_command", choices=["start", "stop"], help="start or stop the cluster")
    postgres.add_argument("--folder", default=str(POSTGRES_DIR), help="the cluster's folder")
    postgres.set_defaults(func=cmd_postgres)

    prepare = command("prepare", "parse the dbt project when its manifest is missing or stale")
    prepare.set_defaults(func=cmd_prepare)

    generate = command("generate", "write the synthetic NYC feed (SODA JSON)")
    generate.add_argument("--out", default=str(DEMO_DIR / "synthetic_nyc.json"), help="the file to write")
    feed_options(generate)
    generate.set_defaults(func=cmd_generate)

    replay = command("replay", "serve recorded records as the cities' APIs")
    replay.add_argument(
        "--serve", action="append", default=[], metavar="CITY=PATH", help="a recorded file of a registry city"
    )
    replay.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    replay.add_argument("--port", type=int, default=8311, help="the port to listen on")
    replay.add_argument("--fail-429", type=int, default=0, help="answer the first N requests 429")
    replay.add_argument("--retry-after", type=float, default=None, help="Retry-After for the 429s")
    replay.add_argument("--fail-500", type=int, default=0, help="then answer N requests 500")
    replay.add_argument("--slow", type=float, default=0.0, help="delay one response by SECONDS")
    replay.set_defaults(func=cmd_replay)

    load = command(
        "load",
        "load a portal export file of a city into the warehouse",
        "Load portal export files (CSV or JSON) into raw_<city>.service_requests_export; "
        "then `civic311 rebuild` builds, checks and publishes.",
    )
    load.add_argument("--city", required=True, help="a registry city id, e.g. nyc")
    load.add_argument(
        "--from-file", action="append", required=True, metavar="PATH", help="CSV or JSON export (repeatable)"
    )
    load.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="while another process writes the warehouse, wait at most this long, then exit 2 "
        "(without it: wait until the other has finished)",
    )
    load.set_defaults(func=cmd_load)

    bootstrap = command(
        "bootstrap", "load a city's export files, then one full dbt build, every check and the publish"
    )
    bootstrap.add_argument("--city", required=True, help="a registry city id, e.g. nyc")
    bootstrap.add_argument(
        "--from-file", action="append", required=True, metavar="PATH", help="CSV or JSON export (repeatable)"
    )
    verbose_option(bootstrap)
    bootstrap.set_defaults(func=cmd_bootstrap)

    refresh = command(
        "refresh",
        "a city's days through Dagster: load, checks, the dbt models, publish",
        "Run the job refresh_<city> over the UTC days --from to --to, launched as the UI launches "
        "it: load the city's raw partitions from its API, check them, rebuild the dbt models on "
        "them (incrementally), check those and publish what passed. Without dates, the day the "
        "daily refresh loads: yesterday (UTC). CIVIC311_REPLAY_URL points the city at a replay.",
    )
    refresh.add_argument("--city", required=True, help="a registry city id, e.g. nyc")
    refresh.add_argument(
        "--from",
        dest="from_day",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="the first UTC day; without it, --to's day (or yesterday)",
    )
    refresh.add_argument(
        "--to",
        dest="to_day",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="the last UTC day, included; without it, --from's day (or yesterday)",
    )
    verbose_option(refresh)
    refresh.set_defaults(func=cmd_refresh)

    rebuild = command(
        "rebuild",
        "every dbt model from all of raw, every check, the publish",
        "Run the rebuild job, launched as the UI launches it: every dbt model from all of raw "
        "(a full refresh; snapshots keep their history), every check, and the publish if they "
        "pass. What comes after `civic311 load`, or after a change to the models.",
    )
    verbose_option(rebuild)
    rebuild.set_defaults(func=cmd_rebuild)

    publish = command(
        "publish",
        "publish the marts again, if every blocking check's latest result passed",
        "Run the publish job: copy the marts to the serving file and Parquet for BI tools, if "
        "the latest result of every blocking check passed.",
    )
    verbose_option(publish)
    publish.set_defaults(func=cmd_publish)

    status = command(
        "status",
        "per city: the last load, quarantine counts and failing checks; the last publish",
    )
    status.set_defaults(func=cmd_status)

    quarantine = command("quarantine", "count quarantined records by city, stage and rule")
    quarantine.add_argument("--city", default=None, help="one registry city id; without it, every city")
    quarantine.set_defaults(func=cmd_quarantine)

    taxonomy = command("taxonomy", "the service types and departments no seed row maps")
    taxonomy_sub = taxonomy.add_subparsers(
        dest="taxonomy_command", required=True, metavar="COMMAND", help="what to show (one command: unmapped)"
    )
    unmapped = taxonomy_sub.add_parser(
        "unmapped",
        help="list them, with their requests and what the rules give them instead",
        description="List the service types and departments no seed row maps, with their requests "
        "and what the rules give them instead.",
        formatter_class=_HelpFormatter,
    )
    unmapped.add_argument("--city", default=None, help="one registry city id; without it, every city")
    unmapped.add_argument(
        "--csv",
        action="store_true",
        help="print service_type_categories.csv rows (city_id,service_name,service_subtype,category_id), "
        "ready to append to the seed",
    )
    unmapped.add_argument(
        "--departments",
        action="store_true",
        help="with --csv: print departments.csv rows "
        "(city_id,source_department,department_id,department_name)",
    )
    unmapped.set_defaults(func=cmd_taxonomy)

    alerts = command(
        "alerts", "the alert subscriptions (CIVIC311_ALERTS, default alerts.yaml): run, list, test"
    )
    alerts_sub = alerts.add_subparsers(
        dest="alerts_command", required=True, metavar="COMMAND", help="one of: run, list, test"
    )
    run = alerts_sub.add_parser(
        "run",
        help="evaluate the subscriptions now and deliver what is new (the sensors do it after each refresh)",
        description="Evaluate the subscriptions now, record the new alerts in alerts.sent and deliver them, "
        "with any earlier alert a channel has not delivered yet.",
        formatter_class=_HelpFormatter,
    )
    run.add_argument(
        "--kind",
        action="append",
        choices=["fresh_requests", "emerging_hotspot", "gap_change", "sla_breach", "dataset_rollover"],
        help="evaluate only this kind (repeatable); without it, every kind",
    )
    run.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        metavar="ISO8601",
        help="evaluate as at this instant, with its UTC offset; without it, the clock",
    )
    run.set_defaults(func=cmd_alerts_run)
    listing = alerts_sub.add_parser(
        "list",
        help="the latest alerts and each channel's outcome",
        description="The latest alerts, newest first, with each channel's latest delivery outcome.",
        formatter_class=_HelpFormatter,
    )
    listing.add_argument("--limit", type=int, default=20, help="how many alerts to show")
    listing.set_defaults(func=cmd_alerts_list)
    test = alerts_sub.add_parser(
        "test",
        help="send a sample alert through a subscription's channels",
        description="Send a sample alert, marked as a test, through the subscription's channels, and "
        "say how each went (exit 1 when one failed). Nothing is recorded in alerts.sent.",
        formatter_class=_HelpFormatter,
    )
    test.add_argument("name", help="the subscription's name")
    test.set_defaults(func=cmd_alerts_test)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "replay":
        # Dagster logs runs itself; only the standalone server needs a handler.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        # civic311's own warnings (a load waiting for the lock, finishing a killed run's
        # packages) are one line each; dlt's tracebacks only with --debug.
        logging.basicConfig(level=logging.WARNING, format=f"civic311 {args.command}: %(message)s")
        if not args.debug:
            os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
    for handler in logging.getLogger().handlers:
        install_filter(handler)  # other libraries' lines are redacted too
    try:
        return args.func(args)
    except Exception as exc:
        said = failure_line(exc)
        if said is None or args.debug:
            raise
        print(f"civic311 {args.command}: {redact(said)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
