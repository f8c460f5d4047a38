"""Deterministic synthetic 311 feeds for demos and tests.

Nothing here is real 311 data: the generators draw records from fixed
distributions with a seeded random generator, so the same arguments always
produce the same bytes.
"""

from __future__ import annotations

from tooling.synthetic.nyc import SyntheticSummary, generate_nyc

__all__ = ["SyntheticSummary", "generate_nyc"]
