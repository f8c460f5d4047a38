"""The PostgreSQL instance settings: the dagster.yaml that `civic311 dev --postgres`
writes is valid instance configuration whose connection fields all come from the
environment, and the local cluster's settings need a password from the environment
(tests/integration/test_postgres_instance.py runs a cluster)."""

from __future__ import annotations

import pytest
from dagster._core.instance.config import dagster_instance_config

from tests.helpers.data import REPO
from tooling.postgres import PostgresError, Settings, write_instance_settings


def test_the_written_instance_stores_in_postgres_with_every_field_from_the_environment(tmp_path):
    settings = write_instance_settings(tmp_path / "home")
    config, _ = dagster_instance_config(str(settings.parent))
    assert config["storage"]["postgres"]["postgres_db"] == {
        "hostname": {"env": "CIVIC311_PG_HOST"},
        "port": {"env": "CIVIC311_PG_PORT"},
        "username": {"env": "CIVIC311_PG_USER"},
        "password": {"env": "CIVIC311_PG_PASSWORD"},
        "db_name": {"env": "CIVIC311_PG_DB"},
        "scheme": "postgresql+psycopg2",
    }
    # The project's own settings are kept: telemetry off, one warehouse writer at a time.
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert (REPO / "orchestration" / "dagster.yaml").read_text().strip() in settings.read_text()


def test_the_local_cluster_needs_a_password_from_the_environment():
    with pytest.raises(PostgresError, match="set CIVIC311_PG_PASSWORD"):
        Settings.from_env({})
    assert Settings.from_env({"CIVIC311_PG_PASSWORD": "a-long-password"}) == Settings(
        port=54311, user="civic311", password="a-long-password", database="dagster", host="127.0.0.1"
    )
    with pytest.raises(PostgresError, match="CIVIC311_PG_PORT='5432x' is not a TCP port"):
        Settings.from_env({"CIVIC311_PG_PASSWORD": "a-long-password", "CIVIC311_PG_PORT": "5432x"})


def test_the_password_is_redacted_like_a_registry_credential(monkeypatch):
    from ingestion.redact import redact

    monkeypatch.setenv("CIVIC311_PG_PASSWORD", "s3cret-instance-password")
    assert redact("could not connect with s3cret-instance-password") == "could not connect with ***"
