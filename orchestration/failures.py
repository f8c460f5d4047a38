"""The common failures of a command, each said in one line: what happened, which
path, and the fix. The `civic311` command prints that line and exits 2; anything
not recognised here keeps its traceback, as a bug should."""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from ingestion.registry import RegistryError
from ingestion.warehouse_lock import WarehouseBusy
from orchestration.alerts.subscriptions import AlertsError

_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}
_QUOTED_PATH = re.compile(r'"(/[^"]+)"')


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, and the inner
    exceptions that dlt keeps as attributes."""
    seen: set[int] = set()
    queue: list[BaseException | None] = [exc]
    while queue:
        current = queue.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, name, None) for name in ("exception", "inner_exception")]
        queue += [current.__cause__, current.__context__, *(e for e in inner if isinstance(e, BaseException))]


def _full(path: object) -> str:
    return (
        f"{path}: the disk is full (no space left on device). Free space there, or set "
        "CIVIC311_WAREHOUSE to a disk with room, and run again; the next load finishes what this one left."
    )


def _read_only(path: object, why: str) -> str:
    return (
        f"{path}: cannot write here ({why}). Make the warehouse file and its folder writable "
        "by this user, or set CIVIC311_WAREHOUSE to a writable place."
    )


def _duckdb_line(exc: duckdb.Error) -> str | None:
    text = str(exc)
    found = _QUOTED_PATH.search(text)
    path = found.group(1) if found else _warehouse()
    if "newer version of DuckDB" in text or "Trying to read a database file with version number" in text:
        return (
            f"{path}: the file was written by a newer DuckDB than this civic311's {duckdb.__version__}, "
            "which cannot read it. Point CIVIC311_WAREHOUSE at a warehouse written by this version "
            "(or a new path, and load again); the newer file is left as it is."
        )
    if "No space left on device" in text:
        return _full(path)
    for why in ("Permission denied", "Operation not permitted", "Read-only file system"):
        if why in text:
            return _read_only(path, why.lower())
    if "Could not set lock on file" in text:
        return (
            f"{path}: another program has the warehouse open for writing (a SQL client, or a "
            "process that does not take civic311's lock). Close it and run again; BI tools "
            "should read the published serving file instead."
        )
    return None


def _warehouse() -> Path:
    from ingestion.pipeline import warehouse_path

    return warehouse_path()


def failure_line(exc: BaseException) -> str | None:
    """One line for a failure a user can fix, or None for anything else."""
    for cause in _causes(exc):
        if isinstance(cause, (WarehouseBusy, RegistryError, AlertsError)):
            return str(cause)
        if isinstance(cause, OSError) and cause.errno in _FULL:
            return _full(cause.filename or _warehouse())
        if isinstance(cause, OSError) and cause.errno in _READ_ONLY:
            return _read_only(cause.filename or _warehouse(), (cause.strerror or "permission denied").lower())
        if isinstance(cause, duckdb.Error) and (line := _duckdb_line(cause)):
            return line
    return None
