"""Deterministic synthetic 311 feeds for demos and tests.

Nothing here is real 311 data: the generators draw records from fixed
distributions with a seeded random generator, so the same arguments always
produce the same bytes.
"""

from __future__ import annotations

from ingestion.synthetic.nyc import SyntheticSummary, generate_nyc

# Set to "1" by `civic311 demo` and `civic311 dev` over the demo's generated feed:
# what is drawn from the warehouse (the maps) then says the data is synthetic.
SYNTHETIC_ENV = "CIVIC311_SYNTHETIC_DATA"

__all__ = ["SYNTHETIC_ENV", "SyntheticSummary", "generate_nyc"]
