"""The example queries of docs/metrics.md, run against the marts built from the real
samples: each must run and answer something."""

from __future__ import annotations

import re

import duckdb
import pytest

from tests.helpers.data import REPO

pytestmark = pytest.mark.integration

EXAMPLES = re.findall(r"```sql\n(.*?)```", (REPO / "docs" / "metrics.md").read_text(), flags=re.S)


def test_the_doc_has_examples_for_every_mart():
    text = "\n".join(EXAMPLES)
    for mart in (
        "mart_response_times",
        "mart_response_times_by_type",
        "mart_service_gaps",
        "mart_hotspots",
        "mart_demand_timing",
        "mart_cross_department",
        "mart_department_handoffs",
        "mart_department_joint_spikes",
    ):
        assert f"marts.{mart}" in text, mart


@pytest.mark.parametrize("query", EXAMPLES, ids=[q.splitlines()[0][:60] for q in EXAMPLES])
def test_example_query_answers(query, samples_built):
    with duckdb.connect(str(samples_built), read_only=True) as con:
        rows = con.execute(query).fetchall()
    assert rows, f"the example returned nothing:\n{query}"
