"""Where the real recorded city data is (../shared/data/311, never copied into this
repository), and the NYC SODA sample most tests replay."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from tooling.replay.records import derive_updated_at

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data" / "311"
NYC_SODA_SAMPLE = SHARED_DATA / "nyc" / "nyc311_soda_fhrw-4uyv_sample.json"
# The UTC days on which `nyc_soda_sample`'s requests last changed (2012-11-15 09:24 to
# 11-21 02:18): a run over these daily partitions serves every request. No wider:
# Dagster stores events for every asset and partition of a run, and those dominate
# the time of a ranged run.
NYC_SODA_SAMPLE_DAYS = (date(2012, 11, 15), date(2012, 11, 21))
# The sample's one request made before November (2012-06-26), closed on 2012-11-20.
NYC_SODA_SAMPLE_JUNE_REQUEST = "24445939"


def nyc_soda_sample() -> list[dict]:
    """The NYC SODA sample, for a replay that stamps :updated_at from created_date. The
    June request carries its closing day instead, as the portal stamps a row when it
    changes: the sample's days are then 7, not 149, and that request arrives in a later
    window than its month, as a late closing does."""
    records = json.loads(NYC_SODA_SAMPLE.read_text())
    for record in records:
        if record["unique_key"] == NYC_SODA_SAMPLE_JUNE_REQUEST:
            record[":updated_at"] = derive_updated_at(record, ("closed_date",))
    return records
