"""The one redactor, and the rules that keep credentials out of URLs: the registry
refuses them in every URL field, and CIVIC311_REPLAY_URL is held to the same rules,
each with an error that names the place and the fix and never repeats the secret."""

from __future__ import annotations

import logging
import pickle

import pytest

from ingestion.redact import MASK, get_logger, redact, redact_url, remember_credential_variable
from ingestion.registry import RegistryError, load_registry, parse_registry
from ingestion.sources.http import SourceError
from orchestration.resources import replay_url

TOKEN = "tok-" + "5ec7e7" * 4
VARIABLE = "CIVIC311_TEST_REDACT_TOKEN"


@pytest.fixture
def token(monkeypatch) -> str:
    remember_credential_variable(VARIABLE)
    monkeypatch.setenv(VARIABLE, TOKEN)
    return TOKEN


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET https://civic:pa55@data.example.org/x failed", "GET https://***@data.example.org/x failed"),
        ("https://t0ken@h.org", "https://***@h.org"),
        ("https://u:p@ss@h.org/a?b=c", "https://***@h.org/a?b=c"),  # an unencoded @ in the password
        ("https://h.org/r.json?$$app_token=abc&$limit=5", "https://h.org/r.json?$$app_token=***&$limit=5"),
        ("%24%24app_token=abc&key=k1", "%24%24app_token=***&key=***"),
        ("https://h.org/api?apikey=abc", "https://h.org/api?apikey=***"),
        ("monkey=1 and https://h.org/path@v2", "monkey=1 and https://h.org/path@v2"),
    ],
)
def test_urls_lose_their_user_names_passwords_and_credential_parameters(text, shown):
    assert redact(text) == shown


def test_a_credential_variable_value_is_hidden_wherever_it_appears(token, monkeypatch):
    assert (
        redact(f"403: invalid token '{token}' (again: {token})")
        == f"403: invalid token '{MASK}' (again: {MASK})"
    )
    # Read when the text is made: a changed value is hidden, the old one no longer is.
    monkeypatch.setenv(VARIABLE, "another-" + token)
    assert redact(f"x another-{token}") == f"x {MASK}"
    # Too short to hide without garbling the text.
    monkeypatch.setenv(VARIABLE, "abc")
    assert redact("abc def") == "abc def"


def test_an_unnamed_variable_is_not_treated_as_a_credential(monkeypatch):
    monkeypatch.setenv("CIVIC311_NOT_A_CREDENTIAL", "visible-value-1234")
    assert redact("visible-value-1234") == "visible-value-1234"


def test_the_registry_names_every_credential_variable_to_the_redactor(monkeypatch):
    registry = load_registry()
    named = {c.source.credential_variable for c in registry.cities} - {None}
    assert "CIVIC311_NYC_APP_TOKEN" in named and "CIVIC311_BOSTON_API_KEY" in named
    for name in named:
        monkeypatch.setenv(name, f"value-of-{name}")
        assert redact(f"a value-of-{name} b") == f"a {MASK} b"


def test_a_url_is_shown_without_its_secret_parts():
    assert redact_url("https://u:p@h.org:8443/a/b?token=x#frag") == "https://***@h.org:8443/a/b?***#***"
    assert redact_url("https://h.org/a") == "https://h.org/a"


def test_a_civic311_logger_and_dlts_redact_messages_and_tracebacks(token, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    log = get_logger("civic311.test_redact")
    log.warning("answered %s for %s", "HTTP 403", f"https://user:{token}@h.org")
    try:
        raise ValueError(f"server said {token}")
    except ValueError:
        log.exception("failed")
    # A dlt runtime started earlier in the process (a pipeline, the CLI's quiet level)
    # stops dlt's logger propagating and may raise its level (dlt.common.logger), so the
    # capture listens on it directly, at INFO.
    dlt_logger = logging.getLogger("dlt")
    caplog.set_level(logging.INFO, logger="dlt")
    monkeypatch.setattr(dlt_logger, "disabled", False)
    dlt_logger.addHandler(caplog.handler)
    try:
        dlt_logger.warning("dlt saw %s", token)
    finally:
        dlt_logger.removeHandler(caplog.handler)
    assert "answered HTTP 403 for https://***@h.org" in caplog.text
    assert "server said ***" in caplog.text and "dlt saw ***" in caplog.text
    assert token not in caplog.text


def test_a_civic311_error_is_redacted_when_made_and_stays_so(token):
    error = SourceError(f"nyc: https://h.org answered HTTP 403: invalid token {token!r}")
    assert str(error) == "nyc: https://h.org answered HTTP 403: invalid token '***'"
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


CITY = {
    "id": "nyc",
    "name": "New York City",
    "timezone": "America/New_York",
    "first_day": "2010-01-01",
    "bbox": {"south": 40.496, "west": -74.256, "north": 40.916, "east": -73.7},
}
SOCRATA = {
    "protocol": "socrata",
    "base_url": "https://data.cityofnewyork.us",
    "dataset_id": "erm2-nwe9",
    "id_field": "unique_key",
}
OPEN311 = {"protocol": "open311", "base_url": "https://x.org/open311/v2"}
SEECLICKFIX = {"protocol": "seeclickfix", "place_url": "detroit", "organizations": ["City of Detroit"]}
LAYER = {"name": "district", "label": "District", "key": "id", "vintage": "2020"}
SECRET = "pw-" + "9a1b" * 5


def _refusal(source: dict | None = None, boundaries: list | None = None) -> str:
    city = {**CITY, "source": source or SOCRATA, "boundaries": boundaries or []}
    with pytest.raises(RegistryError) as error:
        parse_registry({"cities": [city]}, "cities.yaml")
    message = str(error.value)
    assert SECRET not in message and "city 'nyc'" in message
    assert error.value.__context__ is None  # pydantic's error, which quotes the input, is not kept
    return message


@pytest.mark.parametrize(
    ("source", "problem", "fix"),
    [
        (
            {**SOCRATA, "base_url": f"https://civic:{SECRET}@data.cityofnewyork.us"},
            "carries a user name or password ('https://***@data.cityofnewyork.us')",
            "source.app_token_env",
        ),
        (
            {**SOCRATA, "base_url": f"https://{SECRET}@data.cityofnewyork.us"},
            "carries a user name or password",
            "source.app_token_env",
        ),
        (
            {**SOCRATA, "base_url": f"https://data.cityofnewyork.us/?$$app_token={SECRET}"},
            "carries a query string ('https://data.cityofnewyork.us/?***')",
            "source.app_token_env",
        ),
        (
            {**SOCRATA, "base_url": f"https://data.cityofnewyork.us/#{SECRET}"},
            "carries a fragment",
            "source.app_token_env",
        ),
        (
            {**OPEN311, "base_url": f"https://key:{SECRET}@x.org/open311/v2"},
            "carries a user name or password",
            "source.api_key_env",
        ),
        (
            {**SEECLICKFIX, "base_url": f"https://u:{SECRET}@seeclickfix.com/api/v2"},
            "carries a user name or password",
            "takes no credential",
        ),
        (
            {**SOCRATA, "base_url": "https://data.cityofnewyork.us /resource"},
            "contains whitespace",
            "no spaces",
        ),
        (
            {**SOCRATA, "base_url": "ftp://data.cityofnewyork.us"},
            "must be an http:// or https:// URL",
            "no spaces",
        ),
    ],
)
def test_a_base_url_with_a_credential_or_a_space_is_refused_without_repeating_it(source, problem, fix):
    message = _refusal(source)
    assert f"city 'nyc': field 'source.base_url' {problem}" in message
    assert f"Fix: {fix}" in message or fix in message.split("Fix:", 1)[1]


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        (
            {**LAYER, "source": {"url": f"https://u:{SECRET}@example.org/d.geojson"}},
            "boundaries.0.source.url",
        ),
        (
            {
                **LAYER,
                "source": {"path": "d.geojson"},
                "population": {
                    "source": {"url": f"https://{SECRET}@example.org/p.csv"},
                    "key_column": "k",
                    "value_column": "v",
                    "vintage": "2020",
                },
            },
            "boundaries.0.population.source.url",
        ),
        (
            {
                **LAYER,
                "source": {"path": "d.geojson"},
                "population": {
                    "source": {"path": "p.csv"},
                    "key_column": "k",
                    "value_column": "v",
                    "vintage": "2020",
                    "crosswalk": {
                        "source": {"url": f"https://u:{SECRET}@example.org/c.csv"},
                        "from_column": "a",
                        "to_column": "b",
                    },
                },
            },
            "boundaries.0.population.crosswalk.source.url",
        ),
    ],
)
def test_a_boundary_file_url_with_a_password_is_refused_without_repeating_it(layer, field):
    message = _refusal(boundaries=[layer])
    assert f"field '{field}' carries a user name or password ('https://***@example.org/" in message
    assert "give a public https:// URL" in message


def test_a_boundary_file_url_may_carry_a_query_but_no_space():
    with_query = {**LAYER, "source": {"url": "https://example.org/export?format=GeoJSON"}}
    city = {**CITY, "source": SOCRATA, "boundaries": [with_query]}
    assert parse_registry({"cities": [city]}).cities[0].boundaries[0].source.url.endswith("=GeoJSON")
    spaced = {**LAYER, "source": {"url": "https://example.org/a file.geojson"}}
    assert "contains whitespace" in _refusal(boundaries=[spaced])


def test_a_registry_that_is_not_yaml_is_refused_without_quoting_its_lines(tmp_path):
    path = tmp_path / "cities.yaml"
    path.write_text(f"cities:\n  - id: nyc\n    source: {{base_url: https://u:{SECRET}@x.org: oops}}\n")
    with pytest.raises(RegistryError) as error:
        load_registry(path)
    assert "is not valid YAML at line 3" in str(error.value) and SECRET not in str(error.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            f"http://civic:{SECRET}@127.0.0.1:8311",
            "carries a user name or password ('http://***@127.0.0.1:8311')",
        ),
        (f"http://127.0.0.1:8311/?token={SECRET}", "carries a query string ('http://127.0.0.1:8311/?***')"),
        ("http://127.0.0.1:8311 ", "contains whitespace"),
    ],
)
def test_the_replay_url_is_held_to_the_same_rules(monkeypatch, url, problem):
    monkeypatch.setenv("CIVIC311_REPLAY_URL", url)
    with pytest.raises(RegistryError) as error:
        replay_url()
    message = str(error.value)
    assert message.startswith(f"CIVIC311_REPLAY_URL {problem}") and "\n" not in message
    assert SECRET not in message and "http://127.0.0.1:8311" in message


def test_a_plain_replay_url_is_used_as_it_is(monkeypatch):
    monkeypatch.setenv("CIVIC311_REPLAY_URL", "http://127.0.0.1:8311/")
    assert replay_url() == "http://127.0.0.1:8311/"
    monkeypatch.delenv("CIVIC311_REPLAY_URL")
    assert replay_url() is None
