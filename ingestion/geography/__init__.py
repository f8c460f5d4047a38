"""Boundary layers: the areas requests are joined to. Knows nothing about Dagster."""

from ingestion.geography.layers import WGS84, LayerError, normalise_layer, read_layer

__all__ = ["WGS84", "LayerError", "normalise_layer", "read_layer"]
