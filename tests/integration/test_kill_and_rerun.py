"""A load killed at any point, then rerun, leaves the same table as one clean run.

Each load runs in a child process (tests/helpers/killable_load.py) that
SIGKILLs itself at one of six points inside dlt's extract, normalize and load
steps. The rerun must finish what the killed run left behind and load the
window again; the table is compared with a clean run by a hash of its sorted
rows (dlt's load ids and civic311's load time excluded).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingestion.registry import load_registry
from tests.helpers.data import NYC_SODA_SAMPLE, REPO, SHARED_DATA
from tests.helpers.killable_load import KILL_POINTS
from tests.helpers.registry import write_registry
from tests.helpers.warehouse import dataset_hash
from tooling.replay import ReplayServer
from tooling.replay.ckan import CkanApi, load_ckan_records
from tooling.replay.open311 import Open311Api, load_open311_records
from tooling.replay.seeclickfix import SeeClickFixApi, load_scf_issues

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    """One protocol's feed: a registry city (with some source settings changed), and
    the replay serving its records."""

    city_id: str
    overrides: dict
    mount: Callable[[ReplayServer], None]
    start: str
    end: str
    file: Path | None = None  # an export file, loaded by `civic311 load` rather than from the replay
    table: str = "service_requests"


def _socrata() -> Case:
    records = json.loads(NYC_SODA_SAMPLE.read_text())

    def mount(server: ReplayServer) -> None:
        server.add_dataset(
            "fhrw-4uyv", records, id_field="unique_key", updated_at_fields=("created_date",), prefix="/nyc"
        )
        server.add_dataset("erm2-nwe9", [], id_field="unique_key", prefix="/nyc")

    return Case("nyc", {"page_size": 200}, mount, "2012-06-01T00:00:00+00:00", "2012-12-01T00:00:00+00:00")


def _seeclickfix() -> Case:
    folder = SHARED_DATA / "seeclickfix"
    issues = [
        issue
        for name in (
            "scf_v2_issues_nationwide_2024-08-31_400.json",
            "scf_v2_issues_nationwide_2024-08-30_100.json",
        )
        for issue in load_scf_issues(folder / name)
    ]
    detroit = [i for i in issues if "Detroit" in (i.get("address") or "")]

    def mount(server: ReplayServer) -> None:
        server.mount("/detroit", SeeClickFixApi({"detroit": detroit}))

    overrides = {"per_page": 10, "requests_per_minute": 6000}
    return Case("detroit", overrides, mount, "2024-08-29T00:00:00+00:00", "2024-09-01T00:00:00+00:00")


def _ckan() -> Case:
    records = load_ckan_records(SHARED_DATA / "boston" / "boston311_2022_jan_100.csv")
    resources = load_registry().city("boston").source.resources_by_year

    def mount(server: ReplayServer) -> None:
        api = CkanApi({resources[2022]: records})
        # The window also re-reads 2021's resource: empty here, with the same columns.
        api.add_resource(resources[2021], [], fields=list(records[0]))
        server.mount("/boston", api)

    return Case("boston", {"page_size": 30}, mount, "2022-01-01T00:00:00+00:00", "2022-02-01T00:00:00+00:00")


def _open311() -> Case:
    # Boston's illegal-parking page: 1,000 requests over three months, one without an id.
    path = SHARED_DATA / "boston" / "open311" / "bos_open311_illegal-parking__responses--0-1000--aa.json"
    requests = load_open311_records(path)
    overrides = {"page_size": 250, "requests_per_minute": None}

    def mount(server: ReplayServer) -> None:
        server.mount("/boston_open311", Open311Api(requests, jurisdiction_id="cityofboston.gov"))

    return Case("boston_open311", overrides, mount, "2019-09-01T00:00:00+00:00", "2020-01-01T00:00:00+00:00")


def _export() -> Case:
    # LA's MyLA311 export: 9,999 requests, loaded whole from the file (no replay).
    return Case(
        "la",
        {},
        lambda server: None,
        "-",
        "-",
        file=SHARED_DATA / "la" / "myla311_2017_subset.csv",
        table="service_requests_export",
    )


CASES: dict[str, Callable[[], Case]] = {
    "export": _export,
    "socrata": _socrata,
    "open311": _open311,
    "seeclickfix": _seeclickfix,
    "ckan": _ckan,
}


@pytest.fixture(scope="module", params=sorted(CASES))
def feed(request, tmp_path_factory) -> Iterator[tuple[Case, Path, str]]:
    case = CASES[request.param]()
    folder = tmp_path_factory.mktemp(request.param)
    registry = folder / "cities.yaml"
    write_registry(registry, cities=(case.city_id,), **case.overrides)
    with ReplayServer() as server:
        case.mount(server)
        yield case, registry, server.url


def _load(feed, warehouse: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    case, registry, url = feed
    if case.file is not None:
        url = f"file:{case.file}"
    argv = [sys.executable, "-m", "tests.helpers.killable_load", str(registry), case.city_id]
    argv += [str(warehouse), url, case.start, case.end] + ([kill_at] if kill_at else [])
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)  # noqa: S603


@pytest.fixture(scope="module")
def clean(feed, tmp_path_factory) -> dict[str, tuple]:
    warehouse = tmp_path_factory.mktemp("clean") / "warehouse.duckdb"
    done = _load(feed, warehouse)
    assert done.returncode == 0, done.stderr[-3000:]
    return dataset_hash(warehouse, f"raw_{feed[0].city_id}")


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_killed_run_then_rerun_matches_a_clean_run(feed, clean, kill_at, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    killed = _load(feed, warehouse, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    rerun = _load(feed, warehouse)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert dataset_hash(warehouse, f"raw_{feed[0].city_id}") == clean
    assert clean[feed[0].table][0] > 0
