"""dlt sources, one package per protocol, shared by every city that speaks it.

`source_for(city, ...)` picks the adapter from the registry entry's protocol.
Nothing here imports Dagster: each source also runs from a plain script.
"""

from __future__ import annotations

from datetime import datetime

import requests
from dlt.sources import DltSource

from ingestion.registry import City


def source_for(
    city: City,
    start: datetime | None = None,
    end: datetime | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    backoff_seconds: float = 1.0,
) -> DltSource:
    """The dlt source of the city's protocol, reading the window [start, end) when given."""
    protocol = city.source.protocol
    if protocol == "socrata":
        from ingestion.sources.socrata import socrata_source as factory
    elif protocol == "open311":
        from ingestion.sources.open311 import open311_source as factory
    elif protocol == "seeclickfix":
        from ingestion.sources.seeclickfix import seeclickfix_source as factory
    elif protocol == "ckan":
        from ingestion.sources.ckan import ckan_source as factory
    else:  # the registry's discriminated union makes this unreachable
        raise ValueError(f"{city.id}: no adapter for protocol {protocol!r}")
    return factory(
        city, start=start, end=end, base_url=base_url, session=session, backoff_seconds=backoff_seconds
    )
