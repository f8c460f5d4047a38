"""`civic311 dev` starts the Dagster UI on 127.0.0.1 with the civic311 code location
loaded, and stops cleanly on SIGTERM, even when started from a shell that ignores
SIGINT (as background jobs do)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.data import REPO
from tests.helpers.webserver import free_port, wait_for_code_location

pytestmark = pytest.mark.integration


def live_in_session(sid: int) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid=,sid=,stat="], capture_output=True, text=True)  # noqa: S603, S607
    return [
        pid
        for pid, session, stat in (line.split() for line in ps.stdout.splitlines())
        if int(session) == sid and not stat.startswith("Z")
    ]


def ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_dev_serves_on_loopback_and_stops_on_sigterm(tmp_path, warehouse, dbt_manifest):
    port = free_port()
    civic311 = Path(sys.executable).with_name("civic311")
    proc = subprocess.Popen(  # noqa: S603
        [str(civic311), "dev", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PATH": f"{civic311.parent}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=ignore_sigint,  # noqa: PLW1509 - simulate a background shell job
        start_new_session=True,
    )
    try:
        entry = wait_for_code_location(port, proc, timeout=180)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:  # noqa: S310
            info = r.read()
        assert info and b"dagster_webserver_version" in info, "the UI did not come up"
        loaded = entry["locationOrLoadError"]
        assert entry["name"] == "civic311" and loaded["__typename"] == "RepositoryLocation", loaded
        jobs = {job["name"] for repository in loaded["repositories"] for job in repository["jobs"]}
        assert {"refresh_models", "refresh_nyc", "publish"} <= jobs

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) is not None
        assert proc.returncode == 0
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)  # noqa: S310
        # The webserver, daemon and code server exit after `dagster dev` does.
        deadline = time.monotonic() + 30
        while (leftovers := live_in_session(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not leftovers, f"processes left behind: {leftovers}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
