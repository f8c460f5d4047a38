"""Local emulation of a Socrata SODA endpoint for tests and the demo."""

from ingestion.replay.records import load_records
from ingestion.replay.server import Fault, FaultPlan, ReplayServer, serve_forever

__all__ = ["Fault", "FaultPlan", "ReplayServer", "load_records", "serve_forever"]
