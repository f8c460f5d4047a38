"""Every city in the registry has one staging model, unioned into the canonical
model, that converts times with the timezone its registry entry names."""

import re

from ingestion.registry import load_registry
from tests.conftest import REPO

MODELS = REPO / "dbt_project" / "models"
# Every timezone literal in the model: the conversion macros' and a protocol macro's argument.
_ZONE = re.compile(r"'([A-Z][A-Za-z_]+/[A-Za-z_/]+)'")


def test_staging_models_use_the_registry_timezone():
    for city in load_registry().cities:
        sql = (MODELS / "staging" / city.id / f"stg_{city.id}__service_requests.sql").read_text()
        zones = set(_ZONE.findall(sql))
        assert zones == {city.timezone}, f"{city.id}: staging uses {zones}, registry {city.timezone}"


def test_the_canonical_union_reads_every_staging_model():
    union = (MODELS / "intermediate" / "int_service_requests.sql").read_text()
    listed = set(re.findall(r"'(stg_[a-z0-9_]+__service_requests)'", union))
    on_disk = {p.stem for p in (MODELS / "staging").glob("*/stg_*__service_requests.sql")}
    registered = {f"stg_{city.id}__service_requests" for city in load_registry().cities}
    assert listed == on_disk == registered, (
        "add the city's staging model to the list in models/intermediate/int_service_requests.sql "
        f"(missing: {sorted((on_disk | registered) - listed)})"
    )
