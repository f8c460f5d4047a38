"""A safe recursive-descent parser for the SoQL subset that 311 feeds use.

$where compiles to closures over record dicts; nothing is ever evaluated as code or SQL.
Conditions use SQL's three-valued logic (True, False, None for "unknown") because that
is what Socrata's database does: NOT (x > 1) is not true when x is null.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from tooling.replay.records import parse_timestamp

_NUMBER_PATTERN = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_FIELD_PATTERN = r":?[A-Za-z_@][A-Za-z0-9_@]*"
_NUMBER = re.compile(_NUMBER_PATTERN)
_FIELD = re.compile(_FIELD_PATTERN)
_TOKEN = re.compile(
    rf"""
      (?P<ws>\s+)
    | (?P<string>'(?:[^']|'')*+')  # possessive: "'it''s" is one unterminated literal
    | (?P<number>{_NUMBER_PATTERN})
    | (?P<op><=|>=|<>|!=|=|<|>)
    | (?P<name>{_FIELD_PATTERN})
    | (?P<punct>[(),*])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IS", "NULL", "ASC", "DESC"})
_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Node = Callable[[dict], "bool | None"]
_FLOOR_OPS = frozenset({"=", ">", ">="})
_MAX_DEPTH = 100


class SoqlError(ValueError):
    """A $select, $where, $group or $order clause this parser cannot accept."""


class Typed:
    """A value read three ways, so comparisons can pick the right one per literal."""

    __slots__ = ("text", "ts", "num", "key")

    def __init__(self, text: str, ts: datetime | None, num: int | float | None) -> None:
        self.text = text
        self.ts = ts
        self.num = num
        # Leading kind rank keeps mixed columns totally ordered instead of raising TypeError.
        if ts is not None:
            self.key: tuple = (1, 0, ts)
        elif num is not None:
            self.key = (1, 1, num)
        else:
            self.key = (1, 2, text)


NULL_KEY = (0,)  # sorts before every Typed.key: Socrata puts nulls first in ascending order


def to_typed(value: Any) -> Typed:
    if isinstance(value, str):
        ts = parse_timestamp(value)
        return Typed(value, ts, _number(value) if ts is None else None)
    if isinstance(value, bool):
        return Typed("true" if value else "false", None, None)
    if isinstance(value, int | float):
        return Typed(str(value), None, value)
    # Nested values such as a location point compare by their JSON text.
    return Typed(json.dumps(value, sort_keys=True), None, None)


def _number(text: str) -> int | float | None:
    if not _NUMBER.fullmatch(text):
        return None
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


def _get(record: dict, field: str) -> Typed | None:
    # Callers may pass pre-typed views (the server caches them) or raw SODA records.
    value = record.get(field)
    if value is None or value.__class__ is Typed:
        return value
    return to_typed(value)


class _Cond(NamedTuple):
    node: Node
    # field -> timestamp the field must be at or after for the condition to hold. It lets
    # the server skip straight to that point in an order sorted by the field.
    floors: dict[str, datetime]


class _Token(NamedTuple):
    kind: str
    value: str
    pos: int


class _Parser:
    def __init__(self, text: str, param: str) -> None:
        self.text = text
        self.param = param
        self.tokens = self._tokenize()
        self.index = 0
        self.depth = 0
        self.fields: set[str] = set()

    def error(self, message: str, pos: int | None = None) -> SoqlError:
        where = "at end of input" if pos is None else f"at character {pos + 1}"
        return SoqlError(f"{self.param}: {message} {where} in {self.text!r}")

    def _tokenize(self) -> list[_Token]:
        tokens = []
        pos = 0
        while pos < len(self.text):
            match = _TOKEN.match(self.text, pos)
            if match is None:
                if self.text[pos] == "'":
                    raise self.error("unterminated string literal", pos)
                raise self.error(f"unexpected character {self.text[pos]!r}", pos)
            kind = match.lastgroup or ""
            if kind != "ws":
                value = match.group()
                if kind == "name" and value.upper() in _KEYWORDS:
                    kind, value = "keyword", value.upper()
                tokens.append(_Token(kind, value, pos))
            pos = match.end()
        return tokens

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token | None:
        token = self.peek()
        if token is not None:
            self.index += 1
        return token

    def accept_keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "keyword" and token.value == word:
            self.index += 1
            return True
        return False

    def expect(self, kind: str, what: str) -> _Token:
        token = self.take()
        if token is None:
            raise self.error(f"expected {what}")
        if token.kind != kind:
            raise self.error(f"expected {what}, found {token.value!r}", token.pos)
        return token

    def field(self) -> str:
        name = self.expect("name", "a field name").value
        self.fields.add(name)
        return name

    def finish(self) -> None:
        token = self.peek()
        if token is not None:
            raise self.error(f"unexpected {token.value!r}", token.pos)

    # where := or ; or := and (OR and)* ; and := not (AND not)* ; not := NOT not | atom
    def where(self) -> _Cond:
        parts = [self.conjunction()]
        while self.accept_keyword("OR"):
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        # A floor holds for an OR only if every branch has one; the loosest wins.
        shared = set.intersection(*(set(part.floors) for part in parts))
        floors = {f: min(part.floors[f] for part in parts) for f in shared}
        return _Cond(_any([part.node for part in parts]), floors)

    def conjunction(self) -> _Cond:
        parts = [self.negation()]
        while self.accept_keyword("AND"):
            parts.append(self.negation())
        if len(parts) == 1:
            return parts[0]
        floors: dict[str, datetime] = {}
        for part in parts:
            for f, floor in part.floors.items():
                floors[f] = max(floor, floors.get(f, floor))
        return _Cond(_all([part.node for part in parts]), floors)

    def negation(self) -> _Cond:
        # Every NOT and every "(" passes through here; a depth cap turns a hostile
        # "((((...." into a 400 instead of a RecursionError.
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            token = self.peek()
            raise self.error("conditions nested too deeply", token.pos if token else None)
        try:
            if self.accept_keyword("NOT"):
                return _Cond(_not(self.negation().node), {})
            return self.atom()
        finally:
            self.depth -= 1

    def atom(self) -> _Cond:
        opening = self.peek()
        if opening is not None and opening.value == "(":
            self.index += 1
            inner = self.where()
            closing = self.take()
            if closing is None or closing.value != ")":
                found = f", found {closing.value!r}" if closing else ""
                message = f"expected ')' to close '(' at character {opening.pos + 1}{found}"
                raise self.error(message, closing.pos if closing else None)
            return inner
        field = self.field()
        if self.accept_keyword("IS"):
            negate = self.accept_keyword("NOT")
            if not self.accept_keyword("NULL"):
                token = self.peek()
                raise self.error("expected NULL after IS", token.pos if token else None)
            return _Cond(_not_null(field) if negate else _is_null(field), {})
        op = self.expect("op", f"a comparison operator after {field!r}").value
        literal = self.literal()
        floors = {field: literal.ts} if literal.ts is not None and op in _FLOOR_OPS else {}
        return _Cond(_compare(field, op, literal), floors)

    def literal(self) -> Typed:
        token = self.take()
        if token is None:
            raise self.error("expected a quoted string or number")
        if token.kind == "string":
            return to_typed(token.value[1:-1].replace("''", "'"))
        if token.kind == "number":
            return Typed(token.value, None, _number(token.value))
        raise self.error(f"expected a quoted string or number, found {token.value!r}", token.pos)

    # item := date_trunc_ymd "(" field ")" [AS name] | count "(" "*" ")" [AS name]
    def select_item(self) -> tuple[str, str | None, str]:
        token = self.expect("name", "date_trunc_ymd(...) or count(*)")
        function = token.value.lower()
        if function not in (_TRUNC, "count"):
            message = f"the replay answers only {_TRUNC}(...) and count(*), not {token.value!r}"
            raise self.error(message, token.pos)
        self._punct("(")
        if function == "count":
            self._punct("*")
            field, name = None, "count"
        else:
            field = self.field()
            name = f"{_TRUNC}_{field.lstrip(':')}"
        self._punct(")")
        following = self.peek()
        if following is not None and following.kind == "name" and following.value.upper() == "AS":
            self.index += 1
            name = self.expect("name", "a column alias after AS").value
        return function, field, name

    def _punct(self, value: str) -> None:
        token = self.take()
        if token is None or token.value != value:
            found = f", found {token.value!r}" if token else ""
            raise self.error(f"expected {value!r}{found}", token.pos if token else None)

    # order := term (, term)* ; term := field [ASC|DESC]
    def order(self) -> list[tuple[str, bool]]:
        terms = []
        while True:
            field = self.field()
            descending = self.accept_keyword("DESC")
            if not descending:
                self.accept_keyword("ASC")
            terms.append((field, descending))
            token = self.take()
            if token is None:
                return terms
            if token.value != ",":
                raise self.error(f"expected ',' or end of input, found {token.value!r}", token.pos)


def _all(parts: list[Node]) -> Node:
    def node(record: dict) -> bool | None:
        result: bool | None = True
        for part in parts:
            value = part(record)
            if value is False:
                return False
            if value is None:
                result = None
        return result

    return node


def _any(parts: list[Node]) -> Node:
    def node(record: dict) -> bool | None:
        result: bool | None = False
        for part in parts:
            value = part(record)
            if value is True:
                return True
            if value is None:
                result = None
        return result

    return node


def _not(inner: Node) -> Node:
    def node(record: dict) -> bool | None:
        value = inner(record)
        return None if value is None else not value

    return node


def _is_null(field: str) -> Node:
    return lambda record: record.get(field) is None


def _not_null(field: str) -> Node:
    return lambda record: record.get(field) is not None


def _compare(field: str, op: str, literal: Typed) -> Node:
    cmp = _COMPARATORS[op]
    text = literal.text
    # Decide once which reading of the record value this literal is compared with; the
    # record falls back to its text when it cannot be read that way.
    if literal.ts is not None:
        attr, target = "ts", literal.ts
    elif literal.num is not None:
        attr, target = "num", literal.num
    else:
        attr, target = "text", text

    def node(record: dict) -> bool | None:
        value = record.get(field)
        if value is None:
            return None
        if value.__class__ is not Typed:
            value = to_typed(value)
        typed = getattr(value, attr)
        return cmp(value.text, text) if typed is None else cmp(typed, target)

    return node


class Predicate:
    """A compiled $where: call it with a record; `fields` lists the fields it reads.

    `floors` maps a field to a timestamp it must reach for the predicate to hold; it only
    narrows where a scan of timestamp-typed values may start and never decides a match.
    """

    __slots__ = ("text", "fields", "floors", "_node")

    def __init__(self, text: str, fields: frozenset[str], node: Node, floors: dict[str, datetime]) -> None:
        self.text = text
        self.fields = fields
        self.floors = floors
        self._node = node

    def __call__(self, record: dict) -> bool:
        return self._node(record) is True


class _Desc:
    """Inverts ordering for one sort column, since datetimes and strings cannot be negated."""

    __slots__ = ("key",)

    def __init__(self, key: tuple) -> None:
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.key == other.key

    def __lt__(self, other: _Desc) -> bool:
        return other.key < self.key

    __hash__ = None  # type: ignore[assignment]


class OrderKey:
    """A compiled $order: a sort key for sorted(); `columns` is [(field, descending)]."""

    __slots__ = ("text", "columns", "fields")

    def __init__(self, text: str, columns: list[tuple[str, bool]]) -> None:
        self.text = text
        self.columns = tuple(columns)
        self.fields = frozenset(field for field, _ in columns)

    def __call__(self, record: dict) -> tuple:
        parts: list[Any] = []
        for field, descending in self.columns:
            value = _get(record, field)
            key = NULL_KEY if value is None else value.key
            parts.append(_Desc(key) if descending else key)
        return tuple(parts)


def parse_where(text: str) -> Predicate:
    parser = _Parser(text, "$where")
    if not parser.tokens:
        raise parser.error("empty condition", 0)
    cond = parser.where()
    parser.finish()
    return Predicate(text, frozenset(parser.fields), cond.node, cond.floors)


def parse_order(text: str) -> OrderKey:
    parser = _Parser(text, "$order")
    if not parser.tokens:
        raise parser.error("empty ordering", 0)
    return OrderKey(text, parser.order())


class DailyCount(NamedTuple):
    """A compiled count by day: `$select=date_trunc_ymd(<field>) [AS day], count(*) [AS records]`
    with `$group` naming the day. The only aggregate the replay answers: the one a
    reconciliation asks (ingestion/sources/socrata/client.py)."""

    field: str
    day_name: str
    count_name: str
    descending: bool


_TRUNC = "date_trunc_ymd"


def parse_daily_count(select: str, group: str, order: str | None) -> DailyCount:
    """Compile a count by day of one timestamp field; anything else is refused."""
    parser = _Parser(select, "$select")
    items: list[tuple[str, str | None, str]] = []  # (function, field, name)
    while True:
        items.append(parser.select_item())
        token = parser.take()
        if token is None:
            break
        if token.value != ",":
            raise parser.error(f"expected ',' or end of input, found {token.value!r}", token.pos)
    days = [item for item in items if item[0] == _TRUNC]
    counts = [item for item in items if item[0] == "count"]
    if len(days) != 1 or len(counts) != 1 or len(items) != 2:
        raise SoqlError(
            f"$select: the replay answers one aggregate, {_TRUNC}(<field>) with count(*); got {select!r}"
        )
    _, field, day_name = days[0]
    grouping = _Parser(group, "$group")
    token = grouping.peek()
    if token is not None and token.value.lower() == _TRUNC:
        _, grouped, _ = grouping.select_item()
        matches = grouped == field
    else:
        matches = grouping.field() == day_name
        grouping.fields.discard(day_name)
    grouping.finish()
    if not matches:
        raise SoqlError(f"$group: {group!r} does not group by the selected {day_name!r}")
    descending = False
    if order:
        ordering = _Parser(order, "$order")
        terms = ordering.order()
        if [name for name, _ in terms] != [day_name]:
            raise SoqlError(f"$order: an aggregate is ordered by {day_name!r} only, got {order!r}")
        descending = terms[0][1]
    assert field is not None  # a date_trunc_ymd item always names its field
    return DailyCount(field, day_name, counts[0][2], descending)


def is_field_name(name: str) -> bool:
    return _FIELD.fullmatch(name) is not None and name.upper() not in _KEYWORDS


def quote(value: str) -> str:
    """Quote a string as a SoQL literal."""
    return "'" + value.replace("'", "''") + "'"
