"""Which known layout an export file is in, from its header alone.

A city's registry entry lists the layouts its exports come in (`export.schemas`):
the portal's current and older exports, the API's own names, third-party copies
such as BigQuery's. A file is read with the layout that knows every one of its
columns and has its id and request-time columns; a file that fits none is
refused with the closest layout and the columns that differ, never loaded on a
guess. Socrata's own fields (":id", ":@computed_region_…") and untitled columns
(R's row index) belong to no layout and never decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingestion.redact import RedactedError
from ingestion.registry import City, ExportSchema

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def column_name(title: str) -> str:
    """A column title reduced the way the SODA API names its fields: "Created Date" ->
    created_date, "Status.Notes" -> status_notes; Socrata's own ":" fields as they are."""
    if title.startswith(":"):
        return title
    return _NON_ALNUM.sub("_", title.lower()).strip("_")


def decides(column: str) -> bool:
    """Whether a column takes part in choosing the layout."""
    return bool(column) and not column.startswith(":")


class SchemaMismatch(RedactedError, ValueError):
    """No layout of the city fits the file; the message says which came closest and how."""


@dataclass(frozen=True)
class Match:
    schema: ExportSchema
    # Columns of the layout the file does not have (a subset export, or SODA JSON
    # leaving out fields that are empty in every record).
    absent: tuple[str, ...]


def match_schema(city: City, columns: Iterable[str]) -> Match:
    """The city's layout for a file with these (reduced) columns."""
    assert city.export is not None
    found = [c for c in dict.fromkeys(columns) if decides(c)]
    keys = (city.source.id_field, city.export.requested_at_field)
    fits = []
    for schema in city.export.schemas:
        known = set(schema.columns)
        fields = {schema.field(c) for c in found if c in known}
        if set(found) <= known and all(k in fields for k in keys):
            fits.append(Match(schema, tuple(c for c in schema.columns if c not in set(found))))
    if not fits:
        raise SchemaMismatch(_closest(city, found, keys))
    fits.sort(key=lambda m: len(m.absent))
    best = fits[0]
    for other in fits[1:]:
        if len(other.absent) == len(best.absent) and any(
            best.schema.field(c) != other.schema.field(c) for c in found
        ):
            raise SchemaMismatch(
                f"fits two layouts that read its columns differently ({best.schema.name!r} and "
                f"{other.schema.name!r}); give the layouts a column that tells them apart"
            )
    return best


def _closest(city: City, found: list[str], keys: tuple[str, ...]) -> str:
    def overlap(schema: ExportSchema) -> float:
        union = set(found) | set(schema.columns)
        return len(set(found) & set(schema.columns)) / len(union) if union else 0.0

    schema = max(city.export.schemas, key=overlap)
    unknown = [c for c in found if c not in schema.columns]
    fields = {schema.field(c) for c in found if c in schema.columns}
    lacking = [c for c in schema.columns if schema.field(c) in keys and schema.field(c) not in fields]
    differences = []
    if unknown:
        differences.append(f"columns {schema.name!r} does not have: {_listed(unknown)}")
    if lacking:
        differences.append(f"columns it needs and the file lacks: {_listed(lacking)}")
    known = ", ".join(s.name for s in city.export.schemas)
    return (
        f"matches none of {city.name}'s known export layouts ({known}); the closest is "
        f"{schema.name!r}, with {'; '.join(differences)}"
    )


def _listed(columns: list[str], shown: int = 12) -> str:
    text = ", ".join(columns[:shown])
    return text + (f" and {len(columns) - shown} more" if len(columns) > shown else "")
