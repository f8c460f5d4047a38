"""DuckDB's spatial extension and H3 cells on a DuckDB connection, offline.

The extension ships as a PyPI package (duckdb-extension-spatial), so it is
loaded from that package's file rather than installed from the internet. H3
has no offline DuckDB extension; `h3_cell(latitude, longitude, resolution)` is
a vectorised Python function over the `h3` package instead."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import duckdb
import h3
import pyarrow as pa


def spatial_extension_file() -> Path:
    version = duckdb.__version__
    base = Path(str(importlib.resources.files("duckdb_extension_spatial"))) / "extensions"
    return base / f"v{version}" / "spatial.duckdb_extension"


def _h3_cells(latitudes: pa.Array, longitudes: pa.Array, resolutions: pa.Array) -> pa.Array:
    cells = [
        h3.latlng_to_cell(lat, lng, res) if lat is not None and lng is not None and res is not None else None
        for lat, lng, res in zip(
            latitudes.to_pylist(), longitudes.to_pylist(), resolutions.to_pylist(), strict=True
        )
    ]
    return pa.array(cells, type=pa.string())


def configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """LOAD spatial and register h3_cell on `con` (idempotent)."""
    con.execute(f"LOAD '{spatial_extension_file()}'")
    exists = con.execute(
        "select count(*) from duckdb_functions() where function_name = 'h3_cell'"
    ).fetchone()[0]
    if not exists:
        con.create_function(
            "h3_cell",
            _h3_cells,
            [duckdb.sqltype("DOUBLE"), duckdb.sqltype("DOUBLE"), duckdb.sqltype("INTEGER")],
            duckdb.sqltype("VARCHAR"),
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
    return con
