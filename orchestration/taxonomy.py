"""`civic311 taxonomy unmapped`: the loaded service types and departments that no
seed row maps, with their requests and what the rules give them instead, read
from intermediate.int_service_types and int_departments. As seed rows, they can
be pasted into dbt_project/seeds/ as they stand: a type with no rule gets an
empty category_id and a department with no rule an empty department_id, which
load but map nothing, and which the seeds' not_null tests name on the next
`dbt build`, so nothing is ever mapped without someone choosing."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import duckdb

TYPE_SEED_COLUMNS = ("city_id", "service_name", "service_subtype", "category_id")
DEPARTMENT_SEED_COLUMNS = ("city_id", "source_department", "department_id", "department_name")


class UnmappedType(NamedTuple):
    city_id: str
    service_name: str
    service_subtype: str | None
    requests: int
    category_id: str  # what the rules give: a category, or unclassified
    rule_order: int | None


class UnmappedDepartment(NamedTuple):
    city_id: str
    department: str
    requests: int
    department_id: str  # the rule's department, or `<city_id>.source.<slug>`
    department_name: str
    department_source: str  # rule or source
    rule_order: int | None


class Unmapped(NamedTuple):
    types: list[UnmappedType]
    departments: list[UnmappedDepartment]


def read_unmapped(warehouse: Path, city_id: str | None = None) -> Unmapped:
    """What no seed row maps, from the working warehouse, opened read-only."""
    if not warehouse.exists():
        raise FileNotFoundError(
            "there is no warehouse here yet: run a refresh (civic311 demo, or civic311 refresh --city C) "
            "first, or point CIVIC311_WAREHOUSE at yours"
        )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (built,) = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'intermediate' "
            "and table_name in ('int_service_types', 'int_departments')"
        ).fetchone()
        if built < 2:
            raise FileNotFoundError(
                "the warehouse has no intermediate.int_service_types and int_departments yet: run a "
                "refresh (civic311 demo, or civic311 refresh --city C) first"
            )
        types = con.execute(
            "select city_id, service_name, service_subtype, requests, category_id, rule_order "
            "from intermediate.int_service_types "
            "where seed_category_id is null and service_name is not null "
            "and ($city is null or city_id = $city) "
            "order by city_id, service_name, service_subtype nulls first",
            {"city": city_id},
        ).fetchall()
        departments = con.execute(
            "select city_id, department, requests, department_id, department_name, department_source, "
            "rule_order from intermediate.int_departments "
            "where seed_department_id is null and ($city is null or city_id = $city) "
            "order by city_id, department",
            {"city": city_id},
        ).fetchall()
    return Unmapped([UnmappedType(*row) for row in types], [UnmappedDepartment(*row) for row in departments])


def format_unmapped(unmapped: Unmapped) -> str:
    types, departments = unmapped
    if not types and not departments:
        return "Every loaded service type and department is mapped by a seed row."
    lines = [
        f"Service types no seed row maps: {len(types):,} ({sum(t.requests for t in types):,} requests)",
    ]
    for t in types:
        rule = f"rule {t.rule_order}" if t.rule_order is not None else "no rule"
        lines.append(f"  {t.city_id:<16} {_type_name(t):<70} {t.requests:>8,}  -> {t.category_id} ({rule})")
    lines.append(
        f"Departments no seed row maps: {len(departments):,} "
        f"({sum(d.requests for d in departments):,} requests)"
    )
    for d in departments:
        how = f"rule {d.rule_order}" if d.department_source == "rule" else "its own, not mapped"
        lines.append(f"  {d.city_id:<16} {d.department:<70} {d.requests:>8,}  -> {d.department_id} ({how})")
    lines.append(
        "As seed rows: civic311 taxonomy unmapped --csv (service_type_categories.csv), "
        "--csv --departments (departments.csv)."
    )
    return "\n".join(lines)


def _type_name(t: UnmappedType) -> str:
    return t.service_name if t.service_subtype is None else f"{t.service_name} / {t.service_subtype}"


def type_seed_rows(types: list[UnmappedType]) -> list[tuple[str, str, str, str]]:
    """service_type_categories rows for the unmapped types, as the seed is written:
    one any-subtype row per service name, plus an exact row for each subtype the
    rules put elsewhere. The any-subtype row takes the rules' category of most of
    the name's requests (of those with no subtype, when there are some), or is
    left empty when a subtype of the name matches no rule: an exact row with an
    empty category falls back on the any-subtype row, which must then map nothing
    either. A row left empty maps nothing (the rules still apply) until someone
    fills it in, and `dbt build` names it until then."""
    by_name: dict[tuple[str, str], list[UnmappedType]] = defaultdict(list)
    for t in types:
        by_name[t.city_id, t.service_name].append(t)
    rows = []
    for (city_id, name), subtypes in sorted(by_name.items()):
        requests_by_category: dict[str, int] = defaultdict(int)
        for t in subtypes:
            requests_by_category[_seed_category(t)] += t.requests
        without_subtype = [t for t in subtypes if t.service_subtype is None]
        if "" in requests_by_category:
            default = ""
        elif without_subtype:
            default = _seed_category(without_subtype[0])
        else:
            # the most requests; a tie goes to a category over none, then alphabetically
            default = min(requests_by_category, key=lambda c: (-requests_by_category[c], c == "", c))
        rows.append((city_id, name, "", default))
        rows += [
            (city_id, name, t.service_subtype, _seed_category(t))
            for t in subtypes
            if t.service_subtype is not None and _seed_category(t) != default
        ]
    return rows


def _seed_category(t: UnmappedType) -> str:
    return "" if t.category_id == "unclassified" else t.category_id


def department_seed_rows(departments: list[UnmappedDepartment]) -> list[tuple[str, str, str, str]]:
    """departments rows for the unmapped departments: the rule's department where a
    rule maps one; else an empty department_id, and the normalised name as a
    suggestion for its department_name."""
    return [
        (
            d.city_id,
            d.department,
            d.department_id if d.department_source == "rule" else "",
            d.department_name,
        )
        for d in departments
    ]


def to_csv(rows: list[tuple[str, ...]]) -> str:
    """Rows quoted as dbt seeds need (a value holding a comma or a quote is quoted), no header."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
