"""`alerts.sent`: every alert civic311 has sent, once, and every delivery attempt.

The tables live in their own DuckDB file beside the working warehouse,
`alerts.duckdb` (`$CIVIC311_ALERTS_DB` overrides it), whose catalog is `alerts`: so
`alerts.sent` and `alerts.deliveries` are the tables' names in any session that
attaches it under that name. A file of its own, because the alerts on published data
must not wait for a refresh that holds the warehouse's one writer, and `civic311
alerts list` must not either. Writers take the file's own OS lock.

- `sent`: one row per (subscription, item): a request, an area-week, an area-month,
  a breached request. Its key is unique, so an item never alerts twice; the row keeps
  the payload sent and the message it went in.
- `messages`: one row per message (a subscription's new items of one evaluation), with
  the text sent and its attachment.
- `deliveries`: one row per attempt series at a channel: delivered or failed, with
  the attempts made and the error. A message whose channel has no delivered row is
  delivered again on the next evaluation, never dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingestion.warehouse_lock import warehouse_lock

ALERTS_DB_ENV = "CIVIC311_ALERTS_DB"
ALERTS_DB_NAME = "alerts.duckdb"

SCHEMA = """
create table if not exists alerts.sent (
    alert_key varchar primary key,
    subscription varchar not null,
    kind varchar not null,
    city_id varchar not null,
    item_key varchar not null,
    message_id varchar not null,
    payload json not null,
    sent_at timestamptz not null
);
create table if not exists alerts.messages (
    message_id varchar primary key,
    subscription varchar not null,
    kind varchar not null,
    title varchar not null,
    body json not null,
    attachment varchar,
    items integer not null,
    created_at timestamptz not null
);
create table if not exists alerts.deliveries (
    message_id varchar not null,
    channel varchar not null,
    outcome varchar not null,
    attempts integer not null,
    error varchar,
    attempted_at timestamptz not null
);
"""


def alerts_db_path(warehouse: Path) -> Path:
    return Path(os.environ.get(ALERTS_DB_ENV) or warehouse.parent / ALERTS_DB_NAME).resolve()


@contextmanager
def alerts_db(path: Path, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A session with the alerts file attached as `alerts` (created on first write),
    holding its lock while writing."""
    if not write and not path.exists():
        con = duckdb.connect()
        try:
            con.execute("attach ':memory:' as alerts")
            con.execute(SCHEMA)
            yield con
        finally:
            con.close()
        return
    with warehouse_lock(path, command="civic311 alerts") if write else nullcontext():
        con = duckdb.connect()
        try:
            con.execute(f"attach '{path}' as alerts" + ("" if write else " (read_only)"))
            if write:
                con.execute(SCHEMA)
            yield con
        finally:
            con.close()


@dataclass(frozen=True)
class Item:
    """One thing a subscription alerts about, once: its key within the subscription,
    its city and what the message says of it."""

    key: str
    city_id: str
    payload: dict


def unsent(con: duckdb.DuckDBPyConnection, subscription: str, items: Sequence[Item]) -> list[Item]:
    """The items the subscription has not alerted about yet."""
    if not items:
        return []
    keys = [f"{subscription}:{item.key}" for item in items]
    sent = {
        row[0]
        for row in con.execute("select alert_key from alerts.sent where alert_key in ?", [keys]).fetchall()
    }
    return [item for item, key in zip(items, keys, strict=True) if key not in sent]


def record_message(
    con: duckdb.DuckDBPyConnection,
    *,
    message_id: str,
    subscription: str,
    kind: str,
    title: str,
    body: dict,
    attachment: Path | None,
    items: Sequence[Item],
) -> None:
    """The message and its items, in one transaction, before any delivery: an item is
    recorded once whatever its deliveries do."""
    now = datetime.now(UTC)
    con.execute("begin")
    con.execute(
        "insert into alerts.messages values (?, ?, ?, ?, ?, ?, ?, ?)",
        [message_id, subscription, kind, title, json.dumps(body, default=str),
         str(attachment) if attachment else None, len(items), now],
    )  # fmt: skip
    con.executemany(
        "insert into alerts.sent values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [f"{subscription}:{item.key}", subscription, kind, item.city_id, item.key, message_id,
             json.dumps(item.payload, default=str), now]
            for item in items
        ],
    )  # fmt: skip
    con.execute("commit")


def record_delivery(
    con: duckdb.DuckDBPyConnection,
    message_id: str,
    channel: str,
    outcome: str,
    attempts: int,
    error: str | None,
) -> None:
    con.execute(
        "insert into alerts.deliveries values (?, ?, ?, ?, ?, ?)",
        [message_id, channel, outcome, attempts, error, datetime.now(UTC)],
    )


def undelivered(con: duckdb.DuckDBPyConnection, subscription: str, channels: Sequence[str]) -> list[dict]:
    """The subscription's messages with a channel that has not delivered them yet: each
    message once, with those channels."""
    if not channels:
        return []
    rows = con.execute(
        """
        select m.message_id, m.kind, m.title, m.body, m.attachment, c.channel
        from alerts.messages as m
        cross join (select unnest(?::varchar[]) as channel) as c
        where m.subscription = ?
            and not exists (
                select 1 from alerts.deliveries as d
                where d.message_id = m.message_id and d.channel = c.channel and d.outcome = 'delivered'
            )
        order by m.created_at, c.channel
        """,
        [list(channels), subscription],
    ).fetchall()
    pending: dict[str, dict] = {}
    for message_id, kind, title, body, attachment, channel in rows:
        entry = pending.setdefault(
            message_id,
            {
                "message_id": message_id,
                "kind": kind,
                "title": title,
                "body": json.loads(body),
                "attachment": Path(attachment) if attachment else None,
                "channels": [],
            },
        )
        entry["channels"].append(channel)
    return list(pending.values())


def recent(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict]:
    """The latest messages, newest first, each with its items and each channel's latest outcome."""
    rows = con.execute(
        """
        select m.message_id, m.subscription, m.kind, m.title, m.items, m.created_at,
            list(struct_pack(channel := d.channel, outcome := d.outcome, attempts := d.attempts,
                             error := d.error) order by d.attempted_at)
                filter (where d.channel is not null) as deliveries
        from alerts.messages as m
        left join alerts.deliveries as d using (message_id)
        group by all
        order by m.created_at desc
        limit ?
        """,
        [limit],
    ).fetchall()
    found = []
    for message_id, subscription, kind, title, items, created_at, deliveries in rows:
        latest: dict[str, dict] = {}
        for delivery in deliveries or []:
            latest[delivery["channel"]] = delivery
        found.append(
            {
                "message_id": message_id,
                "subscription": subscription,
                "kind": kind,
                "title": title,
                "items": items,
                "created_at": created_at,
                "deliveries": [latest[channel] for channel in sorted(latest)],
            }
        )
    return found
