"""Turn a page of records into an Arrow table before dlt sees it.

Arrow tables skip dlt's per-row normalizer (about 150x faster into DuckDB), but
they also skip its type handling, so this module does what dlt's normalizer
would: a column keeps the type it was first loaded with, and a value of another
type goes to a variant column named the dlt way (`lat__v_text`). Nothing is
cast lossily and nothing is dropped; every variant is logged and listed in
`ColumnTypes.variants` for the run to report. Nested values (GeoJSON points,
notes, attributes) are kept as JSON text. New upstream columns simply appear.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

import dlt
import orjson
import pyarrow as pa
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.typing import VARIANT_FIELD_FORMAT

from ingestion.redact import get_logger

log = get_logger("civic311.arrow")

META_COLUMNS = ("city_id", "source_id", "source_updated_at", "_loaded_at")
_NAMING = NamingConvention()
_ARROW = {"text": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}
_INSTANT = pa.timestamp("us", tz="UTC")
_KIND_OF_ARROW = {arrow_type: kind for kind, arrow_type in _ARROW.items()}
# Where orjson's text of a float may differ from Python's (1e-05 vs 0.00001, 1e-06 vs
# 1e-6): only magnitudes in [1e-10, 1e-4) do. A match, even inside a string, means
# the value is written by `json` instead.
_ORJSON_MAY_DIFFER = re.compile(rb"e-\d(?!\d)|0\.0000")


def _kind(value: object) -> str:
    """The dlt data type a Python value loads as; nested values load as JSON text."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    return "text"


def json_text(value: object) -> str | None:
    """A value as raw keeps it in a text column: strings as they are, everything else as JSON
    (compact, keys sorted, non-ASCII kept: the text `json.dumps` writes)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    # orjson writes the same text several times faster, but for some small floats and
    # integers beyond 64 bits.
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = None
    if text is not None and not _ORJSON_MAY_DIFFER.search(text):
        return text.decode()
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _fits(value: object, kind: str) -> bool:
    """Whether the value loads into a column of `kind` without a variant (dlt's coercions)."""
    found = _kind(value)
    return found == kind or kind == "text" or (kind == "double" and found == "bigint")


def _convert(value: object, kind: str) -> object:
    if kind == "text":
        return json_text(value)
    if kind == "double":
        return float(value)
    return value


class ColumnTypes:
    """The type each column of one table has, as loaded before and during this run."""

    def __init__(self, city_id: str, table: str, known: Mapping[str, str] | None = None):
        self.city_id = city_id
        self.table = table
        self.kinds: dict[str, str] = dict(known or {})
        self.variants: set[str] = set()
        # Fields whose last page Arrow converted whole, and whose type Arrow converts
        # to exactly as `column` would (it truncates a float into int64, so no bigint):
        # the next page asks Arrow for these by type rather than inferring them again.
        self.arrow_typed: dict[str, pa.DataType] = {}

    @classmethod
    def from_schema(cls, city_id: str, table: str) -> ColumnTypes:
        """Column types of `table` in the schema of the source being extracted."""
        try:
            columns = dlt.current.source_schema().tables.get(table, {}).get("columns", {})
        except Exception:  # noqa: BLE001 - outside a pipeline run there is no schema yet
            columns = {}
        known = {
            name: col["data_type"]
            for name, col in columns.items()
            if col.get("data_type") in _ARROW and not col.get("variant")
        }
        return cls(city_id, table, known)

    def inferred_column(self, name: str, inferred: pa.Array) -> dict[str, pa.Array] | None:
        """The field's column taken from Arrow's own inference over the page, when that
        is exactly what `column` would build: every value of the column's type, or none
        at all. None when `column` must look at the values (nested values, variants)."""
        normalized = _NAMING.normalize_identifier(name)
        kind = self.kinds.get(normalized)
        if pa.types.is_null(inferred.type):
            return {name: pa.nulls(len(inferred), _ARROW[kind] if kind else pa.string())}
        found = _KIND_OF_ARROW.get(inferred.type)
        if found is None or (kind is not None and found != kind):
            return None
        self.kinds[normalized] = found
        if found != "bigint":
            self.arrow_typed[name] = inferred.type
        return {name: inferred}

    def column(self, name: str, values: Sequence[object]) -> dict[str, pa.Array]:
        """The Arrow column(s) for one field of a page: the field and any variants."""
        self.arrow_typed.pop(name, None)
        normalized = _NAMING.normalize_identifier(name)
        kind = self.kinds.get(normalized)
        if kind is None:
            kind = self._first_kind(values)
            if kind is None:  # every value null: text until a value says otherwise
                return {name: pa.nulls(len(values), pa.string())}
            self.kinds[normalized] = kind
        fast = _fast_column(values, kind)
        if fast is not None:
            return {name: fast}
        if kind == "text":  # every value fits a text column (nested values as JSON)
            return {name: pa.array([json_text(v) for v in values], pa.string())}
        main: list[object] = []
        others: dict[str, list[object]] = {}
        for i, value in enumerate(values):
            if value is None or _fits(value, kind):
                main.append(None if value is None else _convert(value, kind))
                continue
            main.append(None)
            other = _kind(value)
            others.setdefault(other, [None] * len(values))[i] = value
        arrays = {name: pa.array(main, _ARROW[kind])}
        for other, column in others.items():
            variant = _NAMING.shorten_fragments(normalized, VARIANT_FIELD_FORMAT % other)
            arrays[variant] = pa.array(
                [_convert(v, other) if v is not None else None for v in column], _ARROW[other]
            )
            if variant not in self.variants:
                self.variants.add(variant)
                log.warning(
                    "%s: field '%s' of %s is %s but arrived as %s; kept in variant column '%s'",
                    self.city_id,
                    normalized,
                    self.table,
                    kind,
                    other,
                    variant,
                )
        return arrays

    @staticmethod
    def _first_kind(values: Sequence[object]) -> str | None:
        kinds = {_kind(v) for v in values if v is not None}
        if not kinds:
            return None
        if kinds <= {"bigint", "double"}:
            return "double" if "double" in kinds else "bigint"
        return _kind(next(v for v in values if v is not None))


def _fast_column(values: Sequence[object], kind: str) -> pa.Array | None:
    """Arrow's own conversion when every value already has the column's type."""
    try:
        array = pa.array(values, _ARROW[kind], from_pandas=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError, OverflowError):
        return None
    # Arrow refuses anything but str (or bytes, which JSON never holds) for a string
    # column, and bool for an int64 one,
    # but it truncates a float into int64 silently: only that case needs a look.
    if kind == "bigint" and any(isinstance(v, float) for v in values):
        return None
    return array


def records_to_table(
    records: Sequence[Mapping[str, object]],
    *,
    city_id: str,
    source_ids: Sequence[str],
    updated_at: Sequence[datetime] | pa.Array,
    loaded_at: datetime,
    types: ColumnTypes,
) -> pa.Table:
    """One page as an Arrow table: civic311's metadata first, then every delivered field."""
    names = dict.fromkeys(itertools.chain.from_iterable(records))
    typed, page = _typed_struct(records, names, types), None
    if typed is None:
        page = _inferred_struct(records)
    columns: dict[str, pa.Array] = {
        "city_id": pa.array([city_id] * len(records), pa.string()),
        "source_id": pa.array(source_ids, pa.string()),
        "source_updated_at": _instants(updated_at),
        "_loaded_at": pa.array([loaded_at] * len(records), _INSTANT),
    }
    for name in names:
        if name in META_COLUMNS:
            raise ValueError(f"{city_id}: the feed has a field named {name!r}, which civic311 reserves")
        if typed is not None and name in types.arrow_typed:
            arrays = {name: typed.field(name)}
        else:
            arrays = types.inferred_column(name, page.field(name)) if page is not None else None
        columns.update(arrays or types.column(name, [r.get(name) for r in records]))
    return key_not_null(pa.table(columns))


def _instants(values: Sequence[datetime] | pa.Array) -> pa.Array:
    if isinstance(values, pa.Array):
        return values.cast(_INSTANT)
    return pa.array(values, _INSTANT)


def _typed_struct(
    records: Sequence[Mapping[str, object]], names: Mapping[str, None], types: ColumnTypes
) -> pa.StructArray | None:
    """The page's Arrow-typed fields (`ColumnTypes.arrow_typed`) as one struct array,
    converted by type, about twice as fast as inferring. None when a field is new
    (the page is inferred then), or a value does not convert (inferred, and typed
    value by value where Arrow cannot)."""
    fields = [(name, types.arrow_typed[name]) for name in names if name in types.arrow_typed]
    if not fields:
        return None
    typed = {name for name, _ in fields}
    if any(_NAMING.normalize_identifier(n) not in types.kinds for n in names if n not in typed):
        return None
    try:
        page = pa.array(records, pa.struct(fields))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return None
    return page if isinstance(page, pa.StructArray) else None


def _inferred_struct(records: Sequence[Mapping[str, object]]) -> pa.StructArray | None:
    """The page as one struct array, typed by Arrow's inference in C++ (a missing field
    is null); None when Arrow cannot type it, say a field mixing text and numbers, and
    each column is then built value by value."""
    if not records:
        return None
    try:
        page = pa.array(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return None
    return page if isinstance(page, pa.StructArray) else None


def key_not_null(table: pa.Table) -> pa.Table:
    """Mark the merge key (city_id, source_id) not nullable, so the Arrow schema agrees with dlt's."""
    for name in ("city_id", "source_id"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(index).with_nullable(False), table[name])
    return table
