"""Typed model of the city registry (`ingestion/cities.yaml`).

The registry is validated once, at load. A bad entry stops with an error that
names the city, the field and the fix, so a typo never surfaces later as a
confusing HTTP or SQL failure.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_REGISTRY = Path(__file__).with_name("cities.yaml")
SOCRATA_MAX_LIMIT = 50_000

CityId = Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
EnvVarName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class RegistryError(ValueError):
    """A registry entry is invalid; the message says which city, which field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SocrataSource(_Strict):
    """A Socrata SODA dataset: `{base_url}/resource/{dataset_id}.json`."""

    protocol: Literal["socrata"]
    base_url: str = Field(pattern=r"^https?://[^?#]+$")
    dataset_id: str = Field(pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$")
    id_field: str = Field(min_length=1)
    page_size: int = Field(default=SOCRATA_MAX_LIMIT, ge=1, le=SOCRATA_MAX_LIMIT)
    lookback_hours: float = Field(default=72, ge=0)
    app_token_env: EnvVarName | None = None
    timeout_seconds: float = Field(default=60, gt=0)
    max_retries: int = Field(default=6, ge=0)

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def resource_url(self) -> str:
        return self.resource_url_at(self.base_url)

    def resource_url_at(self, base_url: str) -> str:
        """The dataset's endpoint on another host serving the same API (the replay server)."""
        return f"{base_url.rstrip('/')}/resource/{self.dataset_id}.json"

    def app_token(self) -> str | None:
        """The app token, read from the environment only when a request is made."""
        return os.environ.get(self.app_token_env) if self.app_token_env else None


Source = Annotated[SocrataSource, Field(discriminator="protocol")]


class City(_Strict):
    id: CityId
    name: str = Field(min_length=1)
    timezone: str
    source: Source

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone") from None
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Registry(_Strict):
    cities: list[City] = Field(min_length=1)

    @field_validator("cities")
    @classmethod
    def _unique_ids(cls, cities: list[City]) -> list[City]:
        seen: set[str] = set()
        for city in cities:
            if city.id in seen:
                raise ValueError(f"city id {city.id!r} appears twice; ids must be unique")
            seen.add(city.id)
        return cities

    def city(self, city_id: str) -> City:
        for city in self.cities:
            if city.id == city_id:
                return city
        known = ", ".join(c.id for c in self.cities)
        raise RegistryError(f"unknown city {city_id!r}; the registry has: {known}")

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.cities]


_FIXES = {
    "id": "use lowercase letters, digits and underscores only, e.g. 'new_york'",
    "timezone": "use an IANA zone name such as 'America/New_York'",
    "protocol": "use one of the supported protocols: socrata",
    "dataset_id": "give the Socrata four-by-four id, e.g. 'erm2-nwe9'",
    "base_url": "give the portal root, e.g. 'https://data.cityofnewyork.us', with no query string",
    "page_size": f"use a page size between 1 and {SOCRATA_MAX_LIMIT} (Socrata's $limit cap)",
    "app_token_env": "name an environment variable (e.g. CIVIC311_NYC_APP_TOKEN), never the token",
}


def _explain(raw: dict, exc: ValidationError, origin: str) -> RegistryError:
    lines = [f"invalid city registry {origin}:"]
    cities = raw.get("cities") if isinstance(raw, dict) else None
    for err in exc.errors():
        loc = list(err["loc"])
        city = "registry"
        if len(loc) >= 2 and loc[0] == "cities" and isinstance(loc[1], int):
            entry = cities[loc[1]] if isinstance(cities, list) and loc[1] < len(cities) else {}
            city = f"city {entry.get('id', '#' + str(loc[1] + 1))!r}" if isinstance(entry, dict) else city
            loc = loc[2:]
        # Discriminated unions insert the tag ("socrata") into the location.
        fields = [str(p) for p in loc if p not in ("socrata",)]
        field = ".".join(fields) or "entry"
        message = err["msg"]
        if err["type"] == "missing":
            message = "is required but missing"
        elif err["type"] == "union_tag_invalid":
            field = f"{field}.protocol"
            message = f"names an unknown protocol {err['ctx']['tag']!r}"
        fix = _FIXES.get(field.rsplit(".", 1)[-1], "see ingestion/cities.yaml for a valid entry")
        lines.append(f"  - {city}: field '{field}' {message}. Fix: {fix}.")
    return RegistryError("\n".join(lines))


def parse_registry(raw: object, origin: str = "<memory>") -> Registry:
    if not isinstance(raw, dict):
        raise RegistryError(f"invalid city registry {origin}: expected a mapping with a 'cities' list")
    try:
        return Registry.model_validate(raw)
    except ValidationError as exc:
        raise _explain(raw, exc, origin) from None


def registry_path() -> Path:
    return Path(os.environ.get("CIVIC311_CITIES", DEFAULT_REGISTRY))


def load_registry(path: Path | None = None) -> Registry:
    """Load and validate the registry from `path`, `$CIVIC311_CITIES` or the packaged default."""
    path = Path(path) if path else registry_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RegistryError(
            f"city registry {path} does not exist; set CIVIC311_CITIES to a registry file "
            "or unset it to use ingestion/cities.yaml"
        ) from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"city registry {path} is not valid YAML: {exc}") from None
    return parse_registry(raw, str(path))
