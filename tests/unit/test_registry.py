import copy

import pytest

from ingestion.registry import RegistryError, load_registry, parse_registry

VALID = {
    "cities": [
        {
            "id": "nyc",
            "name": "New York City",
            "timezone": "America/New_York",
            "source": {
                "protocol": "socrata",
                "base_url": "https://data.cityofnewyork.us/",
                "dataset_id": "erm2-nwe9",
                "id_field": "unique_key",
                "app_token_env": "CIVIC311_NYC_APP_TOKEN",
            },
        }
    ]
}


def broken(change) -> dict:
    raw = copy.deepcopy(VALID)
    change(raw["cities"][0])
    return raw


def test_packaged_registry_loads():
    nyc = load_registry().city("nyc")
    assert nyc.source.protocol == "socrata"
    assert nyc.source.resource_url == "https://data.cityofnewyork.us/resource/erm2-nwe9.json"
    assert nyc.tz.key == "America/New_York"


def test_valid_entry_normalises_base_url():
    city = parse_registry(VALID).city("nyc")
    assert city.source.base_url == "https://data.cityofnewyork.us"
    assert city.source.page_size == 50_000


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (lambda c: c["source"].update(protocol="ftp"), "source.protocol", "supported protocols"),
        (lambda c: c.update(timezone="Mars/Olympus"), "timezone", "IANA zone"),
        (lambda c: c["source"].pop("dataset_id"), "source.dataset_id", "four-by-four"),
        (lambda c: c.update(id="New-York"), "id", "lowercase letters"),
        (lambda c: c["source"].update(page_size=60_000), "source.page_size", "50000"),
        (
            lambda c: c["source"].update(base_url="https://x.org/?$$app_token=secret"),
            "source.base_url",
            "no query",
        ),
    ],
)
def test_bad_entry_names_city_field_and_fix(change, field, fix):
    with pytest.raises(RegistryError) as err:
        parse_registry(broken(change), "test.yaml")
    message = str(err.value)
    assert "test.yaml" in message
    assert f"field '{field}'" in message
    assert "Fix:" in message and fix in message
    assert "city 'nyc'" in message or "city 'New-York'" in message


def test_duplicate_ids_rejected():
    raw = copy.deepcopy(VALID)
    raw["cities"].append(copy.deepcopy(raw["cities"][0]))
    with pytest.raises(RegistryError, match="appears twice"):
        parse_registry(raw)


def test_environment_selects_registry(tmp_path, monkeypatch):
    other = tmp_path / "cities.yaml"
    other.write_text(
        "cities:\n  - id: only_here\n    name: X\n    timezone: UTC\n"
        "    source: {protocol: socrata, base_url: 'http://127.0.0.1:1', "
        "dataset_id: abcd-1234, id_field: id}\n"
    )
    monkeypatch.setenv("CIVIC311_CITIES", str(other))
    assert load_registry().ids == ["only_here"]
    monkeypatch.setenv("CIVIC311_CITIES", str(tmp_path / "missing.yaml"))
    with pytest.raises(RegistryError, match="CIVIC311_CITIES"):
        load_registry()


def test_unknown_city_lists_known_ones():
    with pytest.raises(RegistryError, match="the registry has: nyc"):
        load_registry().city("atlantis")
