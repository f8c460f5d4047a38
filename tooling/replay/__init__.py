"""Local emulation of the city APIs (Socrata, Open311, SeeClickFix, CKAN) for tests and the demo."""

from tooling.replay.records import load_records
from tooling.replay.server import Fault, FaultPlan, RateLimit, ReplayServer

__all__ = ["Fault", "FaultPlan", "RateLimit", "ReplayServer", "load_records"]
