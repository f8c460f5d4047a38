"""One writer at a time: an OS lock on a file beside the warehouse.

DuckDB lets one process open a database file for writing, and a second opener
fails at once with a lock error. Every civic311 step that opens the warehouse
(`civic311 load`, the Dagster steps of the `duckdb_warehouse` pool, dbt run by
Dagster, the publish) first takes this lock, so a second writer waits its turn
instead of failing half-way. The lock is a `flock` (the `filelock` library) on
`<warehouse>.lock`: the kernel drops it when its holder dies, even by SIGKILL, so
a killed run never leaves the warehouse locked. The holder writes who it is into
the file, and a waiter shows that line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger("civic311.lock")


class WarehouseBusy(RuntimeError):
    """Another process held the warehouse for longer than the caller would wait."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def holder(warehouse: Path) -> str:
    """Who holds the lock, as its holder wrote it: pid, command and since when."""
    try:
        said = json.loads(lock_path(warehouse).read_text() or "{}")
    except (OSError, ValueError):
        said = {}
    if not said.get("pid"):
        return "another process (it has not said who yet)"
    return f"pid {said['pid']} ({said.get('command', '?')}) since {said.get('since', '?')}"


def _this_process(command: str | None) -> str:
    return command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200]


@contextmanager
def warehouse_lock(
    warehouse: Path,
    *,
    wait: float | None = None,
    command: str | None = None,
    say: Callable[[str], None] = log.warning,
) -> Iterator[None]:
    """Hold the warehouse's writer lock for the block.

    A holder in another process makes this wait, after saying who it is; `wait`
    bounds the wait in seconds (None waits as long as it takes), after which
    `WarehouseBusy` is raised. Nested use in one thread is reentrant.
    """
    warehouse = Path(warehouse).resolve()
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, is_singleton=True)
    if not lock.is_locked:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            started = time.monotonic()
            if wait != 0:
                bound = "as long as it takes" if wait is None else f"up to {wait:g} s"
                say(f"{warehouse} is being written by {holder(warehouse)}; waiting {bound}")
            try:
                lock.acquire(timeout=-1 if wait is None else wait)
            except Timeout:
                raise WarehouseBusy(
                    f"{warehouse} is being written by {holder(warehouse)}; gave up after "
                    f"{time.monotonic() - started:.0f} s. Run again when it has finished, or give "
                    "--wait SECONDS to wait longer."
                ) from None
        _write_holder(path, _this_process(command))
    else:
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _write_holder(path: Path, command: str) -> None:
    """Say who holds the lock, in the lock file itself (flock is advisory, so writing it is fine)."""
    since = datetime.now(UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps({"pid": os.getpid(), "command": command, "since": since}) + "\n")
