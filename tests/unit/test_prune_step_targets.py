"""dbt steps' own folders are removed after a week; the project's files stay."""

from __future__ import annotations

import os
import time

from orchestration.assets.transformation import prune_step_targets


def test_step_folders_older_than_a_week_are_removed(tmp_path):
    now = time.time()
    old = tmp_path / "civic311_dbt_marts-1d62dcd-3851dfd"
    recent = tmp_path / "civic311_dbt_canonical-e7c47ad-2cb7211"
    for folder, age_days in ((old, 8), (recent, 6)):
        folder.mkdir()
        (folder / "run_results.json").write_text("{}")
        stamp = now - age_days * 86400
        os.utime(folder, (stamp, stamp))
    kept_files = [tmp_path / "manifest.json", tmp_path / "partial_parse.msgpack"]
    for path in kept_files:
        path.write_text("x")
        os.utime(path, (now - 30 * 86400, now - 30 * 86400))

    assert prune_step_targets(tmp_path, now=now) == [old]
    assert not old.exists()
    assert recent.exists()
    assert all(path.exists() for path in kept_files)
