"""Each city's staging model converts local times with the timezone its registry entry names."""

import re

from ingestion.registry import load_registry
from tests.conftest import REPO

STAGING = REPO / "dbt_project" / "models" / "staging"


def test_staging_models_use_the_registry_timezone():
    for city in load_registry().cities:
        sql = (STAGING / city.id / f"stg_{city.id}__service_requests.sql").read_text()
        zones = set(re.findall(r"local_to_utc\([^,]+,\s*'([^']+)'\)", sql))
        assert zones == {city.timezone}, f"{city.id}: staging uses {zones}, registry {city.timezone}"
