"""A city's credential never shows: not in logs, not in the run's config or tags
as the Dagster UI shows them, not in an error message."""

from __future__ import annotations

import json
import logging

import pytest
from dagster import DagsterInstance, materialize

from ingestion.registry import load_registry
from ingestion.replay import ReplayServer
from orchestration.assets.ingestion import build_raw_assets
from orchestration.resources import build_resources
from tests.conftest import NYC_SODA_SAMPLE, write_registry

pytestmark = pytest.mark.integration

TOKEN = "sekrit-" + "b41d" * 6
PARTITION = "2012-11-20"


def _run(tmp_path, warehouse, monkeypatch, token: str):
    monkeypatch.setenv("CIVIC311_CITIES", str(write_registry(tmp_path / "cities.yaml", page_size=100)))
    monkeypatch.setenv("CIVIC311_NYC_APP_TOKEN", token)
    city = load_registry().city("nyc")
    server = ReplayServer(app_token=TOKEN)
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    server.add_dataset("fhrw-4uyv", records, updated_at_fields=("created_date",), prefix="/nyc")
    server.add_dataset("erm2-nwe9", [], prefix="/nyc")
    instance = DagsterInstance.get()
    with server:
        monkeypatch.setenv("CIVIC311_REPLAY_URL", server.url)
        result = materialize(
            [build_raw_assets(city, warehouse)],
            partition_key=PARTITION,
            resources=build_resources(),
            instance=instance,
            raise_on_error=False,
        )
        requests = server.requests
    run = instance.get_run_by_id(result.run_id)
    shown = [
        json.dumps(run.run_config, default=str),
        json.dumps(run.tags, default=str),
        *(str(record) for record in instance.all_logs(result.run_id)),
    ]
    return result, requests, "\n".join(shown)


def test_token_is_sent_but_never_shown(tmp_path, warehouse, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    result, requests, shown = _run(tmp_path, warehouse, monkeypatch, TOKEN)
    assert result.success
    assert requests and all(r.had_app_token for r in requests)
    assert all(TOKEN not in r.path and TOKEN not in json.dumps(r.query) for r in requests)
    out, err = capfd.readouterr()
    assert "ASSET_MATERIALIZATION" in shown  # the event log was read
    for text in (shown, caplog.text, out, err):
        assert TOKEN not in text


def test_a_rejected_token_fails_with_advice_and_is_not_repeated(tmp_path, warehouse, monkeypatch, capfd):
    wrong = "wrong-" + "c0ffee" * 4
    result, requests, shown = _run(tmp_path, warehouse, monkeypatch, wrong)
    assert not result.success
    assert {r.status for r in requests} == {403}
    assert "HTTP 403" in shown and "app_token_env" in shown
    out, err = capfd.readouterr()
    for text in (shown, out, err):
        assert wrong not in text and TOKEN not in text
