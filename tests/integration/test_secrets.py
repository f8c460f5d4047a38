"""No credential is ever written down: a secret planted in each place one can come
from (a city's token variable, a URL's user name and password, a token in a URL's
query string) is found in no file under the Dagster home or the warehouse folder
(a failed run's dlt working folder too), and in nothing printed, after a succeeding
and two failing Dagster runs and two CLI loads."""

from __future__ import annotations

import gzip
import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    asset,
    materialize,
)

from ingestion.redact import remember_credential_variable
from ingestion.registry import load_registry
from orchestration.assets.ingestion import build_raw_assets
from orchestration.redaction import redacted
from orchestration.resources import build_resources
from tests.helpers.data import NYC_SODA_SAMPLE, REPO, SHARED_DATA
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import query
from tooling.replay import ReplayServer

pytestmark = pytest.mark.integration

PARTITION = "2012-11-20"
LA_EXPORT = SHARED_DATA / "la" / "myla311_2017_subset.csv"


def _planted(name: str) -> str:
    return f"{name}-{secrets.token_hex(10)}"


def _texts(path: Path) -> list[bytes]:
    """The bytes of a file, and what it holds where its bytes would hide a text:
    gzip (dlt's load files), Parquet (compressed columns), DuckDB (compressed strings)."""
    data = path.read_bytes()
    texts = [data]
    if data[:2] == b"\x1f\x8b":
        texts.append(gzip.decompress(data))
    elif path.suffix == ".parquet":
        texts.append(str(pq.read_table(path).to_pylist()).encode())
    elif data[8:12] == b"DUCK":
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() where not internal"
            ).fetchall()
            for schema, table in tables:
                rows = con.execute(f'select t::varchar from "{schema}"."{table}" as t').fetchall()  # noqa: S608
                texts.append("\n".join(row[0] for row in rows).encode())
    return texts


def _grep(roots: list[Path], planted: dict[str, str]) -> tuple[list[Path], dict[str, list[Path]]]:
    """Every file under `roots` read, and where each planted secret was found."""
    read: list[Path] = []
    found: dict[str, list[Path]] = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            read.append(path)
            texts = _texts(path)
            for name, value in planted.items():
                if any(value.encode() in text for text in texts):
                    found.setdefault(name, []).append(path)
    return read, found


def _materialize(city, warehouse: Path):
    return materialize(
        [build_raw_assets(city, warehouse)],
        partition_key=PARTITION,
        resources=build_resources(),
        instance=DagsterInstance.get(),
        raise_on_error=False,
    )


def _event_text(run_id: str) -> str:
    instance = DagsterInstance.get()
    run = instance.get_run_by_id(run_id)
    return "\n".join(
        [
            json.dumps(run.run_config, default=str),
            json.dumps(run.tags, default=str),
            *(str(record) for record in instance.all_logs(run_id)),
        ]
    )


def _cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "orchestration.cli", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_planted_secret_is_found_in_no_file_and_no_output(
    tmp_path, warehouse, dagster_home, monkeypatch, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    planted = {
        name: _planted(name)
        for name in (
            "served-token",  # CIVIC311_NYC_APP_TOKEN of the succeeding run
            "rejected-token",  # CIVIC311_NYC_APP_TOKEN the portal refuses, and quotes back
            "la-token",  # CIVIC311_LA_APP_TOKEN during the CLI load
            "registry-password",  # user:password@ in a registry base_url
            "registry-query",  # ?$$app_token= in a registry base_url
            "replay-password",  # user:password@ in CIVIC311_REPLAY_URL
            "replay-query",  # ?$$app_token= in CIVIC311_REPLAY_URL
        )
    }
    # Only the warehouse folder and the Dagster home are searched: the registries that
    # hold planted secrets on purpose live beside them.
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    monkeypatch.setenv("CIVIC311_WAREHOUSE", str(warehouse))
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(config / "cities.yaml", page_size=100)))
    city = load_registry().city("nyc")

    server = ReplayServer(app_token=planted["served-token"], echo_rejected_token=True)
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    server.add_dataset("fhrw-4uyv", records, updated_at_fields=("created_date",), prefix="/nyc")
    server.add_dataset("erm2-nwe9", [], prefix="/nyc")
    with server:
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        monkeypatch.setenv("CIVIC311_NYC_APP_TOKEN", planted["served-token"])
        succeeded = _materialize(city, warehouse)
        monkeypatch.setenv("CIVIC311_NYC_APP_TOKEN", planted["rejected-token"])
        rejected = _materialize(city, warehouse)
        port = server.url.rsplit(":", 1)[1]
        monkeypatch.setenv(
            "CIVIC311_REPLAY_URL",
            f"http://civic311:{planted['replay-password']}@127.0.0.1:{port}/"
            f"?$$app_token={planted['replay-query']}",
        )
        refused = _materialize(city, warehouse)
        requests = server.requests

    # The token went out, in its header only, and the portal refused the wrong one.
    assert succeeded.success and not rejected.success and not refused.success
    assert query(warehouse, "select count(*) from raw_nyc.service_requests")[0][0] > 0
    assert {r.status for r in requests} == {200, 403} and all(r.had_app_token for r in requests)
    assert all(planted["served-token"] not in r.path + json.dumps(r.query) for r in requests)
    rejected_events = _event_text(rejected.run_id)
    assert "HTTP 403" in rejected_events and "app_token_env" in rejected_events
    assert "invalid or missing X-App-Token '***'" in rejected_events  # quoted back, then redacted
    refused_events = _event_text(refused.run_id)
    assert "CIVIC311_REPLAY_URL carries a user name or password ('http://***@127.0.0.1" in refused_events

    # A registry whose base URLs carry a password and a token is refused by name.
    raw = yaml.safe_load((REPO / "ingestion" / "cities.yaml").read_text())
    sources = {c["id"]: c["source"] for c in raw["cities"]}
    sources["nyc"]["base_url"] = f"https://civic311:{planted['registry-password']}@data.cityofnewyork.us"
    sources["chicago"]["base_url"] = (
        f"https://data.cityofchicago.org/?$$app_token={planted['registry-query']}"
    )
    (config / "leaky.yaml").write_text(yaml.safe_dump(raw))
    env = {
        **os.environ,
        "CIVIC311_CITIES": str(config / "leaky.yaml"),
        "CIVIC311_LA_APP_TOKEN": planted["la-token"],
    }
    leaky = _cli("load", "--city", "la", "--from-file", str(LA_EXPORT), env=env)
    assert leaky.returncode == 2, leaky.stderr
    assert "city 'nyc': field 'source.base_url' carries a user name or password" in leaky.stderr
    assert "'https://***@data.cityofnewyork.us'" in leaky.stderr
    assert "city 'chicago': field 'source.base_url' carries a query string" in leaky.stderr
    assert "source.app_token_env" in leaky.stderr and "Traceback" not in leaky.stderr

    # A real export loads with the city's token in the environment.
    del env["CIVIC311_CITIES"]
    loaded = _cli("load", "--city", "la", "--from-file", str(LA_EXPORT), env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded into raw_la.service_requests_export" in loaded.stdout

    out, err = capfd.readouterr()
    printed = "\n".join([out, err, caplog.text, leaky.stdout, leaky.stderr, loaded.stdout, loaded.stderr])
    assert "RUN_FAILURE" in printed  # the in-process runs' output was captured
    assert [name for name, value in planted.items() if value in printed] == []

    read, found = _grep([warehouse.parent, dagster_home], planted)
    assert found == {}
    # The search read what each kind of writer leaves: Dagster's run and event storage
    # and compute logs, the warehouse and its lock file (who held it), and dlt's working
    # folder of the run that failed (a run that succeeds removes its own).
    names = {path.name for path in read}
    expected = {"runs.db", "index.db", "state.json", warehouse.name, f"{warehouse.name}.lock"}
    assert expected <= names, sorted(names)
    compute_logs = [path for path in read if path.suffix == ".err"]
    assert len(compute_logs) == 3 and all(path.stat().st_size > 0 for path in compute_logs)
    # And it finds a secret where there is one: the registry written above.
    assert set(_grep([config], planted)[1]) == {"registry-password", "registry-query"}


def test_what_an_asset_hands_dagster_is_redacted(warehouse, dagster_home, monkeypatch, capfd):
    """Log lines, metadata (plain, JSON, Markdown, of a check too) and the text of a foreign
    exception: each shows a token and a URL password as an asset might, and none is stored."""
    token, password = _planted("token"), _planted("password")
    remember_credential_variable("CIVIC311_TEST_ASSET_TOKEN")
    monkeypatch.setenv("CIVIC311_TEST_ASSET_TOKEN", token)
    leaky_url = f"https://civic311:{password}@portal.example.org/resource"

    @asset(check_specs=[AssetCheckSpec("sample_is_shown", asset="shows")])
    @redacted
    def shows(context) -> MaterializeResult:
        context.log.warning(f"token {token} for {leaky_url}")
        return MaterializeResult(
            metadata={
                "plain": f"token {token}",
                "json": MetadataValue.json({"nested": [leaky_url, {"token": token}]}),
                "markdown": MetadataValue.md(f"| url |\n|---|\n| {leaky_url} |"),
                "count": 3,
            },
            check_results=[AssetCheckResult(passed=False, metadata={"sample": [f"row with {token}"]})],
        )

    @asset
    @redacted
    def fails() -> None:
        raise ValueError(f"the portal said: token {token} refused at {leaky_url}")

    instance = DagsterInstance.get()
    shown = materialize([shows], instance=instance)
    failed = materialize([fails], instance=instance, raise_on_error=False)
    assert shown.success and not failed.success
    metadata = shown.asset_materializations_for_node("shows")[0].metadata
    assert metadata["plain"].value == "token ***" and metadata["count"].value == 3
    assert metadata["json"].value == {"nested": ["https://***@portal.example.org/resource", {"token": "***"}]}
    (check,) = shown.get_asset_check_evaluations()
    assert check.metadata["sample"].value == ["row with ***"]
    events = _event_text(shown.run_id) + _event_text(failed.run_id)
    assert "token *** for https://***@portal.example.org/resource" in events
    assert "ValueError: the portal said: token *** refused at https://***@portal.example.org" in events
    out, err = capfd.readouterr()
    read, found = _grep([dagster_home], {"token": token, "password": password})
    assert found == {} and any(path.name == "index.db" for path in read)
    assert token not in out + err + events and password not in out + err + events
