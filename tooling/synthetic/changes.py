"""SYNTHETIC portal changes for the demo: what a city's next day could bring to
requests it has already published. Some open requests close, a few closed ones
reopen, and some are handed from one agency to another. Nothing here is real:
the choices come from a seeded random generator, so the same arguments always
give the same changes."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
SYNTHETIC_NOTE = "SYNTHETIC: changed by the civic311 demo's next-day portal changes."
# Plausible hand-offs between NYC agencies (which one takes over from which).
HANDOFFS = {
    "NYPD": ("DEP", "Department of Environmental Protection"),
    "DEP": ("DOT", "Department of Transportation"),
    "DOT": ("DEP", "Department of Environmental Protection"),
    "HPD": ("DOB", "Department of Buildings"),
    "DSNY": ("DOHMH", "Department of Health and Mental Hygiene"),
    "DOHMH": ("DSNY", "Department of Sanitation"),
    "DPR": ("DOT", "Department of Transportation"),
    "DHS": ("NYPD", "New York City Police Department"),
}


def _stamps(day: date, count: int, rng: random.Random) -> list[datetime]:
    """`count` sorted local wall times within the working hours of `day`."""
    start = datetime(day.year, day.month, day.day, 9, tzinfo=NEW_YORK)
    return sorted(start + timedelta(seconds=rng.randrange(8 * 3600)) for _ in range(count))


def _floating(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000")


def _system(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def next_day_changes(
    records: list[dict],
    day: date,
    seed: int = 311,
    close_share: float = 0.05,
    reopen_share: float = 0.005,
    handoff_share: float = 0.02,
) -> list[dict]:
    """Updates (Socrata field names, with the portal's `:updated_at`) to the requests
    made before `day`, all stamped during `day`: closings of open requests,
    reopenings of closed ones and hand-offs of open ones to another agency."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible demo, not a secret
    before = [r for r in records if r.get("created_date", "") < day.isoformat()]
    still_open = [r for r in before if not r.get("closed_date")]
    closed = [r for r in before if r.get("closed_date")]
    movable = [r for r in still_open if r.get("agency") in HANDOFFS]

    to_close = rng.sample(still_open, int(len(still_open) * close_share))
    to_reopen = rng.sample(closed, int(len(closed) * reopen_share))
    taken = {r["unique_key"] for r in to_close + to_reopen}
    to_hand_off = [
        r for r in rng.sample(movable, int(len(movable) * handoff_share)) if r["unique_key"] not in taken
    ]

    moments = iter(_stamps(day, len(to_close) + len(to_reopen) + len(to_hand_off), rng))
    updates = []
    for record in to_close:
        moment = next(moments)
        updates.append(
            {
                "unique_key": record["unique_key"],
                "status": "Closed",
                "closed_date": _floating(moment),
                "resolution_action_updated_date": _floating(moment),
                "resolution_description": SYNTHETIC_NOTE,
                ":updated_at": _system(moment),
            }
        )
    for record in to_reopen:
        moment = next(moments)
        updates.append(
            {
                "unique_key": record["unique_key"],
                "status": "Open",
                "closed_date": "",
                "resolution_action_updated_date": _floating(moment),
                "resolution_description": SYNTHETIC_NOTE,
                ":updated_at": _system(moment),
            }
        )
    for record in to_hand_off:
        moment = next(moments)
        agency, agency_name = HANDOFFS[record["agency"]]
        updates.append(
            {
                "unique_key": record["unique_key"],
                "agency": agency,
                "agency_name": agency_name,
                "resolution_action_updated_date": _floating(moment),
                ":updated_at": _system(moment),
            }
        )
    return updates
