"""Every real sample in ../shared/data/311 loaded into one warehouse, the way a
city's feed would deliver it: API recordings through the replay server and the
adapter, portal exports through the export loader."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ingestion.geography.boundaries import MIRROR_ENV, load_layer, write_layers
from ingestion.pipeline import load_source
from ingestion.registry import Registry, load_registry
from ingestion.sources import source_for
from ingestion.sources.exports import load_export
from tests.helpers.data import NYC_SODA_SAMPLE, REPO, SHARED_DATA
from tooling.replay import ReplayServer
from tooling.replay.catalog import mount_city
from tooling.replay.seeclickfix import SeeClickFixApi, load_scf_issues

D = SHARED_DATA
# city -> (recorded API files, distinct requests they hold)
FEEDS = {
    "nyc": ([NYC_SODA_SAMPLE], 1000),
    "sf": ([D / "sf" / "sf311_vw6y-z8j6_soda_records_2021-07-10_1771.json"], 1771),
    "la": ([D / "la" / "myla311_2017_subset.csv"], 9999),
    "boston": ([D / "boston" / "boston311_2022_jan_100.csv"], 100),
    "boston_open311": (sorted((D / "boston" / "open311").glob("*.json")), 4112),
    "chicago_open311": (
        [D / "open311" / "chicago_2014_requests_extended.json", D / "open311" / "chicago_2014_requests.json"],
        52,
    ),
    "bloomington": ([D / "open311" / "bloomington_2012_requests.json"], 21),
    "toronto": ([D / "open311" / "toronto_2018_requests.xml"], 2),
    "detroit": (None, 38),  # the Detroit issues of the nationwide SeeClickFix pages
    "jersey_city": ([D / "seeclickfix" / "scf_v2_issues_jerseycity_page1_envelope.json"], 20),
    "chicago": (None, 3),  # no recorded v6vf-nfxy rows: the three CHICAGO_ROWS below
}
# Portal exports of the same cities (the older schemas the APIs no longer serve).
EXPORTS = {
    "nyc": [
        D / "nyc" / "nyc311_mixed_2010_2020_sample.csv",
        D / "nyc" / "nyc311_export_2016_jun_bk_cb06_noise.csv",
    ],
    "sf": [
        D / "sf" / "sf311_cases_sample_10000_nogeo.csv",
        D / "sf" / "sf311_vw6y-z8j6_pandas_dump_2023-11-28.csv",
    ],
}
START, END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)

# The marts over the samples are built as of one fixed instant, after every sample date.
SAMPLES_AS_OF = "2026-11-01 00:00:00+00"


# No recorded v6vf-nfxy rows exist in ../shared, so these three are written here
# in the dataset's shape (field names and value forms as SODA returns them) to
# pin down the mapping of Chicago's duplicate flags, departments and statuses, and
# the community area the city reports (the point's, in the 2013 boundaries).
CHICAGO_ROWS = [
    {
        "sr_number": "SR24-00000001",
        "sr_type": "Pothole in Street Complaint",
        "sr_short_code": "PHF",
        "created_department": "311 City Services",
        "owner_department": "CDOT - Department of Transportation",
        "status": "Completed",
        "origin": "Phone Call",
        "created_date": "2024-03-10T01:30:00.000",
        "last_modified_date": "2024-03-12T09:00:00.000",
        "closed_date": "2024-03-12T09:00:00.000",
        "street_address": "1200 W 81ST ST",
        "zip_code": "60620",
        "duplicate": False,
        "legacy_record": False,
        "community_area": "71",  # Auburn Gresham
        "latitude": "41.74685764",
        "longitude": "-87.65364015",
    },
    {
        "sr_number": "SR24-00000002",
        "sr_type": "Pothole in Street Complaint",
        "sr_short_code": "PHF",
        "created_department": "311 City Services",
        "owner_department": "CDOT - Department of Transportation",
        "status": "Completed",
        "origin": "Internet",
        "created_date": "2024-03-10T03:30:00.000",
        "last_modified_date": "2024-03-10T04:00:00.000",
        "closed_date": "2024-03-10T04:00:00.000",
        "street_address": "1200 W 81ST ST",
        "zip_code": "60620",
        "duplicate": True,
        "parent_sr_number": "SR24-00000001",
        "legacy_record": False,
        "community_area": "71",
    },
    {
        "sr_number": "SR24-00000003",
        "sr_type": "Aircraft Noise Complaint",
        "created_department": "311 City Services",
        "owner_department": "Aviation",
        "status": "Canceled",
        "origin": "Mobile Device",
        "created_date": "2024-11-03T01:30:00.000",
        "last_modified_date": "2024-11-03T02:00:00.000",
        "legacy_record": True,
        "latitude": "0",
        "longitude": "0",
    },
]


def detroit_issues() -> list[dict]:
    """The Detroit issues of the nationwide SeeClickFix pages: those with its address."""
    pages = sorted((D / "seeclickfix").glob("scf_v2_issues_nationwide_*.json"))
    return [i for p in pages for i in load_scf_issues(p) if "Detroit" in (i.get("address") or "")]


def replay_registry(tmp_path: Path) -> Registry:
    """The packaged registry without pacing: the replay sets no rate limit, and the
    pacing the live cities need would only slow the tests."""
    raw = yaml.safe_load((REPO / "ingestion" / "cities.yaml").read_text())
    for city in raw["cities"]:
        city["source"]["requests_per_minute"] = None
    path = tmp_path / "cities.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_registry(path)


def load_api_samples(registry: Registry, warehouse: Path) -> None:
    """Each city's recorded API responses, served in its own protocol and loaded by its adapter."""
    assert set(FEEDS) == set(registry.ids)
    with ReplayServer() as server:
        for city in registry.cities:
            files, _ = FEEDS[city.id]
            if city.id == "chicago":
                server.add_dataset("v6vf-nfxy", CHICAGO_ROWS, id_field="sr_number", prefix="/chicago")
            elif city.id == "detroit":
                server.mount("/detroit", SeeClickFixApi({"detroit": detroit_issues()}))
            else:
                mount_city(server, city, files)
            source = source_for(city, START, END, base_url=city.base_url(server.url), backoff_seconds=0.01)
            load_source(city, source, warehouse).raise_on_failed_jobs()


def load_export_samples(registry: Registry, warehouse: Path) -> None:
    for city_id, files in EXPORTS.items():
        for path in files:
            load_export(registry.city(city_id), path, warehouse)


def load_boundaries(registry: Registry, warehouse: Path, cache: Path) -> dict[str, dict[str, str]]:
    """Every city's declared boundary layers into the geography tables, read from the
    shared mirror of the boundary and population files (no network). Returns each
    city's outcome per layer (new, changed, unchanged, removed)."""
    previous = os.environ.get(MIRROR_ENV)
    os.environ[MIRROR_ENV] = str(SHARED_DATA)
    try:
        return {
            city.id: write_layers(
                warehouse, city.id, [load_layer(city, layer, cache_dir=cache) for layer in city.boundaries]
            )
            for city in registry.cities
            if city.boundaries
        }
    finally:
        if previous is None:
            del os.environ[MIRROR_ENV]
        else:
            os.environ[MIRROR_ENV] = previous
