"""One replayed dataset: its rows, pre-encoded JSON, and cached query plans."""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

import orjson

from tooling.replay.records import (
    SYSTEM_FIELDS,
    new_row_id,
    parse_timestamp,
    system_stamp,
    with_system_fields,
)
from tooling.replay.soql import (
    NULL_KEY,
    OrderKey,
    Predicate,
    Typed,
    parse_order,
    parse_where,
    to_typed,
)

logger = logging.getLogger("civic311.replay")

# Query plans are pure functions of their text, so they can be shared across datasets.
_where = lru_cache(maxsize=256)(parse_where)
_order = lru_cache(maxsize=64)(parse_order)
# Keyset paging sends a new $where per page; bound the caches so that cannot grow memory.
_MAX_CACHED_ORDERS = 8
_MAX_CACHED_FILTERS = 16


class Dataset:
    """Rows plus caches; every public method is safe to call from many handler threads."""

    def __init__(
        self,
        dataset_id: str,
        records: Iterable[dict],
        *,
        id_field: str,
        updated_at_fields: Sequence[str],
        created_field: str,
    ) -> None:
        self.dataset_id = dataset_id
        self.id_field = id_field
        self._lock = threading.RLock()
        self._rows = with_system_fields(
            records, dataset_id, id_field, tuple(updated_at_fields), created_field
        )
        self._ids = {row[":id"] for row in self._rows}
        # Each row is stored as JSON after its opening "{" plus the encoded system fields,
        # so both answer shapes come from one encoding without holding two copies.
        self._body: list[bytes] = []
        self._system: list[bytes] = []
        for row in self._rows:
            body, system = _encode_parts(row)
            self._body.append(body)
            self._system.append(system)
        self._max_updated = max((_updated_at(row) for row in self._rows), default=datetime(1970, 1, 1))
        # Typed views are built per field on first use; sorting and filtering read them
        # instead of re-parsing timestamps on every request.
        self._typed: list[dict[str, Typed | None]] = []
        self._typed_fields: set[str] = set()
        self._orders: OrderedDict[str, tuple[list[int], list[tuple] | None]] = OrderedDict()
        self._filters: OrderedDict[tuple[str, str], list[int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def snapshot(self) -> list[dict]:
        """Copies of the current rows, system fields included."""
        with self._lock:
            return [dict(row) for row in self._rows]

    def page(
        self, *, where: str | None, order: str, limit: int, offset: int, system: bool
    ) -> tuple[bytes, int]:
        """A JSON array body for one request, and how many rows it holds."""
        predicate = _where(where) if where else None
        order_key = _order(order)  # parse before locking: a SoqlError should not wait
        with self._lock:
            positions = self._positions(predicate, order_key, offset, limit)
            if not positions:
                return b"[]", 0
            bodies = self._body
            if system:
                prefixes = self._system
                rows = [prefixes[i] + bodies[i] for i in positions]
            else:
                rows = [bodies[i] for i in positions]
            return b"[{" + b",{".join(rows) + b"]", len(positions)

    def apply_changes(self, inserts: Sequence[dict], updates: Sequence[dict]) -> None:
        """Insert and update rows as a live portal would between two page requests."""
        if not inserts and not updates:
            return
        with self._lock:
            # One stamp for the batch, like Socrata stamping a publish with "now".
            stamp = system_stamp(self._max_updated + timedelta(seconds=1))
            for record in inserts:
                self._append(_drop_nulls(record), stamp)
            for record in updates:
                self._update(record, stamp)
            self._orders.clear()
            self._filters.clear()

    def _append(self, record: dict, stamp: str) -> None:
        row = dict(record)
        if ":id" not in row:
            key = row.get(self.id_field)
            row[":id"] = new_row_id(self.dataset_id, key, self._ids, len(self._rows))
        self._ids.add(row[":id"])
        row.setdefault(":created_at", stamp)
        row.setdefault(":updated_at", stamp)
        self._rows.append(row)
        self._body.append(b"")
        self._system.append(b"")
        if self._typed_fields:
            self._typed.append({})
        self._store(len(self._rows) - 1, row)

    def _update(self, record: dict, stamp: str) -> None:
        key = record.get(self.id_field)
        for position, row in enumerate(self._rows):
            current = row.get(self.id_field)
            if key is not None and current is not None and str(current) == str(key):
                merged = _drop_nulls({**row, ":updated_at": stamp, **record})
                self._store(position, merged)
                return
        logger.warning(
            "update for %s=%r matched no row in %s; inserting it",
            self.id_field,
            key,
            self.dataset_id,
        )
        self._append(_drop_nulls(record), stamp)

    def _store(self, position: int, row: dict) -> None:
        self._rows[position] = row
        self._body[position], self._system[position] = _encode_parts(row)
        self._max_updated = max(self._max_updated, _updated_at(row))
        if self._typed_fields:
            self._typed[position] = _typed_view(row, self._typed_fields)

    def _ensure_typed(self, fields: frozenset[str]) -> None:
        missing = fields - self._typed_fields
        if not missing:
            return
        if not self._typed:
            self._typed = [{} for _ in self._rows]
        for row, view in zip(self._rows, self._typed, strict=True):
            for field in missing:
                value = row.get(field)
                view[field] = None if value is None else to_typed(value)
        self._typed_fields |= missing

    def _ordered(self, order_key: OrderKey) -> tuple[list[int], list[tuple] | None]:
        """Row positions in $order order, and each row's first sort key when ascending."""
        cached = self._orders.get(order_key.text)
        if cached is None:
            self._ensure_typed(order_key.fields)
            typed = self._typed
            ordered = sorted(range(len(self._rows)), key=lambda i: order_key(typed[i]))
            first, descending = order_key.columns[0]
            firsts = None
            if not descending:
                firsts = [NULL_KEY if (v := typed[i][first]) is None else v.key for i in ordered]
            cached = (ordered, firsts)
            _remember(self._orders, order_key.text, cached, _MAX_CACHED_ORDERS)
        return cached

    def _positions(
        self, predicate: Predicate | None, order_key: OrderKey, offset: int, limit: int
    ) -> list[int]:
        ordered, firsts = self._ordered(order_key)
        if predicate is None:
            return ordered[offset : offset + limit]
        cache_key = (predicate.text, order_key.text)
        matched = self._filters.get(cache_key)
        if matched is not None:
            self._filters.move_to_end(cache_key)
            return matched[offset : offset + limit]
        self._ensure_typed(predicate.fields)
        typed = self._typed
        start = 0
        floor = predicate.floors.get(order_key.columns[0][0])
        if firsts is not None and floor is not None:
            # Rows sorted before the floor are nulls or earlier timestamps: none can match.
            start = bisect_left(firsts, (1, 0, floor))
        if offset == 0:
            # Keyset paging sends a new $where every page and only ever needs the first
            # `limit` matches; stopping early keeps each page near O(limit).
            found: list[int] = []
            if limit:
                for position in range(start, len(ordered)):
                    i = ordered[position]
                    if predicate(typed[i]):
                        found.append(i)
                        if len(found) == limit:
                            break
            return found
        # Offset paging repeats one $where with a growing offset: filter fully, once.
        matched = [i for i in ordered[start:] if predicate(typed[i])]
        _remember(self._filters, cache_key, matched, _MAX_CACHED_FILTERS)
        return matched[offset : offset + limit]


def _remember(cache: OrderedDict, key: object, value: object, limit: int) -> None:
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)


def _typed_view(row: dict, fields: Iterable[str]) -> dict[str, Typed | None]:
    return {f: None if (v := row.get(f)) is None else to_typed(v) for f in fields}


def _drop_nulls(record: dict) -> dict:
    # SODA omits null fields, so a None in an update means "clear this field".
    return {key: value for key, value in record.items() if value is not None}


def _updated_at(row: dict) -> datetime:
    return parse_timestamp(row.get(":updated_at")) or datetime(1970, 1, 1)


def _encode_parts(row: dict) -> tuple[bytes, bytes]:
    """The row's JSON minus its leading "{", and the system fields to splice in front.

    "{" + body is the row without system fields; "{" + system + body is the row with them.
    """
    plain_row = dict(row)
    system = [(name, plain_row.pop(name)) for name in SYSTEM_FIELDS if name in plain_row]
    body = orjson.dumps(plain_row)[1:]
    prefix = b",".join(orjson.dumps(name) + b":" + orjson.dumps(value) for name, value in system)
    if prefix and body != b"}":
        prefix += b","
    return body, prefix
