"""The replay serves the same bytes as before its storage was made compact (issue 18).

Each case serves real recorded NYC data or a small synthetic feed, asks a fixed set of
queries (keyset paging as the Socrata client pages, offsets, filters on system and
record fields, orders up and down, nulls) before and after inserts and updates, and
compares a digest of every response body with the one the replay served at commit
34fd2c0, when it kept every record as a dict (recorded by this test's own code there).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import requests

from ingestion.registry import load_registry
from tests.helpers.data import NYC_SODA_SAMPLE, SHARED_DATA, nyc_soda_sample
from tooling.replay.catalog import mount_city
from tooling.replay.records import new_row_id
from tooling.replay.server import ReplayServer
from tooling.synthetic import generate_nyc

NYC_CSV = SHARED_DATA / "nyc" / "nyc311_soda_erm2-nwe9_2024-04-16.csv"
SEEK = {"$select": ":*, *", "$order": ":updated_at, :id"}
PAGE = 700


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def served_pages(url: str, apply_changes: Callable[[list[dict], list[dict]], None]) -> dict[str, str]:
    """Digests of every response to the fixed queries, named by query."""
    pages: dict[str, str] = {}

    def get(name: str, params: dict) -> bytes:
        response = requests.get(url, params=params, timeout=60)
        assert response.status_code == 200, response.text
        pages[name] = digest(response.content)
        return response.content

    def seek(name: str, where: str | None = None) -> list[dict]:
        """Keyset pages, as the Socrata client reads a window."""
        rows: list[dict] = []
        after = None
        while True:
            clauses = [where] if where else []
            if after:
                at, row_id = after
                clauses.append(f"(:updated_at > '{at}' OR (:updated_at = '{at}' AND :id > '{row_id}'))")
            params = {**SEEK, "$limit": str(PAGE)} | ({"$where": " AND ".join(clauses)} if clauses else {})
            page = json.loads(get(f"{name}_{len(rows) // PAGE}", params))
            rows += page
            if len(page) < PAGE:
                return rows
            after = (page[-1][":updated_at"], page[-1][":id"])

    everything = seek("seek")
    assert len(everything) > PAGE  # more than one page, so paging is exercised
    low, high = (everything[len(everything) * k // 3][":updated_at"].removesuffix("Z") for k in (1, 2))
    seek("window", f":updated_at >= '{low}' AND :updated_at < '{high}'")
    get("default", {})
    get("all_system", {**SEEK, "$limit": "50000"})
    get("system_by_id", {"$select": ":*, *", "$limit": "300", "$offset": "100"})
    get("offset", {"$order": ":id", "$limit": "100", "$offset": "250"})
    get("offset_where", {"$where": "borough = 'BROOKLYN'", "$order": "created_date DESC", "$offset": "20"})
    get(
        "offset_where_next",
        {"$where": "borough = 'BROOKLYN'", "$order": "created_date DESC", "$offset": "40"},
    )
    get("simple_filter", {"borough": "QUEENS", "$limit": "5000"})
    get("numbers", {"$where": "latitude > 40.75 AND longitude < -73.9", "$order": "latitude, :id"})
    get(
        "nulls", {"$where": "closed_date IS NULL", "$order": "closed_date DESC, unique_key", "$limit": "5000"}
    )
    get("not", {"$select": ":*, *", "$where": "NOT (agency = 'NYPD')", "$order": ":created_at DESC, :id"})
    get("nested", {"$order": "location, :id", "$limit": "200"})
    get("nothing", {"$limit": "0"})
    get("none_match", {"$where": "agency = 'no such agency'"})

    first, middle, last = everything[0], everything[len(everything) // 2], everything[-1]
    apply_changes(
        [
            {"unique_key": "99000001", "created_date": "2026-11-02T00:00:00.000", "status": "Open"},
            {**middle, ":id": None, ":created_at": None, ":updated_at": None, "descriptor": "Copy"},
        ],
        [
            {"unique_key": first["unique_key"], "status": "Reopened", "closed_date": None},
            {"unique_key": last["unique_key"], "agency": "DSNY", ":updated_at": "2030-01-01T00:00:00.000Z"},
            {"unique_key": "99000002", "status": "Open"},  # matches no row: inserted
        ],
    )
    seek("changed_seek")
    get("changed_default", {})
    get("changed_where", {"$where": "status = 'Reopened' OR agency = 'DSNY'", "$select": ":*, *"})
    return pages


def mounted(tmp_path: Path, files: list[Path]) -> Callable[[], dict[str, str]]:
    def serve() -> dict[str, str]:
        city = load_registry().city("nyc")
        with ReplayServer() as server:
            mount_city(server, city, files)
            dataset_id = city.source.all_datasets[0].id
            url = f"{city.base_url(server.url)}/resource/{dataset_id}.json"
            return served_pages(url, server.dataset(dataset_id, "/nyc").apply_changes)

    return serve


def added(records: list[dict]) -> Callable[[], dict[str, str]]:
    def serve() -> dict[str, str]:
        with ReplayServer() as server:
            server.add_dataset("abcd-1234", records)
            return served_pages(
                f"{server.url}/resource/abcd-1234.json", server.dataset("abcd-1234").apply_changes
            )

    return serve


def explicit_ids() -> list[dict]:
    """The sample with ids given to some records, one of them the id the replay would
    derive for an earlier record: that record must get another."""
    records = nyc_soda_sample()
    records[900][":id"] = new_row_id("abcd-1234", records[3]["unique_key"], set())
    records[901][":id"] = "row-mine.0000-0001"
    records[902][":created_at"] = "2001-01-01T00:00:00.000Z"
    return records


def synthetic(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic_nyc.json"
    generate_nyc(path, requests=3000, days=30, end=date(2026, 11, 1), seed=311)
    return path


# Recorded at commit 34fd2c0 (every record kept as a dict); see the module docstring.
EXPECTED: dict[str, dict[str, str]] = {
    "nyc_json": {
        "seek_0": "3dcfb1a123e8d67d",
        "seek_1": "c780232cf4a9a463",
        "window_0": "2fae164fc99226b3",
        "default": "d2e4893f55607181",
        "all_system": "51e8f68056c4e5ac",
        "system_by_id": "b5db171eaeb9f85f",
        "offset": "65ac3bbaf2c2695a",
        "offset_where": "22c7b5dfc4dc1c85",
        "offset_where_next": "c958d8cf1f5cba4a",
        "simple_filter": "f219a85781cda4c1",
        "numbers": "267409601c3a7a40",
        "nulls": "1ed6c997e8197068",
        "not": "c144b1fa092bc8ee",
        "nested": "6f70e5c73d9e5372",
        "nothing": "4f53cda18c2baa0c",
        "none_match": "4f53cda18c2baa0c",
        "changed_seek_0": "64ddf91b4cd65de1",
        "changed_seek_1": "b14287b39caf06d3",
        "changed_default": "cace1cd877bca011",
        "changed_where": "8726888b6c8356ac",
    },
    "nyc_csv": {
        "seek_0": "8eddb222d0cb2aeb",
        "seek_1": "37039ed8fd1668db",
        "window_0": "594ce9ab469820ca",
        "default": "330ac8ad38237d43",
        "all_system": "55273b4e3161a507",
        "system_by_id": "6ed93d1dada0c446",
        "offset": "ba8d552e987c391d",
        "offset_where": "99e5ffc697d522d3",
        "offset_where_next": "eebbb39eef5f3856",
        "simple_filter": "ad483054f69f04a9",
        "numbers": "e609ac77c3cc7b56",
        "nulls": "fd9a05f26ddecb53",
        "not": "82daf672196c28cf",
        "nested": "180c8f9437eefa24",
        "nothing": "4f53cda18c2baa0c",
        "none_match": "4f53cda18c2baa0c",
        "changed_seek_0": "9333afb8a6c68dfc",
        "changed_seek_1": "5a54ac74c764f504",
        "changed_default": "233f3bad50cb55c2",
        "changed_where": "16a61ca32fb938bb",
    },
    "nyc_json_and_csv": {
        "seek_0": "3dcfb1a123e8d67d",
        "seek_1": "61a193ab93b495e2",
        "seek_2": "d7a83dca99dd9f2e",
        "window_0": "c3c6d4e3a210317e",
        "default": "a8af1a2f6868d003",
        "all_system": "78eb2c21f419e418",
        "system_by_id": "180cda7252d2e78a",
        "offset": "a00bbb0a9ea0b917",
        "offset_where": "4718ae84f5b018ef",
        "offset_where_next": "67b539ff3f81374b",
        "simple_filter": "f6c62ac7a6b8555a",
        "numbers": "98d205e0b00eb6b6",
        "nulls": "822f6fd28f2c4983",
        "not": "3e78951f0a95c9ca",
        "nested": "180c8f9437eefa24",
        "nothing": "4f53cda18c2baa0c",
        "none_match": "4f53cda18c2baa0c",
        "changed_seek_0": "64ddf91b4cd65de1",
        "changed_seek_1": "60bd8d58e1a581bc",
        "changed_seek_2": "2c27236673d7bfaf",
        "changed_default": "c518708824c3773e",
        "changed_where": "3163436d9b95a1d6",
    },
    "nyc_sample_list": {
        "seek_0": "9305eb1e3d52a168",
        "seek_1": "013cf76f73bada7c",
        "window_0": "8c740791077e6b01",
        "default": "a9fd602fda81499c",
        "all_system": "4881525a7a0adea1",
        "system_by_id": "53cb16cf20f6399c",
        "offset": "bcf8b7c2f71db3b6",
        "offset_where": "22c7b5dfc4dc1c85",
        "offset_where_next": "c958d8cf1f5cba4a",
        "simple_filter": "4b1c65c0484c93d5",
        "numbers": "6eede7815e34755f",
        "nulls": "1ed6c997e8197068",
        "not": "8e0a3415bd98ee80",
        "nested": "f91182bc6437f09a",
        "nothing": "4f53cda18c2baa0c",
        "none_match": "4f53cda18c2baa0c",
        "changed_seek_0": "94efc20de87fa50c",
        "changed_seek_1": "57bdd4542b33a4a9",
        "changed_default": "0feec42b9a08a2a2",
        "changed_where": "d95a02fa9c790321",
    },
    "explicit_ids": {
        "seek_0": "9305eb1e3d52a168",
        "seek_1": "275dc322286c8292",
        "window_0": "8c740791077e6b01",
        "default": "66e8cf51a42ac31a",
        "all_system": "4c04e1ea654591ad",
        "system_by_id": "b7d60caaf8b0f358",
        "offset": "bcf8b7c2f71db3b6",
        "offset_where": "22c7b5dfc4dc1c85",
        "offset_where_next": "c958d8cf1f5cba4a",
        "simple_filter": "0493cead482096a1",
        "numbers": "6eede7815e34755f",
        "nulls": "1ed6c997e8197068",
        "not": "e2d4d4b4709641c2",
        "nested": "f91182bc6437f09a",
        "nothing": "4f53cda18c2baa0c",
        "none_match": "4f53cda18c2baa0c",
        "changed_seek_0": "94efc20de87fa50c",
        "changed_seek_1": "5e68b1aae0042fdc",
        "changed_default": "d149268825009498",
        "changed_where": "d95a02fa9c790321",
    },
    "synthetic": {
        "seek_0": "159cab793a8f11d8",
        "seek_1": "65c24c5e13b480ed",
        "seek_2": "2172fc85cb6c0800",
        "seek_3": "e9efd703a90e9664",
        "seek_4": "5599e7ced145b75c",
        "window_0": "953758ba6d9d54ce",
        "window_1": "14511b56f7f8a0bf",
        "default": "67f30568e560310b",
        "all_system": "7bb0a0501aab1781",
        "system_by_id": "f7e6ecd018105203",
        "offset": "4efc2716dd212461",
        "offset_where": "ecfce02de4df278c",
        "offset_where_next": "19b89dfaf2f4a711",
        "simple_filter": "5abcb0732386b76d",
        "numbers": "a45c69d36a61142d",
        "nulls": "ae78581ccd235ed6",
        "not": "485202baf4b60a5c",
        "nested": "0b03ed6819b82bbb",
        "nothing": "4f53cda18c2baa0c",
        "none_match": "4f53cda18c2baa0c",
        "changed_seek_0": "8e8156ecbc7be90d",
        "changed_seek_1": "aabe7cf5997f70be",
        "changed_seek_2": "9112bc9b1fb8be5a",
        "changed_seek_3": "a8fdab7bd7757863",
        "changed_seek_4": "4fd3d00497a4e9f6",
        "changed_default": "4de9a462f7d16d02",
        "changed_where": "01c88b8d718d96d4",
    },
}


@pytest.mark.parametrize(
    "case",
    ["nyc_json", "nyc_csv", "nyc_json_and_csv", "nyc_sample_list", "explicit_ids", "synthetic"],
)
def test_pages_are_byte_for_byte_those_served_before(case, tmp_path):
    serve = {
        "nyc_json": lambda: mounted(tmp_path, [NYC_SODA_SAMPLE])(),
        "nyc_csv": lambda: mounted(tmp_path, [NYC_CSV])(),
        "nyc_json_and_csv": lambda: mounted(tmp_path, [NYC_SODA_SAMPLE, NYC_CSV])(),
        "nyc_sample_list": lambda: added(nyc_soda_sample())(),
        "explicit_ids": lambda: added(explicit_ids())(),
        "synthetic": lambda: mounted(tmp_path, [synthetic(tmp_path)])(),
    }[case]
    pages = serve()
    assert pages == EXPECTED[case]
