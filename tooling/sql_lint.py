"""sqlfluff over the dbt project, as `make lint` runs it: `python -m tooling.sql_lint [fix] [PATH ...]`.

The configuration is `.sqlfluff` (the dbt templater, DuckDB dialect). dbt needs the city
registry as its `cities` var to compile any model, and sqlfluff's config files hold only
fixed values, so this passes the active registry's vars (orchestration.resources.dbt_vars)
to the templater, and points dbt at a throwaway warehouse and target folder: compiling
reads no table, and the manifest Dagster reads stays as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ("dbt_project",)


def lint(paths: tuple[str, ...], fix: bool) -> int:
    """Lint (or fix) `paths`; print one line per violation; 1 when any is left."""
    import tomlkit
    from sqlfluff.core import FluffConfig, Linter

    from orchestration.resources import dbt_vars

    with tempfile.TemporaryDirectory(prefix="civic311-sqlfluff-") as scratch:
        os.environ["CIVIC311_WAREHOUSE"] = str(Path(scratch) / "warehouse.duckdb")
        # dbt's own target and logs too, so the manifest Dagster reads stays as it is.
        os.environ["DBT_TARGET_PATH"] = str(Path(scratch) / "target")
        os.environ["DBT_LOG_PATH"] = str(Path(scratch) / "logs")
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        # sqlfluff takes structured templater context only from TOML (a pyproject.toml).
        extra = Path(scratch) / "pyproject.toml"
        context = {"templater": {"dbt": {"context": json.loads(dbt_vars())}}}
        extra.write_text(tomlkit.dumps({"tool": {"sqlfluff": context}}))
        config = FluffConfig.from_root(extra_config_path=str(extra))
        result = Linter(config=config).lint_paths(paths, fix=fix, apply_fixes=fix)
        if fix:
            result.persist_changes(formatter=None, fixed_file_suffix="")
    left = 0
    for record in result.as_records():
        path = Path(record["filepath"]).resolve().relative_to(REPO)
        for violation in record["violations"]:
            left += 1
            where = f"{path}:{violation['start_line_no']}:{violation['start_line_pos']}"
            print(f"{where}: {violation['code']} {violation['description']}")
    files = len(result.as_records())
    print(f"sqlfluff: {left} violation(s) in {files} file(s)" + (" after fixing" if fix else ""))
    return 1 if left else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.sql_lint", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="`fix` first to fix; then files or folders")
    args = parser.parse_args(argv)
    # argparse cannot tell an optional `fix` from a first path, so it is read here.
    fix = args.paths[:1] == ["fix"]
    paths = args.paths[1:] if args.paths[:1] in (["fix"], ["lint"]) else args.paths
    os.chdir(REPO)
    return lint(tuple(paths or DEFAULT_PATHS), fix=fix)


if __name__ == "__main__":
    sys.exit(main())
