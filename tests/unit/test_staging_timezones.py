"""Every city in the registry has one staging model, unioned into the canonical
model (the cities of macros/city_feeds.sql), that converts times with the
timezone its registry entry names."""

import re

from ingestion.registry import load_registry
from tests.helpers.data import REPO

MODELS = REPO / "dbt_project" / "models"
# Every timezone literal in the model: the conversion macros' and a protocol macro's argument.
_ZONE = re.compile(r"'([A-Z][A-Za-z_]+/[A-Za-z_/]+)'")


def test_staging_models_use_the_registry_timezone():
    for city in load_registry().cities:
        sql = (MODELS / "staging" / city.id / f"stg_{city.id}__service_requests.sql").read_text()
        zones = set(_ZONE.findall(sql))
        assert zones == {city.timezone}, f"{city.id}: staging uses {zones}, registry {city.timezone}"


def test_the_canonical_union_reads_every_staging_model():
    feeds = (REPO / "dbt_project" / "macros" / "city_feeds.sql").read_text()
    listed = set(re.findall(r"\{'city': '([a-z0-9_]+)'", feeds))
    on_disk = {p.parent.name for p in (MODELS / "staging").glob("*/stg_*__service_requests.sql")}
    registered = {city.id for city in load_registry().cities}
    assert listed == on_disk == registered, (
        "add the city and its raw tables to city_feeds() in dbt_project/macros/city_feeds.sql "
        f"(missing: {sorted((on_disk | registered) - listed)})"
    )


def test_each_staging_model_reads_the_raw_tables_of_its_feed():
    for path in (MODELS / "staging").glob("*/stg_*__service_requests.sql"):
        city = path.parent.name
        assert f"raw_source('raw_{city}', feed_tables('{city}'))" in path.read_text(), path
