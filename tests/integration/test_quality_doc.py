"""docs/quality.md's table of checks against the checks the code location defines:
every check on every asset, where it is defined and whether it blocks. A check
added, moved or made a warning without the table changing fails here."""

import json
import re
from pathlib import Path

import pytest

from ingestion.registry import load_registry
from orchestration.checks.expectations import audits

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("dbt_manifest")]

REPO = Path(__file__).resolve().parents[2]
QUALITY_DOC = REPO / "docs" / "quality.md"
REGISTRY = load_registry()
# One row of the table, a check's name spread out: asset, check, where it is defined
# (its kind and files), and whether it blocks.
Row = tuple[str, str, str, tuple[str, ...], str]


def by_city(text: str, city_id: str) -> str:
    """A city's name in an asset key or path written as <city>."""
    return re.sub(rf"(?<![a-z0-9]){re.escape(city_id)}(?![a-z0-9])", "<city>", text)


def generalize(text: str) -> str:
    for city in sorted(REGISTRY.cities, key=lambda city: -len(city.id)):
        text = by_city(text, city.id)
    return text


def dbt_test_row(asset: str, test: dict, blocks: str) -> Row:
    path = f"dbt_project/{test['original_file_path']}"
    if test.get("test_metadata"):
        return (asset, test["test_metadata"]["name"], "dbt YAML test", (generalize(path),), blocks)
    return (asset, test["name"], "dbt singular test", (path,), blocks)


def defined_checks(tmp_path: Path) -> set[Row]:
    """Every check of the definitions, as table rows with cities written as <city>."""
    from orchestration.definitions import build_definitions
    from orchestration.resources import dbt_project

    definitions = build_definitions(REGISTRY, tmp_path / "warehouse.duckdb")
    graph = definitions.resolve_asset_graph()
    nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    tests = {node["name"]: node for node in nodes.values() if node["resource_type"] == "test"}
    suites = {f"{audit.suite}_suite": audit for audit in audits().values()}
    rows = set()
    for key in graph.asset_check_keys:
        asset = generalize(key.asset_key.to_user_string())
        blocks = "yes" if graph.get(key).blocking else "no"
        if key.name in tests:
            rows.add(dbt_test_row(asset, tests[key.name], blocks))
        elif key.name in suites:
            audit = suites[key.name]
            files = (f"expectations/{audit.suite}.json", f"dbt_project/models/audit/{audit.model}.sql")
            rows.add((asset, key.name, "GX suite", files, blocks))
        elif re.fullmatch(r"raw_[a-z0-9]+_suite", key.name):
            files = ("expectations/raw_<protocol>.json", "orchestration/checks/expectations.py")
            rows.add((asset, "raw_<protocol>_suite", "GX suite", files, blocks))
        else:
            path = graph.get_check_spec(key).metadata["defined_in"]
            rows.add((asset, key.name, "Dagster check module", (path,), blocks))
    return rows


def documented_checks() -> set[Row]:
    """The rows of docs/quality.md's check table (a cell may list several checks)."""
    text = QUALITY_DOC.read_text()
    table = text[text.index("| asset | checks | defined in | blocks |") :].split("\n\n")[0]
    rows = set()
    for line in table.splitlines()[2:]:
        asset, checks, where, blocks = (cell.strip() for cell in line.strip("|").split("|"))
        kind = where.split("`")[0].strip()
        files = tuple(re.findall(r"`([^`]+)`", where))
        for check in re.findall(r"`([^`]+)`", checks):
            rows.add((asset.strip("`"), check, kind, files, blocks.split()[0].strip(",")))
    return rows


def table(rows: set[Row]) -> str:
    """Rows as the doc writes them, for a failure's message."""
    return "\n".join(
        f"| `{a}` | `{c}` | {k} {', '.join(f'`{f}`' for f in files)} | {b} |"
        for a, c, k, files, b in sorted(rows)
    )


def test_the_quality_doc_lists_every_check(tmp_path):
    defined, documented = defined_checks(tmp_path), documented_checks()
    # every kind of check was found: the comparison below is over all of them
    assert {row[2] for row in defined} == {
        "dbt YAML test",
        "dbt singular test",
        "GX suite",
        "Dagster check module",
    }
    missing, stale = defined - documented, documented - defined
    assert not missing and not stale, (
        f"docs/quality.md misses these checks:\n{table(missing)}\n"
        f"and lists these that do not exist:\n{table(stale)}"
    )
