"""The Dagster webserver a test or benchmark starts (`civic311 dev`): a free loopback
port, waiting until it serves the civic311 code location, GraphQL requests to it as
the UI sends them (a partition backfill, its status), and stopping it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from tests.helpers.data import REPO

# The UI's own question: is the code location loaded, or what error did loading it raise?
LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { jobs { name } } } } } } } }"""

# The UI's backfill launch, as its "Materialize" dialog sends it for a date range.
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions }
  ... on PythonError { message } } }"""
BACKFILL_ENDED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
CIVIC311 = Path(sys.executable).with_name("civic311")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """The `data` of a GraphQL request to the webserver at `port`; GraphQL errors raise."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer = json.load(response)
    if answer.get("errors"):
        raise AssertionError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def wait_for_code_location(port: int, process: subprocess.Popen, timeout: float = 240) -> dict:
    """The workspace's one location entry once it has loaded (or failed to), as the UI at
    `port` reports it; fails when the server never answers or `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):  # noqa: S310
                break
        except OSError:
            time.sleep(1)
    else:
        raise AssertionError(f"the UI did not come up (exit code {process.poll()})")
    while time.monotonic() < deadline:
        [entry] = graphql(port, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
        if entry["loadStatus"] != "LOADING":
            return entry
        time.sleep(1)
    raise AssertionError("the code location did not load in time")


def stop_dev(process: subprocess.Popen, timeout: float = 120) -> None:
    """Stop `civic311 dev` as a user does (SIGTERM, which it passes on to the UI and the
    daemon), and kill its process group if it has not exited within `timeout` seconds.
    `process` must have been started with start_new_session=True."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_dev(port: int, cluster: Path, env: Mapping[str, str], output: IO) -> subprocess.Popen:
    """`civic311 dev --postgres CLUSTER` (the webserver and the daemon) on `port`, from
    the repository, its output to `output`, in a session of its own (see stop_dev)."""
    return subprocess.Popen(  # noqa: S603 - this environment's civic311
        [str(CIVIC311), "dev", "--port", str(port), "--postgres", str(cluster)],
        cwd=REPO,
        env=dict(env),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


REPOSITORIES_QUERY = (
    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
)


def repository_selector(port: int) -> dict[str, str]:
    """The code location's one repository, as the UI's selectors name it."""
    [repository] = graphql(port, REPOSITORIES_QUERY)["repositoriesOrError"]["nodes"]
    return {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"]}


JOB_ASSETS_QUERY = """query($selector: PipelineSelector!) {
  assetNodes(pipeline: $selector) { assetKey { path } } }"""


def job_assets(port: int, job: str) -> list[list[str]]:
    """The asset keys of `job`, as the UI lists them on the job's page."""
    selector = {**repository_selector(port), "pipelineName": job}
    nodes = graphql(port, JOB_ASSETS_QUERY, {"selector": selector})["assetNodes"]
    return sorted(node["assetKey"]["path"] for node in nodes)


def launch_backfill(port: int, assets: list[list[str]], partitions: list[str], **params: object) -> str:
    """The id of a backfill of `assets` (key paths) over `partitions`, launched as the
    UI launches one; `params` adds other LaunchBackfillParams (a title, say)."""
    selection = {"assetSelection": [{"path": path} for path in assets], "partitionNames": partitions}
    launched = graphql(port, LAUNCH_BACKFILL, {"params": {**selection, **params}})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise AssertionError(f"launchPartitionBackfill failed: {launched}")
    return launched["backfillId"]


def launch_job_backfill(port: int, job: str, partitions: list[str], **params: object) -> str:
    """The id of a backfill of `job` over `partitions`, as the job's page launches one
    (Materialize all, then a range of days): every asset of the job, through the job's
    partition set, so the daemon splits the days by the job's backfill policy and each
    run is the job over its days."""
    selector = {"partitionSetName": f"{job}_partition_set", "repositorySelector": repository_selector(port)}
    return launch_backfill(port, job_assets(port, job), partitions, selector=selector, **params)


def wait_for_backfill(
    port: int, backfill_id: str, process: subprocess.Popen, timeout: float, poll: float = 1
) -> dict:
    """The backfill's status (BACKFILL_STATUS) once it has ended, or the last one seen
    when `timeout` seconds pass or `process` (the UI) exits first."""
    deadline = time.monotonic() + timeout
    while True:
        status = graphql(port, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        ended = status.get("status") in BACKFILL_ENDED
        if ended or time.monotonic() >= deadline or process.poll() is not None:
            return status
        time.sleep(poll)
