import copy
from datetime import UTC, datetime

import pytest

from ingestion.registry import RegistryError, load_registry, parse_registry

VALID = {
    "cities": [
        {
            "id": "nyc",
            "name": "New York City",
            "timezone": "America/New_York",
            "first_day": "2010-01-01",
            "bbox": {"south": 40.496, "west": -74.256, "north": 40.916, "east": -73.7},
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


def test_packaged_registry_has_eight_or_more_cities_across_every_protocol():
    registry = load_registry()
    assert len(registry.cities) >= 8
    assert {c.source.protocol for c in registry.cities} == {"socrata", "open311", "seeclickfix", "ckan"}
    nyc = registry.city("nyc")
    assert [d.id for d in nyc.source.all_datasets] == ["erm2-nwe9", "fhrw-4uyv"]
    assert nyc.source.resource_url_at(nyc.source.base_url, "erm2-nwe9") == (
        "https://data.cityofnewyork.us/resource/erm2-nwe9.json"
    )
    assert nyc.tz.key == "America/New_York"
    assert nyc.base_url("http://127.0.0.1:8311/") == "http://127.0.0.1:8311/nyc"


def test_a_window_reads_every_dataset_whose_year_has_begun():
    la = load_registry().city("la").source
    ids = [d.id for d in la.datasets_for(datetime(2017, 3, 1, tzinfo=UTC))]
    # 2015-2017 requests can still change in March 2017; 2018's dataset cannot hold them yet.
    assert ids == ["ms7h-a45h", "ndkd-k878", "d4vt-q4t5"]
    nyc = load_registry().city("nyc").source
    assert [d.id for d in nyc.datasets_for(datetime(2009, 6, 1, tzinfo=UTC))] == ["erm2-nwe9"]


def test_ckan_window_reads_its_years_and_the_one_before():
    boston = load_registry().city("boston").source
    years = [
        y for y, _ in boston.resources_for(datetime(2022, 1, 5, tzinfo=UTC), datetime(2022, 1, 6, tzinfo=UTC))
    ]
    assert years == [2021, 2022]


@pytest.mark.parametrize(
    ("source", "field", "fix"),
    [
        (
            {"protocol": "open311", "base_url": "https://x.org/v2", "window_days": 120},
            "window_days",
            "90 days",
        ),
        ({"protocol": "seeclickfix", "place_url": "x", "per_page": 500}, "per_page", "100"),
        (
            {
                "protocol": "ckan",
                "base_url": "https://x.org",
                "resources_by_year": {},
                "updated_at_fields": ["a"],
                "id_field": "id",
            },
            "resources_by_year",
            "DataStore resource id",
        ),
        (
            {"protocol": "socrata", "base_url": "https://x.org", "id_field": "id"},
            "dataset_id",
            "four-by-four",
        ),
    ],
)
def test_protocol_limits_are_enforced_with_a_fix(source, field, fix):
    box = {"south": 1, "west": 1, "north": 2, "east": 2}
    raw = {
        "cities": [
            {
                "id": "x",
                "name": "X",
                "timezone": "UTC",
                "first_day": "2020-01-01",
                "bbox": box,
                "source": source,
            }
        ]
    }
    with pytest.raises(RegistryError) as err:
        parse_registry(raw, "test.yaml")
    assert f"city 'x': field 'source.{field}'" in str(err.value)
    assert fix in str(err.value)


@pytest.mark.parametrize(
    ("change", "field", "said"),
    [
        (lambda c: c.pop("bbox"), "bbox", "is required but missing"),
        (lambda c: c["bbox"].update(south=41), "bbox", "south must be below north"),
        (lambda c: c["bbox"].update(west=-73), "bbox", "west left of east"),
        (lambda c: c["bbox"].update(north=95), "bbox.north", "less than or equal to 90"),
    ],
)
def test_a_city_declares_the_box_its_requests_lie_in(change, field, said):
    with pytest.raises(RegistryError) as err:
        parse_registry(broken(change), "test.yaml")
    message = str(err.value)
    assert f"city 'nyc': field '{field}'" in message and said in message
    assert "Fix: give the city's extent in degrees" in message


def test_valid_entry_normalises_base_url():
    city = parse_registry(VALID).city("nyc")
    assert city.source.base_url == "https://data.cityofnewyork.us"
    assert city.source.page_size == 50_000


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (lambda c: c["source"].update(protocol="ftp"), "source.protocol", "supported protocols"),
        (lambda c: c.update(timezone="Mars/Olympus"), "timezone", "IANA zone"),
        (lambda c: c.pop("first_day"), "first_day", "YYYY-MM-DD"),
        (lambda c: c.update(first_day="1/1/20"), "first_day", "YYYY-MM-DD"),
        (lambda c: c.update(first_day=20100101), "first_day", "YYYY-MM-DD"),
        (lambda c: c.update(first_day="2010-01-01T05:00"), "first_day", "YYYY-MM-DD"),
        (lambda c: c.update(first_day="2999-01-01"), "first_day", "YYYY-MM-DD"),
        (lambda c: c["source"].pop("dataset_id"), "source.dataset_id", "four-by-four"),
        (lambda c: c.update(id="New-York"), "id", "lowercase letters"),
        (lambda c: c["source"].update(page_size=60_000), "source.page_size", "50000"),
        (lambda c: c["source"].update(cadence_hours=0.001), "source.cadence_hours", "a minute"),
        (
            lambda c: c.update(taxonomy={"max_unclassified_share": 5}),
            "taxonomy.max_unclassified_share",
            "from 0 to 1",
        ),
        (lambda c: c.update(taxonomy=0.05), "taxonomy", "{max_unclassified_share: 0.05}"),
        (
            lambda c: c["source"].update(base_url="https://x.org/?$$app_token=secret"),
            "source.base_url",
            "source.app_token_env",
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
        "cities:\n  - id: only_here\n    name: X\n    timezone: UTC\n    first_day: 2020-01-01\n"
        "    bbox: {south: 1, west: 1, north: 2, east: 2}\n"
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


def test_every_credential_variable_is_listed_in_env_example():
    from tests.helpers.data import REPO

    listed = (REPO / ".env.example").read_text()
    for city in load_registry().cities:
        name = getattr(city.source, "app_token_env", None) or getattr(city.source, "api_key_env", None)
        assert name is None or f"\n{name}=" in listed, f"{city.id}: add {name}= to .env.example"


@pytest.mark.parametrize(
    ("organizations", "field", "said"),
    [
        (None, "source.organizations", "is required but missing"),
        ([], "source.organizations", "names no organisation"),
        (["City of Detroit", "  "], "source.organizations", "entry 2 is blank"),
        (["", "City of Detroit", "\t"], "source.organizations", "entries 1, 3 are blank"),
        ("City of Detroit", "source.organizations", "valid tuple"),
        ([17], "source.organizations.0", "valid string"),
    ],
)
def test_seeclickfix_city_must_name_its_organisations(organizations, field, said):
    source = {"protocol": "seeclickfix", "place_url": "detroit"}
    if organizations is not None:
        source["organizations"] = organizations
    box = {"south": 42.255, "west": -83.288, "north": 42.45, "east": -82.91}
    raw = {"cities": [{"id": "detroit", "name": "Detroit", "timezone": "America/Detroit",
                       "first_day": "2024-01-01", "bbox": box, "source": source}]}  # fmt: skip
    with pytest.raises(RegistryError) as err:
        parse_registry(raw, "test.yaml")
    message = str(err.value)
    assert f"city 'detroit': field '{field}'" in message and said in message
    assert "Fix: list the names of the SeeClickFix organisations" in message
    assert "request_type.organization" in message
    assert message.count("\n  - ") == 1  # one error, not a cascade


def test_every_seeclickfix_city_in_the_registry_names_its_organisations():
    cities = [c for c in load_registry().cities if c.source.protocol == "seeclickfix"]
    assert {c.id: c.source.organizations for c in cities} == {
        "detroit": ("City of Detroit", "City of Detroit - *", "Detroit Water & Sewerage Dept."),
        "jersey_city": ("Sidewalk Concern", "Litter", "Construction Concerns", "Housing"),
    }


def test_the_unclassified_share_threshold_defaults_to_five_percent():
    assert parse_registry(VALID).city("nyc").taxonomy.max_unclassified_share == 0.05
    raw = broken(lambda c: c.update(taxonomy={"max_unclassified_share": 0.2}))
    assert parse_registry(raw).city("nyc").taxonomy.max_unclassified_share == 0.2
