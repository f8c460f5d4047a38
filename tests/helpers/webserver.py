"""The Dagster webserver a test starts (`civic311 dev`): a free loopback port, waiting
until it serves the civic311 code location, GraphQL requests to it, as the UI sends
them, and stopping it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

# The UI's own question: is the code location loaded, or what error did loading it raise?
LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { jobs { name } } } } } } } }"""


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
