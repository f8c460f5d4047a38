"""A new user's path through the CLI, and its runs as the Dagster UI shows them.

On the real NYC sample: `civic311 load` loads it as an export and prints the next
command; that command (`civic311 rebuild`) builds, checks and publishes, and prints
the next (`civic311 status`). Then `civic311 refresh` loads two days from the replay
in one ranged run, and `civic311 publish` publishes again. Each command names its log
file, which holds dbt's output.

Then `civic311 dev` opens the UI over the same instance. Its GraphQL, as the UI's job
pages ask it, lists each run under its job; no check has a SKIPPED result; and the UI
re-executes the publish run, through the daemon, to a new publish.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from orchestration.definitions import build_definitions
from tests.helpers.data import NYC_SODA_SAMPLE, REPO, nyc_soda_sample
from tests.helpers.nyc_sample import serve_nyc_sample
from tests.helpers.registry import EVERY_CITY, write_registry
from tests.helpers.webserver import (
    CIVIC311,
    free_port,
    graphql,
    repository_selector,
    stop_dev,
    wait_for_code_location,
)
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

NEXT = re.compile(r"Next: `(civic311 [^`]+)`")
RUN = re.compile(r"run ([0-9a-f-]{36}) of (\w+) succeeded")

JOB_RUNS = """query($selector: PipelineSelector!) { pipelineOrError(params: $selector) { __typename
  ... on Pipeline { runs { runId status } } ... on PythonError { message } } }"""
REEXECUTE = """mutation($params: ReexecutionParams!) {
  launchPipelineReexecution(reexecutionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status jobName } } }"""
RUN_ENDED = {"SUCCESS", "FAILURE", "CANCELED"}


def civic311(command: str, env: dict[str, str]) -> str:
    """A civic311 command as a user types it; its output, after asserting it succeeded."""
    done = subprocess.run(  # noqa: S603 - this environment's civic311
        [str(CIVIC311), *command.split()[1:]], env=env, capture_output=True, text=True, timeout=900, cwd=REPO
    )
    assert done.returncode == 0, (
        f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout


def the_log(output: str) -> Path:
    """The log file a command names when it ends."""
    (named,) = re.findall(r"output is in (\S+\.log)", output)
    return Path(named)


def check_statuses(port: int, keys) -> list[tuple[str, str]]:
    """(status, run id) of every execution of every check in `keys`, as the UI resolves
    them (a check planned in a run that ended without evaluating it is SKIPPED)."""
    fields = [
        f"c{n}: assetCheckExecutions(assetKey: {{path: {json.dumps(key.asset_key.path)}}}, "
        f"checkName: {json.dumps(key.name)}, limit: 100) {{ status runId }}"
        for n, key in enumerate(keys)
    ]
    answer = graphql(port, "{ " + "\n".join(fields) + " }")
    return [
        (execution["status"], execution["runId"])
        for executions in answer.values()
        for execution in executions
    ]


def test_from_load_to_published_marts_with_the_commands_the_cli_prints(tmp_path, warehouse, monkeypatch):
    # Every city: the commands prepare the dbt manifest every test shares.
    registry = write_registry(tmp_path / "cities.yaml", cities=EVERY_CITY, page_size=400)
    env = {**os.environ, "CIVIC311_CITIES": str(registry)}
    monkeypatch.setenv("CIVIC311_CITIES", str(registry))
    export = tmp_path / "nyc_export.json"
    export.write_text(NYC_SODA_SAMPLE.read_text())

    loaded = civic311(f"civic311 load --city nyc --from-file {export}", env)
    (rebuild,) = NEXT.findall(loaded)
    assert rebuild == "civic311 rebuild"
    built = civic311(rebuild, env)
    assert "Published " in built
    (status,) = NEXT.findall(built)
    assert status == "civic311 status"
    log = the_log(built)
    assert log.parent == warehouse.parent / "logs" and "Running with dbt=" in log.read_text()
    shown = civic311(status, env)
    with duckdb.connect(str(warehouse.parent / "serving.duckdb"), read_only=True) as con:
        (publish_id,) = con.execute("select publish_id from civic311.publishes").fetchone()
    assert f"Last publish: {publish_id}" in shown
    (nyc_row,) = [line for line in shown.splitlines() if line.startswith("nyc ")]
    assert f"{len(nyc_soda_sample()):,}" in nyc_row.split()

    with ReplayServer() as server:
        serve_nyc_sample(server, nyc_soda_sample())
        refreshed = civic311(
            "civic311 refresh --city nyc --from 2012-11-20 --to 2012-11-21",
            {**env, "CIVIC311_REPLAY_URL": server.url},
        )
    published = civic311("civic311 publish", env)
    runs = {job: run_id for output in (built, refreshed, published) for run_id, job in RUN.findall(output)}
    assert set(runs) == {"rebuild", "refresh_nyc", "publish"}

    # The ranged run evaluated every check it planned.
    instance = DagsterInstance.get()
    # Every dbt model that holds rows says how many; a view, whose query runs when read, does not.
    facts = instance.get_latest_materialization_event(AssetKey(["marts", "fct_service_requests"]))
    assert facts.asset_materialization.metadata["dagster/row_count"].value == len(nyc_soda_sample())
    view = instance.get_latest_materialization_event(AssetKey(["quarantine", "service_requests"]))
    assert "dagster/row_count" not in view.asset_materialization.metadata
    planned, evaluated = (
        len(instance.get_records_for_run(runs["refresh_nyc"], of_type=kind, limit=10_000).records)
        for kind in (DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION)
    )
    assert planned == evaluated > 200

    port = free_port()
    dev = subprocess.Popen(  # noqa: S603 - this environment's civic311
        [str(CIVIC311), "dev", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=(tmp_path / "dev.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_code_location(port, dev)
        repository = repository_selector(port)
        # Each run is listed on its job's page (the UI filters by the code location).
        for job, run_id in runs.items():
            listed = graphql(port, JOB_RUNS, {"selector": {**repository, "pipelineName": job}})[
                "pipelineOrError"
            ]
            assert {"runId": run_id, "status": "SUCCESS"} in listed["runs"], (job, listed)
        # Every check's results, as its page in the UI lists them: none SKIPPED.
        statuses = check_statuses(port, build_definitions().resolve_asset_graph().asset_check_keys)
        in_refresh = [status for status, run_id in statuses if run_id == runs["refresh_nyc"]]
        assert len(in_refresh) == evaluated
        assert {status for status, _ in statuses} <= {"SUCCEEDED", "FAILED"}, statuses
        # The UI's "Re-execute all" on the publish run: queued, then launched by the daemon.
        params = {"parentRunId": runs["publish"], "strategy": "ALL_STEPS"}
        launched = graphql(port, REEXECUTE, {"params": params})["launchPipelineReexecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        again = launched["run"]["runId"]
        deadline = time.monotonic() + 240
        while (run := graphql(port, RUN_STATUS, {"id": again})["runOrError"])["status"] not in RUN_ENDED:
            assert time.monotonic() < deadline and dev.poll() is None, run
            time.sleep(1)
        assert run == {"__typename": "Run", "status": "SUCCESS", "jobName": "publish"}
    finally:
        stop_dev(dev)
    with duckdb.connect(str(warehouse.parent / "serving.duckdb"), read_only=True) as con:
        (republished,) = con.execute("select publish_id from civic311.publishes").fetchone()
    assert republished != publish_id
