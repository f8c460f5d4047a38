"""`civic311 dev` replays the demo feed for runs started from the UI, unless the
caller names a replay of their own in CIVIC311_REPLAY_URL (docs/adding-a-city.md)."""

from __future__ import annotations

import pytest

from orchestration import cli


class Child:
    def __init__(self, command, env):
        self.env = env

    def wait(self):
        return 0


class DemoReplay:
    url = "http://127.0.0.1:40000"
    stopped = False

    def start(self):
        return self

    def stop(self):
        self.stopped = True


@pytest.fixture
def dagster_dev(tmp_path, monkeypatch):
    """`civic311 dev` with a demo feed on disk; the Dagster child it starts, not run."""
    (tmp_path / "synthetic_nyc_10_1d_2026-11-01_seed1.json").write_text("[]")
    children: list[Child] = []

    def start(command, env):
        children.append(Child(command, env))
        return children[-1]

    monkeypatch.setattr(cli, "DEMO_DIR", tmp_path)
    monkeypatch.setattr(cli.subprocess, "Popen", start)
    monkeypatch.setattr(cli.signal, "signal", lambda signum, handler: None)
    return children


def test_dev_replays_the_demo_feed(dagster_dev, monkeypatch):
    monkeypatch.delenv("CIVIC311_REPLAY_URL", raising=False)
    replay = DemoReplay()
    monkeypatch.setattr(cli, "_demo_server", lambda feed: replay)
    assert cli.main(["dev"]) == 0
    assert dagster_dev[0].env["CIVIC311_REPLAY_URL"] == replay.url and replay.stopped


def test_dev_reads_the_replay_the_caller_names(dagster_dev, monkeypatch):
    monkeypatch.setenv("CIVIC311_REPLAY_URL", "http://127.0.0.1:8311")
    monkeypatch.setattr(cli, "_demo_server", lambda feed: pytest.fail("started the demo's replay over it"))
    assert cli.main(["dev"]) == 0
    assert dagster_dev[0].env["CIVIC311_REPLAY_URL"] == "http://127.0.0.1:8311"


def test_dev_refuses_a_replay_url_with_a_password_in_one_line(dagster_dev, monkeypatch, capsys):
    password = "pw-" + "77e1" * 5
    monkeypatch.setenv("CIVIC311_REPLAY_URL", f"http://civic311:{password}@127.0.0.1:8311")
    assert cli.main(["dev"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "civic311 dev: CIVIC311_REPLAY_URL carries a user name or password ('http://***@127.0.0.1:8311')"
    )
    assert err.count("\n") == 1 and password not in err and dagster_dev == []
