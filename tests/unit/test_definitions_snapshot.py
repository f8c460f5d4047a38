"""The code location, as `dagster dev` loads it from the real registry and the real dbt
manifest, matches the reviewed list in tests/unit/snapshots/definitions.txt: every asset
key (whether it is partitioned, from which day, its backfill and freshness policies),
check key (blocking or warning, and the step it runs in), job (how many assets and
steps it has, and its executor), schedule and sensor, one a line, sorted. A city,
model or check that appears, disappears or is renamed shows up here as a diff to
review. Loading reads that manifest and parses
nothing: without one, it fails naming the command that writes it.

When the change is on purpose, rewrite the list and review it with the change:

    CIVIC311_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/unit/test_definitions_snapshot.py
    git diff tests/unit/snapshots/definitions.txt
"""

from __future__ import annotations

import difflib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import Definitions
from dagster_dbt import DbtProject
from dagster_dbt.errors import DagsterDbtManifestNotFoundError

import orchestration.definitions
from orchestration import resources

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
UPDATE_ENV = "CIVIC311_UPDATE_SNAPSHOT"


def definition_lines(defs: Definitions) -> list[str]:
    """What the location defines, one sorted line each; none carries a path or a time."""
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    lines = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        partitioned = (
            f", daily partitions from {node.partitions_def.start:%Y-%m-%d}" if node.partitions_def else ""
        )
        policy = node.backfill_policy
        if policy is None:
            backfill = ""
        elif policy.max_partitions_per_run is None:
            backfill = ", backfill in a single run"
        else:
            backfill = f", backfill {policy.max_partitions_per_run} per run"
        freshness = node.freshness_policy
        hours = freshness.fail_window.to_timedelta() / timedelta(hours=1) if freshness else None
        fresh = f", fresh within {hours:g} h" if freshness else ""
        lines.append(f"asset {key.to_user_string()}{partitioned}{backfill}{fresh}")
    for key in graph.asset_check_keys:
        severity = "blocking" if graph.get(key).blocking else "warning"
        step = graph.assets_def_for_key(key).node_def.name
        lines.append(f"check {key.asset_key.to_user_string()}:{key.name} {severity}, step {step}")
    lines += [
        f"job {job.name}, assets: {len(job.asset_layer.executable_asset_keys)}, "
        f"steps: {len(job.graph.node_defs)}, executor: {job.executor_def.name}"
        for job in repository.get_all_jobs()
        if not job.name.startswith("__")  # Dagster's own implicit asset job
    ]
    lines += [
        f"schedule {schedule.name} runs {schedule.job_name} at '{schedule.cron_schedule}'"
        for schedule in repository.schedule_defs
    ]
    lines += [f"sensor {sensor.name}" for sensor in repository.sensor_defs]
    return sorted(lines)


def test_definitions_match_the_reviewed_snapshot(dbt_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("CIVIC311_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    # `defs` itself, as Dagster's loader calls it: the registry and manifest of this tree.
    lines = definition_lines(orchestration.definitions.defs())
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text("\n".join(lines) + "\n")
    reviewed = SNAPSHOT.read_text().splitlines()
    diff = list(difflib.unified_diff(reviewed, lines, "reviewed snapshot", "loaded now", lineterm="", n=0))
    assert not diff, (
        "the definitions differ from the reviewed snapshot:\n"
        + "\n".join(diff)
        + f"\nIf that is on purpose: {UPDATE_ENV}=1 .venv/bin/pytest tests/unit/{Path(__file__).name}, "
        + "then review the snapshot's diff and commit it with the change."
    )


def test_loading_without_a_manifest_names_the_command_that_writes_it(tmp_path, monkeypatch):
    """A clone where nothing ran `civic311 prepare` yet: loading fails in one sentence
    with the fix, and parses nothing (no manifest appears)."""
    (tmp_path / "dbt_project.yml").write_text("name: civic311\nversion: '1.0'\nprofile: civic311\n")
    monkeypatch.setattr(resources, "dbt_project", DbtProject(project_dir=tmp_path, profiles_dir=tmp_path))
    resources.prepared_dbt_manifest.cache_clear()
    try:
        names_the_fix = r"^no dbt manifest at .*: run `civic311 prepare` \(or `make env`\)"
        with pytest.raises(DagsterDbtManifestNotFoundError, match=names_the_fix):
            resources.prepared_dbt_manifest()
    finally:
        resources.prepared_dbt_manifest.cache_clear()
    assert not (tmp_path / "target").exists()
