"""The queries of docs/bi.md, run the way a BI tool runs them: against the serving
file opened read-only, and against the Parquet copies in an in-memory DuckDB, after
a publish of the marts built from the real samples. Each must answer, and answer
exactly what the working warehouse it was published from answers: the doc shows
that what BI tools read is what passed."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from orchestration.serving import Publish, publish
from tests.helpers.data import REPO
from tests.helpers.warehouse import file_digest

pytestmark = pytest.mark.integration

QUERIES = re.findall(r"```sql\n(.*?)```", (REPO / "docs" / "bi.md").read_text(), flags=re.S)
PLACEHOLDER = "{published}"
SERVING_QUERIES = [q for q in QUERIES if PLACEHOLDER not in q]
PARQUET_QUERIES = [q for q in QUERIES if PLACEHOLDER in q]
PARQUET_FILE = re.compile(r"read_parquet\('\{published\}/current/(\w+)\.parquet'\)")


def query_id(query: str) -> str:
    return query.splitlines()[0].removeprefix("-- ")[:60]


@pytest.fixture(scope="module")
def published(samples_built, tmp_path_factory) -> Publish:
    """One publish of the built samples (the publish only reads the warehouse)."""
    root = tmp_path_factory.mktemp("bi")
    return publish(samples_built, root / "serving.duckdb", root / "published", label="bi-doc")


def answer(database: Path | str, sql: str) -> list[tuple]:
    """Rows as a BI tool gets them, doubles to 9 decimals: two files holding the same
    rows may sum doubles in another order and differ in the last bits."""
    read_only = database != ":memory:"
    with duckdb.connect(str(database), read_only=read_only) as con:
        rows = con.execute(sql).fetchall()
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


def test_the_doc_has_a_query_for_every_served_fact_and_mart(published):
    with duckdb.connect(str(published.serving), read_only=True) as con:
        served = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' and regexp_matches(table_name, '^(fct|mart)_')"
            ).fetchall()
        }
    assert {"fct_service_requests", "fct_request_events", "mart_service_gaps", "mart_hotspots"} <= served
    text = "\n".join(SERVING_QUERIES)
    missing = sorted(t for t in served if not re.search(rf"\bmarts\.{t}\b", text))
    assert not missing, f"docs/bi.md has no example query for {missing}"
    assert "civic311.publishes" in text
    assert PARQUET_QUERIES, "docs/bi.md has no Parquet example"


@pytest.mark.parametrize("query", SERVING_QUERIES, ids=[query_id(q) for q in SERVING_QUERIES])
def test_a_query_on_the_serving_file_answers_as_the_warehouse_does(query, published, samples_built):
    served = answer(published.serving, query)
    assert served, f"the example returned nothing:\n{query}"
    if "civic311.publishes" in query:
        # the publish record exists only in the serving file: it must be this publish's
        assert all(published.publish_id in row for row in served), served[:3]
    else:
        assert served == answer(samples_built, query)


@pytest.mark.parametrize("query", PARQUET_QUERIES, ids=[query_id(q) for q in PARQUET_QUERIES])
def test_a_query_on_the_parquet_files_answers_as_the_warehouse_does(query, published, samples_built):
    parquet_root = published.parquet_dir.parent
    from_files = answer(":memory:", query.replace(PLACEHOLDER, str(parquet_root)))
    assert from_files, f"the example returned nothing:\n{query}"
    from_warehouse = PARQUET_FILE.sub(r"marts.\1", query)
    assert PLACEHOLDER not in from_warehouse, "every file the example reads must be a published table"
    assert from_files == answer(samples_built, from_warehouse)


def test_a_read_only_connection_cannot_change_the_serving_file(published):
    """What the doc tells BI users to rely on, both ways it gives to open the file from
    Python: read_only (duckdb-engine's connect argument) and access_mode=READ_ONLY (what
    duckdb-engine makes of `?access_mode=READ_ONLY` in a Superset URI)."""
    before = file_digest(published.serving)
    writes = (
        "create table marts.scratch as select 1 as x",
        "update marts.dim_city set city_name = 'changed'",
        "delete from civic311.publishes",
        "drop table marts.mart_hotspots",
    )
    for options in ({"read_only": True}, {"config": {"access_mode": "READ_ONLY"}}):
        with duckdb.connect(str(published.serving), **options) as con:
            for statement in writes:
                with pytest.raises(duckdb.Error, match="read-only"):
                    con.execute(statement)
            (changed,) = con.execute(
                "select count(*) from marts.dim_city where city_name = 'changed'"
            ).fetchone()
            (hotspots,) = con.execute("select count(*) from marts.mart_hotspots").fetchone()
        assert changed == 0
        assert hotspots == published.rows["mart_hotspots"] > 0
    assert file_digest(published.serving) == before
