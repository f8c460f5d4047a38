"""Quarantine counts: what civic311 received and did not model, by city, stage and
rule (quarantine.service_requests, built by dbt). Payloads stay in the warehouse:
they can hold residents' names, so nothing here prints them."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import duckdb


class QuarantineCount(NamedTuple):
    city_id: str
    stage: str
    rule: str
    rows: int
    loads: int
    last_quarantined_at: object


def quarantine_counts(warehouse: Path, city_id: str | None = None) -> list[QuarantineCount]:
    """Rows per (city, stage, rule), with the number of loads they came in."""
    if not warehouse.exists():
        raise FileNotFoundError(
            "there is no warehouse here yet: run a refresh (civic311 demo, or civic311 refresh --city C) "
            "first, or point CIVIC311_WAREHOUSE at yours"
        )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return read_counts(con, city_id)


def read_counts(con: duckdb.DuckDBPyConnection, city_id: str | None = None) -> list[QuarantineCount]:
    """quarantine_counts on a connection already open on the warehouse."""
    (built,) = con.execute(
        "select count(*) from duckdb_views() "
        "where schema_name = 'quarantine' and view_name = 'service_requests'"
    ).fetchone()
    if not built:
        raise FileNotFoundError(
            "the warehouse has no quarantine.service_requests yet: run a refresh "
            "(civic311 demo, or civic311 refresh --city C) first"
        )
    rows = con.execute(
        "select city_id, stage, rule, count(*), count(distinct load_id), max(quarantined_at) "
        "from quarantine.service_requests where $city is null or city_id = $city "
        "group by all order by city_id, stage, rule",
        {"city": city_id},
    ).fetchall()
    return [QuarantineCount(*row) for row in rows]


def format_counts(counts: list[QuarantineCount]) -> str:
    if not counts:
        return "Quarantine: empty (every record received was modelled)."
    lines = [f"Quarantine: {sum(c.rows for c in counts):,} records (quarantine.service_requests)"]
    for c in counts:
        loads = f"{c.loads} load" + ("s" if c.loads != 1 else "")
        lines.append(f"  {c.city_id:<16} {c.stage:<10} {c.rule:<40} {c.rows:>8,}  ({loads})")
    return "\n".join(lines)
