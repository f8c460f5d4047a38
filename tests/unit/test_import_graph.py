"""The import graph keeps the runtime apart from the tooling: the contracts in
pyproject.toml (`[tool.importlinter]`), checked by import-linter, and the CLI's
tooling imports staying inside its commands. The tests share code through
tests/helpers only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_import_contracts_are_kept():
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The runtime (ingestion, orchestration) does not import the tooling KEPT" in result.stdout
    assert "ingestion does not import Dagster" in result.stdout
    assert "0 broken" in result.stdout


def test_importing_the_cli_loads_no_tooling():
    """The contract lets `orchestration.cli` import the tooling; it must do so only
    inside the commands that use it, so that loading the CLI does not."""
    probe = (
        "import sys, orchestration.cli; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'tooling'))"
    )
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_tests_share_helpers_not_conftest_or_test_modules():
    """Shared test code lives in tests/helpers: a conftest.py holds only fixtures and
    hooks, and a test module is imported by pytest alone."""
    offending = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                last = module.rsplit(".", 1)[-1]
                if module.startswith("tests.") and (last == "conftest" or last.startswith("test_")):
                    offending.append(f"{path.relative_to(REPO)}:{node.lineno} imports {module}")
    assert offending == []
