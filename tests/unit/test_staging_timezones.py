"""Every city in the registry has one staging model, unioned into the canonical
model, and a staging model holds only the city's mapping: the timezone comes
from the registry (the var `cities`), never a literal, and the protocol macro is
the one its registry entry names."""

import re

from ingestion.registry import load_registry
from tests.helpers.data import REPO

STAGING = REPO / "dbt_project" / "models" / "staging"
# A timezone literal: 'America/New_York', 'UTC' and the like.
_ZONE = re.compile(r"'([A-Z][A-Za-z_]+/[A-Za-z_/]+|UTC)'")
_PROTOCOL_MACRO = re.compile(r"\b(socrata|ckan|open311|seeclickfix)_requests\(")


def _models():
    return {path.parent.name: path for path in STAGING.glob("*/stg_*__service_requests.sql")}


def test_every_registry_city_has_one_staging_model_and_no_other():
    models = _models()
    assert set(models) == set(load_registry().ids), (
        "a staging model is dbt_project/models/staging/<id>/stg_<id>__service_requests.sql for each "
        f"registry city: missing {sorted(set(load_registry().ids) - set(models))}, "
        f"no city for {sorted(set(models) - set(load_registry().ids))}"
    )
    for city_id, path in models.items():
        assert path.name == f"stg_{city_id}__service_requests.sql", path


def test_staging_models_name_no_timezone():
    for city_id, path in _models().items():
        zones = set(_ZONE.findall(path.read_text()))
        assert not zones, f"{city_id}: staging names {zones}; the timezone comes from the registry"


def test_staging_models_call_their_protocols_macro():
    models = _models()
    for city in load_registry().cities:
        called = _PROTOCOL_MACRO.findall(models[city.id].read_text())
        assert called == [city.source.protocol], f"{city.id}: calls {called}, registry {city.source.protocol}"
