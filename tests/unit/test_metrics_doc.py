"""Each metric is defined once, in its model's YAML description, and docs/metrics.md
repeats that definition word for word (house style 6). A definition changed in one
place and not the other fails here, naming the column."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.helpers.data import REPO

MARTS = REPO / "dbt_project" / "models" / "marts"
METRICS_DOC = REPO / "docs" / "metrics.md"
# The fact's and dimensions' columns that carry a metric rule; every mart column is a
# metric or a key of one.
FACT_METRICS = {
    "fct_service_requests": [
        "hours_to_close",
        "hours_to_close_null_reason",
        "sla_due_at",
        "closed_within_sla",
        "exclusion_reason",
        "is_staff_initiated",
    ],
    "dim_city": ["as_of", "as_of_source"],
}


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def documented_columns() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(MARTS.glob("*.yml")):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            name = model["name"]
            wanted = FACT_METRICS.get(name)
            if wanted is None and not name.startswith("mart_"):
                continue
            for column in model.get("columns", []):
                if wanted is None or column["name"] in wanted:
                    found.append((name, column["name"], column.get("description", "")))
    return found


def test_every_mart_column_has_a_definition():
    undefined = [f"{model}.{column}" for model, column, text in documented_columns() if not words(text)]
    assert not undefined, f"describe these columns in their model YAML: {undefined}"
    assert {model for model, _, _ in documented_columns()} >= {
        "mart_response_times",
        "mart_response_times_by_type",
        "mart_service_gaps",
        "mart_hotspots",
        "mart_demand_timing",
        "mart_cross_department",
    }


@pytest.mark.parametrize(("model", "column", "definition"), documented_columns())
def test_metrics_doc_repeats_the_yaml_definition(model, column, definition):
    doc = words(METRICS_DOC.read_text())
    assert words(definition) in doc, (
        f"docs/metrics.md must give {model}.{column} exactly as its YAML description does: "
        f"{words(definition)!r}"
    )
