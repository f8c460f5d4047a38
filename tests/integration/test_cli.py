"""The `civic311` command: `load --from-file` and `replay --serve`."""

from __future__ import annotations

import socket
import subprocess
import sys

import duckdb
import pytest
import requests

from orchestration.cli import main
from tests.helpers.data import REPO, SHARED_DATA

pytestmark = pytest.mark.integration

BOSTON_CSV = SHARED_DATA / "boston" / "boston311_2022_jan_100.csv"
TORONTO_XML = SHARED_DATA / "open311" / "toronto_2018_requests.xml"


def test_load_an_export_file_then_reload_it(warehouse, capsys):
    assert main(["load", "--city", "boston", "--from-file", str(BOSTON_CSV)]) == 0
    assert main(["load", "--city", "boston", "--from-file", str(BOSTON_CSV)]) == 0
    out = capsys.readouterr().out
    assert out.count("boston: ") == 2 and "100 rows read, 100 loaded" in out
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*), count(distinct source_id) from raw_boston.service_requests_export"
        ).fetchone() == (100, 100)


def test_a_bad_export_file_is_named_without_a_traceback(warehouse, tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert main(["load", "--city", "boston", "--from-file", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("civic311 load: ") and "boston" in err and "nowhere.csv" in err
    assert "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replay_serves_a_registry_city_in_its_protocol():
    port = _free_port()
    argv = [sys.executable, "-m", "orchestration.cli", "replay", "--serve", f"toronto={TORONTO_XML}"]
    server = subprocess.Popen(  # noqa: S603 - fixed argv
        [*argv, "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        banner = [server.stdout.readline(), server.stdout.readline()]
        assert "at /toronto" in banner[0] and f"127.0.0.1:{port}" in banner[1]
        answer = requests.get(
            f"http://127.0.0.1:{port}/toronto/requests.xml",
            params={
                "jurisdiction_id": "toronto.ca",
                "start_date": "2018-07-01T00:00:00Z",
                "end_date": "2018-08-01T00:00:00Z",
            },
            timeout=10,
        )
    finally:
        # SIGKILL: a child started while another thread of the xdist worker has SIGTERM
        # ignored inherits the ignore, and terminate() then leaves it serving.
        server.kill()
        server.wait(timeout=10)
    assert answer.status_code == 200 and "xml" in answer.headers["Content-Type"]
    assert answer.text.count("<request>") == 2 and "101005420892" in answer.text
