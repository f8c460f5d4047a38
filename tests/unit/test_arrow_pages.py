"""A page of records as Arrow: the fast paths (Arrow's own inference over the page,
orjson for nested values) build exactly what the value-by-value path builds."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from ingestion.sources import arrow
from ingestion.sources.arrow import ColumnTypes, json_text, records_to_table
from tests.helpers.data import NYC_SODA_SAMPLE

LOADED_AT = datetime(2026, 12, 6, tzinfo=UTC)


def reference_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def random_value(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return {
            rng.choice(["b", "a", "Z", "é", "_k", "type"]): random_value(rng, depth + 1) for _ in range(3)
        }
    if depth < 3 and roll < 0.4:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.65:
        return rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 20)  # small floats print differently
    if roll < 0.75:
        return rng.choice([0, -3, 2**63 - 1, 2**64, -(2**70)])  # beyond 64 bits too
    if roll < 0.8:
        return rng.choice([True, False, None])
    return "".join(
        rng.choice(['"', "\\", "\n", "\x00", "\x1f", "\x7f", "é", "\u2028", "a", "1e-5"]) for _ in range(5)
    )


def test_json_text_of_nested_values_is_what_json_writes():
    rng = random.Random(311)
    values = [random_value(rng) for _ in range(20_000)]
    nested = [v for v in values if isinstance(v, dict | list)]
    assert len(nested) > 5_000
    assert [json_text(v) for v in nested] == [reference_json(v) for v in nested]


def page_table(records: list[dict], types: ColumnTypes) -> pa.Table:
    return records_to_table(
        records,
        city_id="nyc",
        source_ids=[str(i) for i in range(len(records))],
        updated_at=[LOADED_AT] * len(records),
        loaded_at=LOADED_AT,
        types=types,
    )


def pages_both_ways(pages: list[list[dict]], known: dict[str, str] | None, monkeypatch) -> tuple:
    """Each page through records_to_table, with Arrow's conversions and without them;
    also how many pages Arrow converted by type."""
    typed_pages = []
    by_type = arrow._typed_struct
    fast_types = ColumnTypes("nyc", "service_requests", known)
    with monkeypatch.context() as patched:
        patched.setattr(arrow, "_typed_struct", lambda *a: typed_pages.append(by_type(*a)) or typed_pages[-1])
        fast = [page_table(p, fast_types) for p in pages]
    with monkeypatch.context() as patched:
        patched.setattr(arrow, "_typed_struct", lambda *a: None)
        patched.setattr(arrow, "_inferred_struct", lambda records: None)
        slow_types = ColumnTypes("nyc", "service_requests", known)
        slow = [page_table(p, slow_types) for p in pages]
    return fast, slow, fast_types, slow_types, sum(p is not None for p in typed_pages)


@pytest.mark.parametrize(
    "known",
    [None, {"count": "double", "open": "text", "ratio": "bigint", "flag": "bool"}],
    ids=["new-columns", "columns-loaded-before"],
)
def test_inferred_pages_equal_value_by_value_pages(known, monkeypatch):
    pages = [
        [
            {
                "count": 1,
                "ratio": 2.5,
                "open": True,
                "note": "a",
                "point": {"type": "Point", "coordinates": [1.5, 2]},
            },
            {"count": 2, "ratio": 3, "flag": True, "note": None},
        ],
        # Only fields seen before: Arrow converts the typed ones by type (ints into a
        # double column, bools, text, a missing field), a float goes to bigint's variant.
        [{"ratio": 7, "open": False, "note": "c", "count": 2.5}, {"ratio": 1e-5, "note": None}],
        # Types that differ from the first page's: variants, a column that stays null.
        [{"count": 1.5, "ratio": 4, "open": "yes", "flag": None, "gone": None}, {"count": 7, "open": False}],
        # A page Arrow cannot type at all (text and numbers in one field).
        [{"count": "many", "note": 5}, {"count": 3, "note": "b", "point": [1, 2]}],
        [{"count": 2**40, "flag": False, "ratio": 1e-7}],
    ]
    fast, slow, fast_types, slow_types, typed = pages_both_ways(pages, known, monkeypatch)
    assert typed >= 1
    for fast_page, slow_page in zip(fast, slow, strict=True):
        assert fast_page.schema == slow_page.schema
        assert fast_page.equals(slow_page)
    assert fast_types.kinds == slow_types.kinds
    assert fast_types.variants == slow_types.variants
    assert fast_types.variants  # the pages did produce variants


def test_a_real_page_is_inferred_and_equals_value_by_value(monkeypatch):
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    assert arrow._inferred_struct(records) is not None
    fast, slow, fast_types, _, typed = pages_both_ways([records, records[500:]], None, monkeypatch)
    assert typed == 1  # the second page, whose fields the first had
    assert all(f.equals(s) for f, s in zip(fast, slow, strict=True))
    assert not fast_types.variants
