"""One replayed dataset: its rows as encoded JSON, and cached query plans."""

from __future__ import annotations

import logging
import threading
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache

import orjson

from tooling.replay.records import (
    SYSTEM_FIELDS,
    derive_created_at,
    derive_updated_at,
    new_row_id,
    parse_timestamp,
    system_stamp,
)
from tooling.replay.soql import (
    NULL_KEY,
    DailyCount,
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
_EPOCH = datetime(1970, 1, 1)
_SYSTEM_NAMES = {name: orjson.dumps(name) + b":" for name in SYSTEM_FIELDS}


class Dataset:
    """Rows plus caches; every public method is safe to call from many handler threads.

    A row is kept only as the JSON it is served as (about 1 kB for a NYC request, not
    the 5 kB of a dict): a query decodes the fields it filters or sorts on once, into
    one column of typed values per field.
    """

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
        # Each row is its JSON after the opening "{", system fields first; "{" + row is the
        # row with them, "{" + row[body_start:] the row without, so one encoding serves both.
        self._encoded: list[bytes] = []
        self._body_start = array("I")
        self._max_updated = _EPOCH
        self._load(records, tuple(updated_at_fields), created_field)
        # Typed values per field, built on first use; sorting and filtering read them
        # instead of re-parsing timestamps on every request.
        self._typed: dict[str, list[Typed | None]] = {}
        self._orders: OrderedDict[str, tuple[array, list[tuple] | None]] = OrderedDict()
        self._filters: OrderedDict[tuple[str, str], array] = OrderedDict()
        # Built when changes first need them: every :id, and the first row of each id_field value.
        self._ids: set | None = None
        self._rows_by_key: dict[str, int] | None = None

    def _load(self, records: Iterable[dict], updated_at_fields: tuple[str, ...], created_field: str) -> None:
        """Encode each record with the system fields `with_system_fields` would give it."""
        taken: set = set()  # given and derived ids
        given: set = set()
        derived_at = bytearray()
        clash = False
        for position, record in enumerate(records):
            if ":id" in record:
                row_id = record[":id"]
                # An id derived earlier (or given twice) that this record gives: see below.
                clash = clash or row_id in taken
                taken.add(row_id)
                given.add(row_id)
                derived_at.append(0)
            else:
                row_id = new_row_id(self.dataset_id, record.get(self.id_field), taken, position)
                derived_at.append(1)
            system = {
                ":id": row_id,
                ":created_at": record[":created_at"]
                if ":created_at" in record
                else derive_created_at(record, created_field),
                ":updated_at": record[":updated_at"]
                if ":updated_at" in record
                else derive_updated_at(record, updated_at_fields),
            }
            self._append_encoded(record, system)
        if clash:
            # `with_system_fields` knows every given id before deriving any, so it derived
            # another id for that earlier record: derive them all again the same way.
            self._derive_ids_again(given, derived_at)

    def _derive_ids_again(self, given: set, derived_at: bytearray) -> None:
        taken = set(given)
        for position, derived in enumerate(derived_at):
            if derived:
                row = self._row(position)
                row[":id"] = new_row_id(self.dataset_id, row.get(self.id_field), taken, position)
                self._encoded[position], self._body_start[position] = _encode(row)

    def __len__(self) -> int:
        return len(self._encoded)

    def snapshot(self) -> list[dict]:
        """Copies of the current rows, system fields included."""
        with self._lock:
            return [self._row(position) for position in range(len(self._encoded))]

    def page(
        self, *, where: str | None, order: str, limit: int, offset: int, system: bool, lagging: int = 0
    ) -> tuple[bytes, int]:
        """A JSON array body for one request, and how many rows it holds. With `lagging`,
        the answer of a replica that lacks the `lagging` matching rows changed last."""
        predicate = _where(where) if where else None
        order_key = _order(order)  # parse before locking: a SoqlError should not wait
        with self._lock:
            hidden = self._changed_last(predicate, lagging)
            if hidden:
                # Among the first offset + limit + len(hidden) matches are all the replica's
                # first offset + limit.
                found = self._positions(predicate, order_key, 0, offset + limit + len(hidden))
                positions = [p for p in found if p not in hidden][offset : offset + limit]
            else:
                positions = self._positions(predicate, order_key, offset, limit)
            if not positions:
                return b"[]", 0
            encoded = self._encoded
            if system:
                rows = [encoded[i] for i in positions]
            else:
                starts = self._body_start
                rows = [encoded[i][starts[i] :] for i in positions]
            return b"[{" + b",{".join(rows) + b"]", len(positions)

    def count_by_day(
        self, *, where: str | None, query: DailyCount, limit: int, offset: int, lagging: int = 0
    ) -> bytes:
        """The JSON body of a count by day of `query.field`, as SODA answers it: one row
        per day in day order, the count as text, a row without the day for nulls; paged
        by `limit` and `offset` like any answer."""
        predicate = _where(where) if where else None
        with self._lock:
            hidden = self._changed_last(predicate, lagging)
            self._ensure_typed(frozenset({query.field}) | (predicate.fields if predicate else frozenset()))
            row = _Row(self._typed)
            column = self._typed[query.field]
            counts: Counter[date | None] = Counter()
            for position in range(len(self._encoded)):
                if position in hidden:
                    continue
                row.position = position
                if predicate is None or predicate(row):
                    value = column[position]
                    counts[value.ts.date() if value is not None and value.ts is not None else None] += 1
        days = sorted((d for d in counts if d is not None), reverse=query.descending)
        rows = [
            {query.day_name: f"{day.isoformat()}T00:00:00.000", query.count_name: str(counts[day])}
            for day in days
        ]
        if None in counts:
            rows.append({query.count_name: str(counts[None])})
        return orjson.dumps(rows[offset : offset + limit])

    def _changed_last(self, predicate: Predicate | None, rows: int) -> frozenset[int]:
        """The positions of the `rows` rows matching `predicate` that changed last (by
        :updated_at, then :id): what a replica `rows` changes behind lacks of the answer."""
        if rows <= 0:
            return frozenset()
        ordered, _ = self._ordered(_order(":updated_at, :id"))
        if predicate is not None:
            self._ensure_typed(predicate.fields)
        row = _Row(self._typed)
        found: list[int] = []
        for index in range(len(ordered) - 1, -1, -1):
            row.position = ordered[index]
            if predicate is None or predicate(row):
                found.append(row.position)
                if len(found) == rows:
                    break
        return frozenset(found)

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
        ids = self._taken_ids()
        if ":id" not in row:
            key = row.get(self.id_field)
            row[":id"] = new_row_id(self.dataset_id, key, ids, len(self._encoded))
        ids.add(row[":id"])
        row.setdefault(":created_at", stamp)
        row.setdefault(":updated_at", stamp)
        position = len(self._encoded)
        self._encoded.append(b"")
        self._body_start.append(0)
        for column in self._typed.values():
            column.append(None)
        self._store(position, row)
        key = row.get(self.id_field)
        if key is not None:
            self._keyed_rows().setdefault(str(key), position)

    def _update(self, record: dict, stamp: str) -> None:
        key = record.get(self.id_field)
        position = None if key is None else self._keyed_rows().get(str(key))
        if position is not None:
            merged = _drop_nulls({**self._row(position), ":updated_at": stamp, **record})
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
        self._encoded[position], self._body_start[position] = _encode(row)
        self._max_updated = max(self._max_updated, _updated_at(row.get(":updated_at")))
        for field, column in self._typed.items():
            column[position] = _typed(row.get(field))

    def _append_encoded(self, fields: Mapping, system: Mapping) -> None:
        encoded, body_start = _encode(fields, system)
        self._encoded.append(encoded)
        self._body_start.append(body_start)
        self._max_updated = max(self._max_updated, _updated_at(system.get(":updated_at")))

    def _row(self, position: int) -> dict:
        """A new dict of one row: its fields, then its system fields."""
        encoded, body_start = self._encoded[position], self._body_start[position]
        row = orjson.loads(b"{" + encoded[body_start:])
        if body_start:
            row.update(self._system_values(position))
        return row

    def _system_values(self, position: int) -> dict:
        prefix = self._encoded[position][: self._body_start[position]]
        return orjson.loads(b"{" + prefix.removesuffix(b",") + b"}") if prefix else {}

    def _fields(self, position: int) -> dict:
        encoded, body_start = self._encoded[position], self._body_start[position]
        return orjson.loads(b"{" + encoded[body_start:])

    def _taken_ids(self) -> set:
        if self._ids is None:
            self._ids = {self._system_values(p).get(":id") for p in range(len(self._encoded))}
        return self._ids

    def _keyed_rows(self) -> dict[str, int]:
        """The first row holding each id_field value, as text (changes match on text)."""
        if self._rows_by_key is None:
            read = self._row if self.id_field in SYSTEM_FIELDS else self._fields
            self._rows_by_key = {}
            for position in range(len(self._encoded)):
                key = read(position).get(self.id_field)
                if key is not None:
                    self._rows_by_key.setdefault(str(key), position)
        return self._rows_by_key

    def _ensure_typed(self, fields: frozenset[str]) -> None:
        for group, read in (
            ([f for f in fields if f not in self._typed and f in SYSTEM_FIELDS], self._system_values),
            ([f for f in fields if f not in self._typed and f not in SYSTEM_FIELDS], self._fields),
        ):
            if not group:
                continue
            columns: dict[str, list[Typed | None]] = {field: [] for field in group}
            for position in range(len(self._encoded)):
                values = read(position)
                for field, column in columns.items():
                    column.append(_typed(values.get(field)))
            self._typed.update(columns)

    def _ordered(self, order_key: OrderKey) -> tuple[array, list[tuple] | None]:
        """Row positions in $order order, and each row's first sort key when ascending."""
        cached = self._orders.get(order_key.text)
        if cached is None:
            self._ensure_typed(order_key.fields)
            row = _Row(self._typed)

            def sort_key(position: int) -> tuple:
                row.position = position
                return order_key(row)

            ordered = array("I", sorted(range(len(self._encoded)), key=sort_key))
            first, descending = order_key.columns[0]
            firsts = None
            if not descending:
                column = self._typed[first]
                firsts = [NULL_KEY if (v := column[i]) is None else v.key for i in ordered]
            cached = (ordered, firsts)
            _remember(self._orders, order_key.text, cached, _MAX_CACHED_ORDERS)
        return cached

    def _positions(
        self, predicate: Predicate | None, order_key: OrderKey, offset: int, limit: int
    ) -> Sequence[int]:
        ordered, firsts = self._ordered(order_key)
        if predicate is None:
            return ordered[offset : offset + limit]
        cache_key = (predicate.text, order_key.text)
        matched = self._filters.get(cache_key)
        if matched is not None:
            self._filters.move_to_end(cache_key)
            return matched[offset : offset + limit]
        self._ensure_typed(predicate.fields)
        row = _Row(self._typed)
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
                for index in range(start, len(ordered)):
                    row.position = ordered[index]
                    if predicate(row):
                        found.append(row.position)
                        if len(found) == limit:
                            break
            return found
        # Offset paging repeats one $where with a growing offset: filter fully, once.
        matched = array("I")
        for index in range(start, len(ordered)):
            row.position = ordered[index]
            if predicate(row):
                matched.append(row.position)
        _remember(self._filters, cache_key, matched, _MAX_CACHED_FILTERS)
        return matched[offset : offset + limit]


class _Row:
    """One row's typed values as the compiled SoQL reads a record (`.get(field)`); a
    single instance is moved along the rows of a scan."""

    __slots__ = ("_columns", "position")

    def __init__(self, columns: dict[str, list[Typed | None]]) -> None:
        self._columns = columns
        self.position = 0

    def get(self, field: str) -> Typed | None:
        return self._columns[field][self.position]


def _remember(cache: OrderedDict, key: object, value: object, limit: int) -> None:
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)


def _typed(value: object) -> Typed | None:
    return None if value is None else to_typed(value)


def _drop_nulls(record: dict) -> dict:
    # SODA omits null fields, so a None in an update means "clear this field".
    return {key: value for key, value in record.items() if value is not None}


def _updated_at(value: object) -> datetime:
    return parse_timestamp(value) or _EPOCH


def _encode(fields: Mapping, system: Mapping | None = None) -> tuple[bytes, int]:
    """A row's JSON minus its leading "{", and where its fields without the system ones
    begin. `system` holds the system fields when `fields` does not; `fields` may hold
    system fields, which go first either way, in SYSTEM_FIELDS order.
    """
    system = fields if system is None else system
    present = [name for name in SYSTEM_FIELDS if name in system]
    if any(name in fields for name in SYSTEM_FIELDS):
        fields = {key: value for key, value in fields.items() if key not in SYSTEM_FIELDS}
    body = orjson.dumps(fields)[1:]
    prefix = b",".join(_SYSTEM_NAMES[name] + orjson.dumps(system[name]) for name in present)
    if prefix and body != b"}":
        prefix += b","
    return prefix + body, len(prefix)
