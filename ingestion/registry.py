"""Typed model of the city registry (`ingestion/cities.yaml`).

The registry is validated once, at load. A bad entry stops with an error that
names the city, the field and the fix, so a typo never surfaces later as a
confusing HTTP or SQL failure.

Each city has one source, whose `protocol` picks the adapter under
`ingestion/sources/` (shared by every city that speaks it), and optionally an
`export` block describing the portal's bulk export files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingestion.redact import RedactedError, redact_url, remember_credential_variable

DEFAULT_REGISTRY = Path(__file__).with_name("cities.yaml")
SOCRATA_MAX_LIMIT = 50_000
OPEN311_MAX_WINDOW_DAYS = 90
SEECLICKFIX_MAX_PER_PAGE = 100
CKAN_MAX_LIMIT = 32_000

CityId = Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
EnvVarName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
SocrataId = Annotated[str, Field(pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$")]
Year = Annotated[int, Field(ge=1990, le=2100)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class RegistryError(RedactedError, ValueError):
    """A registry entry is invalid; the message says which city, which field and the fix."""


class UrlProblem(NamedTuple):
    """What is wrong with a URL, shown without its secret part; `credential` when the
    wrong part is one that carries credentials (user name, password, query, fragment)."""

    message: str
    credential: bool


def url_problem(url: str, base: bool = True) -> UrlProblem | None:
    """What makes `url` unfit for civic311, or None. A URL never carries a credential:
    a user name and password in it (or, in a `base` URL, a query string or fragment) would
    be sent along and repeated in logs, errors and stored run events."""
    shown = redact_url(url)
    if any(character.isspace() for character in url):
        return UrlProblem(f"contains whitespace ({shown!r})", credential=False)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return UrlProblem(f"is not a valid URL ({shown!r})", credential=False)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return UrlProblem(f"must be an http:// or https:// URL with a host ({shown!r})", credential=False)
    if "@" in parts.netloc:
        return UrlProblem(f"carries a user name or password ({shown!r})", credential=True)
    if base and (parts.query or "?" in url):
        return UrlProblem(f"carries a query string ({shown!r})", credential=True)
    if base and (parts.fragment or "#" in url):
        return UrlProblem(f"carries a fragment ({shown!r})", credential=True)
    return None


REPLAY_URL_ENV = "CIVIC311_REPLAY_URL"


def checked_replay_url(url: str | None) -> str | None:
    """The replay URL from the environment, held to a base URL's rules (no user name,
    password, query string or spaces); refused in one line that names the variable."""
    problem = url_problem(url) if url else None
    if problem:
        raise RegistryError(
            f"{REPLAY_URL_ENV} {problem.message}: set it to the replay's root alone, "
            "e.g. http://127.0.0.1:8311 (a credential goes in the variable a city's registry entry names)"
        )
    return url


def _base_url_fix(source: type[BaseModel], problem: UrlProblem) -> str:
    """The fix for a bad base URL; a credential goes in the variable the protocol names."""
    if not problem.credential:
        return (
            "give the API root as an http:// or https:// URL with no spaces, e.g. 'https://data.example.org'"
        )
    for field, header in (("app_token_env", "the X-App-Token header"), ("api_key_env", "a header")):
        if field in source.model_fields:
            return (
                "give the API root alone, e.g. 'https://data.example.org', and put a token or key in an "
                f"environment variable named by source.{field} (it is sent only in {header})"
            )
    return "give the API root alone, e.g. 'https://seeclickfix.com/api/v2'; this protocol takes no credential"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _HttpSource(_Strict):
    """Settings every HTTP adapter shares."""

    base_url: str
    id_field: str = Field(min_length=1)
    # Late changes are read again: each run starts this far before its window.
    lookback_hours: float = Field(default=72, ge=0)
    # How often the city is expected to be loaded, and its feed to change: its raw
    # asset's freshness policy fails (and alerts) when the last load is older than this,
    # and the fresh_within_cadence check warns when the newest change loaded is. The
    # default is the daily refresh's day plus two hours' slack. At least a minute:
    # Dagster's shortest freshness window.
    cadence_hours: float = Field(default=26, ge=1 / 60)
    timeout_seconds: float = Field(default=60, gt=0)
    max_retries: int = Field(default=6, ge=0)
    # Client-side throttle; None leaves pacing to the server's 429 + Retry-After.
    requests_per_minute: float | None = Field(default=None, gt=0)

    @field_validator("base_url")
    @classmethod
    def _a_plain_base_url(cls, value: str) -> str:
        problem = url_problem(value, base=True)
        if problem:
            raise PydanticCustomError("bad_url", problem.message, {"fix": _base_url_fix(cls, problem)})
        return value.rstrip("/")

    @model_validator(mode="after")
    def _remember_credential_variable(self) -> _HttpSource:
        # The redactor hides this variable's value wherever civic311 writes text.
        remember_credential_variable(self.credential_variable)
        return self

    @property
    def credential_variable(self) -> str | None:
        """The environment variable the city's credential is read from, if it has one."""
        return getattr(self, "app_token_env", None) or getattr(self, "api_key_env", None)

    def secret(self) -> str | None:
        """The credential, read from the environment only when a request is made."""
        name = self.credential_variable
        return os.environ.get(name) if name else None


class SocrataDataset(_Strict):
    """One SODA dataset; `first_year`/`last_year` bound the requests it holds."""

    id: SocrataId
    first_year: Year | None = None
    last_year: Year | None = None


class SocrataSource(_HttpSource):
    """Socrata SODA datasets: `{base_url}/resource/{dataset}.json`.

    A city either names one `dataset_id`, lists `datasets` (e.g. a current and a
    historical copy), or maps `datasets_by_year` when the portal publishes one
    dataset per year of request creation (Los Angeles).
    """

    protocol: Literal["socrata"]
    dataset_id: SocrataId | None = None
    datasets: tuple[SocrataDataset, ...] = ()
    datasets_by_year: dict[Year, SocrataId] = Field(default_factory=dict)
    page_size: int = Field(default=SOCRATA_MAX_LIMIT, ge=1, le=SOCRATA_MAX_LIMIT)
    app_token_env: EnvVarName | None = None

    @model_validator(mode="after")
    def _some_dataset(self) -> SocrataSource:
        if not (self.dataset_id or self.datasets or self.datasets_by_year):
            raise ValueError("dataset_id: name the dataset (or list datasets / datasets_by_year)")
        return self

    @property
    def all_datasets(self) -> tuple[SocrataDataset, ...]:
        found = list(self.datasets)
        if self.dataset_id:
            found.insert(0, SocrataDataset(id=self.dataset_id))
        found += [
            SocrataDataset(id=d, first_year=y, last_year=y) for y, d in sorted(self.datasets_by_year.items())
        ]
        return tuple(found)

    def datasets_for(self, end: datetime | None) -> list[SocrataDataset]:
        """Datasets that can hold a row updated before `end`: any whose first year has begun.
        A year's dataset keeps changing after its year ends (late closures), so it is
        never skipped for being old; the `:updated_at` window does the filtering."""
        return [
            d for d in self.all_datasets if end is None or d.first_year is None or d.first_year <= end.year
        ]

    def resource_url_at(self, base_url: str, dataset_id: str) -> str:
        return f"{base_url.rstrip('/')}/resource/{dataset_id}.json"


class Open311Source(_HttpSource):
    """An Open311 GeoReport v2 endpoint: `{base_url}/requests.{format}`, `/services.{format}`."""

    protocol: Literal["open311"]
    id_field: str = "service_request_id"
    format: Literal["json", "xml"] = "json"
    jurisdiction_id: str | None = None
    # GeoReport v2 servers answer at most 90 days per start_date/end_date query.
    window_days: int = Field(default=OPEN311_MAX_WINDOW_DAYS, ge=1, le=OPEN311_MAX_WINDOW_DAYS)
    # `requested`: start_date/end_date filter requested_datetime (the spec), so late
    # status changes are only seen within the lookback. `updated`: the server supports
    # the updated_after/updated_before extension (Chicago), true change capture.
    window_field: Literal["requested", "updated"] = "requested"
    # The page/page_size extension; None when the city does not support it.
    page_size: int | None = Field(default=None, ge=1, le=1000)
    max_pages: int = Field(default=100, ge=1)
    extensions: bool = False
    lookback_hours: float = Field(default=24 * 30, ge=0)
    api_key_env: EnvVarName | None = None


def organization_key(name: str) -> str:
    """An organisation name as SeeClickFix names are compared: whitespace collapsed, case folded."""
    return " ".join(name.split()).casefold()


def organization_matches(name: str | None, entries: Iterable[str]) -> bool:
    """Whether `name` is one of `entries`: an exact name or a shell-style glob
    ("City of Detroit - *"), compared by `organization_key`. A missing or blank name matches none."""
    if not isinstance(name, str) or not name.strip():
        return False
    key = organization_key(name)
    return any(key == entry or fnmatchcase(key, entry) for entry in map(organization_key, entries))


class SeeClickFixSource(_HttpSource):
    """SeeClickFix v2 issues of one place: `{base_url}/issues?place_url=...`.

    A place serves the issues of every organisation whose area overlaps it;
    `organizations` names the ones that handle the city's (each issue's
    `request_type.organization`), and the adapter quarantines the rest.
    """

    protocol: Literal["seeclickfix"]
    base_url: str = "https://seeclickfix.com/api/v2"
    id_field: str = "id"
    place_url: str = Field(pattern=r"^[a-z0-9_-]+$")
    organizations: tuple[str, ...]
    per_page: int = Field(default=SEECLICKFIX_MAX_PER_PAGE, ge=1, le=SEECLICKFIX_MAX_PER_PAGE)
    # Archived issues are only returned when asked for by name.
    statuses: tuple[Literal["open", "acknowledged", "closed", "archived"], ...] = (
        "open",
        "acknowledged",
        "closed",
        "archived",
    )
    requests_per_minute: float | None = Field(default=20, gt=0)

    @field_validator("organizations")
    @classmethod
    def _some_organization(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        if not entries:
            raise ValueError("names no organisation, so every issue of the place would be quarantined")
        blank = [str(position) for position, entry in enumerate(entries, 1) if not entry.strip()]
        if len(blank) == 1:
            raise ValueError(f"entry {blank[0]} is blank")
        if blank:
            raise ValueError(f"entries {', '.join(blank)} are blank")
        return entries

    def handles(self, organization: str | None) -> bool:
        """Whether an issue handled by `organization` belongs to the city."""
        return organization_matches(organization, self.organizations)


class CkanSource(_HttpSource):
    """A CKAN DataStore with one resource per year: `{base_url}/api/3/action/datastore_search`."""

    protocol: Literal["ckan"]
    resources_by_year: dict[Year, str] = Field(min_length=1)
    page_size: int = Field(default=CKAN_MAX_LIMIT, ge=1, le=CKAN_MAX_LIMIT)
    # The DataStore has no change stamp: the latest of these floating local times
    # stands in for one.
    updated_at_fields: tuple[str, ...] = Field(min_length=1)
    # A year's resource keeps changing while its requests are closed: a window also
    # reads the resources of this many years before its start.
    reread_years: int = Field(default=1, ge=0)
    api_key_env: EnvVarName | None = None

    def resources_for(self, start: datetime | None, end: datetime | None) -> list[tuple[int, str]]:
        """Resources from `reread_years` before the window's start year to its end year."""
        first = start.year - self.reread_years if start else None
        last = end.year if end else None
        return [
            (year, rid)
            for year, rid in sorted(self.resources_by_year.items())
            if (first is None or year >= first) and (last is None or year <= last)
        ]


Source = Annotated[
    SocrataSource | Open311Source | SeeClickFixSource | CkanSource, Field(discriminator="protocol")
]


ColumnName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
SchemaName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class ExportSchema(_Strict):
    """One known layout of a city's export files: the columns its header holds, each
    title reduced as the API names its fields ("Created Date" -> created_date), and the
    API field a column stands for where the two names differ. A file is read with the
    schema that knows every one of its columns (ingestion/sources/exports/schemas.py)."""

    name: SchemaName
    description: str = ""
    columns: tuple[ColumnName, ...] = Field(min_length=1)
    rename: dict[ColumnName, ColumnName] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ExportSchema:
        twice = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if twice:
            raise ValueError(f"columns: {twice[0]!r} is listed twice")
        unknown = sorted(set(self.rename) - set(self.columns))
        if unknown:
            raise ValueError(f"rename: {unknown[0]!r} is not one of the schema's columns")
        fields = [self.field(c) for c in self.columns]
        clash = sorted({f for f in fields if fields.count(f) > 1})
        if clash:
            raise ValueError(f"rename: two columns would both become {clash[0]!r}")
        return self

    def field(self, column: str) -> str:
        """The API field a column of this layout stands for."""
        return self.rename.get(column, column)


class ExportSpec(_Strict):
    """How the city's portal export files map onto the fields its API serves."""

    # The layouts the city's exports come in; a file's header picks one.
    schemas: tuple[ExportSchema, ...] = Field(min_length=1)
    # The API field holding when the request was made: the load refuses a file whose
    # request times are implausible (before 1990 or in the future) in bulk.
    requested_at_field: ColumnName
    # Every API field holding a date or time; each is read by the one timestamp reader.
    timestamp_fields: tuple[ColumnName, ...] = Field(min_length=1)
    # Fields whose latest value stands in for the API's change stamp.
    updated_at_fields: tuple[ColumnName, ...] = Field(min_length=1)
    # The timestamp layout, when the data cannot show it (a file whose every date has
    # day and month of 12 or less); by default each column's layout is read from its values.
    timestamp_format: Literal["iso", "month_first", "day_first", "epoch_seconds"] | None = None
    # Cell values that mean "no value" (an R export writes NA).
    null_values: tuple[str, ...] = ("",)

    @model_validator(mode="after")
    def _fields_are_timestamps(self) -> ExportSpec:
        if self.requested_at_field not in self.timestamp_fields:
            raise ValueError("requested_at_field: must be one of timestamp_fields")
        stray = [f for f in self.updated_at_fields if f not in self.timestamp_fields]
        if stray:
            raise ValueError(f"updated_at_fields: {stray[0]!r} must be one of timestamp_fields")
        names = [schema.name for schema in self.schemas]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"schemas: the name {twice[0]!r} is used twice")
        return self


LayerName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
# A key of a staging model's `extras` JSON: read as the path '$.<key>' in SQL.
ExtrasKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
# A year, a month or a day: when the boundaries were drawn or published.
Vintage = Annotated[str, Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")]
# Layers every city has without a boundary file (see int_request_areas).
BUILTIN_LAYERS = ("zip", "h3")


class FileSource(_Strict):
    """Where a boundary or population file comes from: exactly one of a live `url`,
    a `path` (relative to the project root) or a `package` resource
    ("package_name:path/in/package"). A URL file is downloaded once into
    data/boundaries/; with $CIVIC311_BOUNDARY_MIRROR set, `mirror` names the same
    file under that directory instead (tests and offline machines)."""

    url: str | None = None
    path: str | None = None
    package: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:\S+$")] | None = None
    mirror: str | None = None

    @field_validator("url")
    @classmethod
    def _a_public_url(cls, value: str | None) -> str | None:
        # A download URL may need a query (an export's format); a credential it may not.
        problem = url_problem(value, base=False) if value is not None else None
        if problem is None and value is not None and not value.startswith("https://"):
            problem = UrlProblem(f"must be an https:// URL ({redact_url(value)!r})", credential=False)
        if problem:
            fix = (
                "give a public https:// URL with no user name, password or spaces, "
                "or download the file and give its path"
            )
            raise PydanticCustomError("bad_url", problem.message, {"fix": fix})
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> FileSource:
        given = [k for k in ("url", "path", "package") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("source: give exactly one of url, path or package")
        return self


class PopulationSpec(_Strict):
    """Residents per area: a property of the layer itself, or a column of a table
    (CSV) matched to the layer through `match_property` (default: the layer key).
    A `crosswalk` table translates the table's keys to the layer's first (LA's
    population is by council name; its layer is keyed by council id)."""

    property: str | None = None
    source: FileSource | None = None
    key_column: str | None = None
    value_column: str | None = None
    match_property: str | None = None
    crosswalk: Crosswalk | None = None
    vintage: str = Field(min_length=1)

    @model_validator(mode="after")
    def _property_or_table(self) -> PopulationSpec:
        table = (self.source, self.key_column, self.value_column)
        if self.property and any(table):
            raise ValueError("population: give either property or source with key_column and value_column")
        if not self.property and not all(table):
            raise ValueError("population: a table source needs key_column and value_column")
        return self


class Crosswalk(_Strict):
    source: FileSource
    from_column: str
    to_column: str


class BoundaryLayer(_Strict):
    """One boundary layer of a city: the areas a request is counted in."""

    name: LayerName
    label: str = Field(min_length=1)
    source: FileSource
    key: str = Field(min_length=1)
    name_property: str | None = None
    vintage: Vintage
    population: PopulationSpec | None = None
    # A property listing the ZIP codes each area covers ("10001, 10119"): the
    # crosswalk that places a request with a ZIP but no point.
    zip_property: str | None = None
    # The key of the city's staging `extras` holding the city's own code for the
    # request's area in this layer, in the layer's key (LA's `neighborhood_council`,
    # from MyLA311's NC): a request with no point is placed by it when the layer
    # has that area (int_request_areas).
    reported_code: ExtrasKey | None = None

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value in BUILTIN_LAYERS:
            raise ValueError(f"{value!r} is a built-in layer every city has; choose another name")
        return value

    @property
    def files(self) -> list[FileSource]:
        """Every file the layer is made from: polygons, population table, crosswalk."""
        files = [self.source]
        if self.population and self.population.source:
            files.append(self.population.source)
        if self.population and self.population.crosswalk:
            files.append(self.population.crosswalk.source)
        return files

    @property
    def loads_offline(self) -> bool:
        """True when no file of the layer has to be downloaded (package and project files)."""
        return all(file.url is None for file in self.files)


class BoundingBox(_Strict):
    """The degrees a city's requests lie within (WGS84). The plausibility test pads it by
    0.05 degrees (about 5 km), so a request on the city line still falls inside."""

    south: float = Field(ge=-90, le=90)
    west: float = Field(ge=-180, le=180)
    north: float = Field(ge=-90, le=90)
    east: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> BoundingBox:
        if self.south >= self.north or self.west >= self.east:
            raise ValueError("south must be below north and west left of east")
        return self


class TaxonomySpec(_Strict):
    """How the city's service types may fall outside the taxonomy (docs/taxonomy.md)."""

    # The largest share of a run window's requests that may be unclassified (no seed
    # row, no rule): above it, the blocking check unclassified_share_within_threshold
    # stops the marts for that run.
    max_unclassified_share: float = Field(default=0.05, ge=0, le=1)


class MetricsSpec(_Strict):
    """What the city's response-time figures leave out (docs/metrics.md, "Exclusions")."""

    # Source channels through which the city's own staff or crews log work they found
    # or did themselves (LA's "Driver Self Report"): such a request is demand, but its
    # open-to-close time is a logging practice, not a response. Matched to the
    # channel as the feed gives it, ignoring case and surrounding spaces.
    staff_channels: list[str] = Field(default_factory=list)
    # A request closed at most this many seconds after it was created was closed
    # on creation: a referral or a record, not work the city timed.
    closed_on_creation_seconds: int = Field(default=60, ge=0)

    @field_validator("staff_channels")
    @classmethod
    def _named_channels(cls, channels: list[str]) -> list[str]:
        folded = [c.strip().lower() for c in channels]
        if any(not c for c in folded):
            raise ValueError("an empty channel name matches nothing")
        twice = sorted({c for c in folded if folded.count(c) > 1})
        if twice:
            raise ValueError(f"channel {twice[0]!r} is listed twice (case is ignored)")
        return channels


class City(_Strict):
    id: CityId
    name: str = Field(min_length=1)
    # The place the feed covers, for reports that group feeds (two feeds of Boston);
    # defaults to `name`.
    municipality: str | None = Field(default=None, min_length=1)
    country: CountryCode = "US"
    timezone: str
    # The first day of the feed's data: its daily partitions start here (a UTC day of
    # the source's change time). No request the feed serves was created before it;
    # older history comes from the city's export files (`civic311 bootstrap`).
    first_day: date
    # Where the city's requests can lie: more than 1% of a city's located requests
    # outside it fails the build (a shifted or swapped feed).
    bbox: BoundingBox
    source: Source
    export: ExportSpec | None = None
    boundaries: list[BoundaryLayer] = Field(default_factory=list)
    taxonomy: TaxonomySpec = Field(default_factory=TaxonomySpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)

    @model_validator(mode="after")
    def _schemas_carry_the_keys(self) -> City:
        if self.export is None:
            return self
        needed = (self.source.id_field, self.export.requested_at_field)
        for schema in self.export.schemas:
            fields = {schema.field(column) for column in schema.columns}
            missing = [f for f in needed if f not in fields]
            if missing:
                raise ValueError(
                    f"export.schemas: schema {schema.name!r} has no column for {missing[0]!r} "
                    "(the id field and requested_at_field)"
                )
        return self

    @field_validator("boundaries")
    @classmethod
    def _unique_layers(cls, layers: list[BoundaryLayer]) -> list[BoundaryLayer]:
        names = [layer.name for layer in layers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"boundaries: layer {twice[0]!r} appears twice; layer names must be unique")
        return layers

    def layer(self, name: str) -> BoundaryLayer:
        for layer in self.boundaries:
            if layer.name == name:
                return layer
        known = ", ".join(layer.name for layer in self.boundaries) or "none"
        raise RegistryError(f"city {self.id!r} has no boundary layer {name!r}; it has: {known}")

    @field_validator("first_day", mode="before")
    @classmethod
    def _iso_day(cls, value: object) -> object:
        # YAML reads 2010-01-01 as a date; anything else must be that text. Pydantic alone
        # would read a number as seconds since 1970 and "2010-01-01T05:00" as its day.
        if isinstance(value, datetime) or not isinstance(value, date | str):
            raise PydanticCustomError("bad_day", "is not a day (YYYY-MM-DD)", {})
        if isinstance(value, date):
            return value
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise PydanticCustomError("bad_day", f"{value!r} is not a day (YYYY-MM-DD)", {})
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("bad_day", f"{value!r} is not a day of the calendar", {}) from None

    @field_validator("first_day")
    @classmethod
    def _first_day_has_passed(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise PydanticCustomError("bad_day", f"{value} has not come yet", {})
        return value

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

    @property
    def datasets_by_year(self) -> dict[int, str]:
        """The Socrata dataset of each year, for a city that publishes one a year; else empty."""
        return getattr(self.source, "datasets_by_year", {})

    @property
    def raw_tables(self) -> list[str]:
        """The raw tables the city's staging model reads: the feed, and the export files' table."""
        return ["service_requests", *(["service_requests_export"] if self.export else [])]

    def dbt_var(self) -> dict[str, object]:
        """The city as dbt reads it (var `cities`): reference.cities' row and what staging needs."""
        return {
            "id": self.id,
            "name": self.name,
            "municipality": self.municipality or self.name,
            "country": self.country,
            "timezone": self.timezone,
            "protocol": self.source.protocol,
            "id_field": self.source.id_field,
            **self.bbox.model_dump(),
            "closed_on_creation_seconds": self.metrics.closed_on_creation_seconds,
            "staff_channels": list(self.metrics.staff_channels),
            "raw_tables": self.raw_tables,
        }

    def base_url(self, replay_url: str | None = None) -> str:
        """The source's root, or the city's mount on the local replay server."""
        return f"{replay_url.rstrip('/')}/{self.id}" if replay_url else self.source.base_url


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

    def dbt_vars(self) -> dict[str, object]:
        """The registry as dbt's vars: every dbt call civic311 makes passes them (docs/adding-a-city.md)."""
        return {"cities": [city.dbt_var() for city in self.cities]}


_PROTOCOLS = ("socrata", "open311", "seeclickfix", "ckan")
_FIXES = {
    "id": "use lowercase letters, digits and underscores only, e.g. 'new_york'",
    "timezone": "use an IANA zone name such as 'America/New_York'",
    "cadence_hours": "give the hours between loads the city is expected to keep, at least 1/60 (a minute)",
    "first_day": (
        "give the first day of the feed's data as YYYY-MM-DD (the portal's documented start, "
        "e.g. 2010-01-01 for NYC's 311 Service Requests from 2010 to Present)"
    ),
    "protocol": f"use one of the supported protocols: {', '.join(_PROTOCOLS)}",
    "dataset_id": "give the Socrata four-by-four id, e.g. 'erm2-nwe9'",
    "datasets_by_year": "map each year to a Socrata four-by-four id, e.g. {2017: 'd4vt-q4t5'}",
    "base_url": "give the API root, e.g. 'https://data.cityofnewyork.us', with no query string",
    "page_size": "use a page size the protocol allows (Socrata 50000, Open311 1000, CKAN 32000)",
    "per_page": f"use at most {SEECLICKFIX_MAX_PER_PAGE} (SeeClickFix's per_page cap)",
    "window_days": f"use at most {OPEN311_MAX_WINDOW_DAYS} days (GeoReport v2's query window)",
    "app_token_env": "name an environment variable (e.g. CIVIC311_NYC_APP_TOKEN), never the token",
    "api_key_env": "name an environment variable (e.g. CIVIC311_BOSTON_API_KEY), never the key",
    "place_url": "give the SeeClickFix place slug from the city's URL, e.g. 'detroit'",
    "organizations": (
        "list the names of the SeeClickFix organisations that handle the city's issues (an issue's "
        "request_type.organization), exact or as globs, e.g. ['City of Detroit', 'City of Detroit - *']"
    ),
    "resources_by_year": "map each year to the CKAN DataStore resource id of that year",
    "updated_at_fields": "list the record fields that change when a request does, e.g. [closed_dt, open_dt]",
    "statuses": "choose from open, acknowledged, closed, archived",
    "boundaries": "give each layer a unique name other than 'zip' or 'h3'",
    "name": "use lowercase letters, digits and underscores, e.g. 'community_district'",
    "vintage": "give the year (or date) the boundaries were drawn, e.g. '2023' or '2022-04-01'",
    "source": "give exactly one of url (https://...), path or package ('package:path/in/it')",
    "population": "name a layer property, or a table source with key_column and value_column",
    "key": "name the feature property that identifies each area",
    "reported_code": (
        "name the key of the city's staging extras that holds the city's own code for the layer's "
        "areas, in lowercase letters, digits and underscores, e.g. neighborhood_council"
    ),
    "bbox": "give the city's extent in degrees, e.g. {south: 40.49, west: -74.26, north: 40.92, east: -73.7}",
    **dict.fromkeys(
        ("south", "west", "north", "east"),
        "give the city's extent in degrees: latitudes within ±90, longitudes within ±180",
    ),
    "schemas": "give each export layout a unique name, its columns and the id and request-time columns",
    "columns": 'list each column of the layout once, as its title reduces ("Created Date" -> created_date)',
    "rename": "map a column of the layout to the API field it stands for, e.g. {opened: requested_datetime}",
    "requested_at_field": "name the API field holding the request time; list it in timestamp_fields too",
    "timestamp_fields": "list every API field that holds a date or time, e.g. [created_date, closed_date]",
    "timestamp_format": "use iso, month_first, day_first or epoch_seconds, or leave it out",
    "max_unclassified_share": "give a share from 0 to 1, e.g. 0.05 (5% of a window's requests unclassified)",
    "taxonomy": "give a mapping such as {max_unclassified_share: 0.05}",
    "staff_channels": (
        "list the source channels staff and crews log their own work through, e.g. [Driver Self Report]"
    ),
    "closed_on_creation_seconds": "give whole seconds from 0, e.g. 60",
    "municipality": "name the place the feed covers, e.g. 'Boston', or leave it out to use the name",
    "country": "give the ISO 3166-1 alpha-2 code in capitals, e.g. 'US' or 'CA'",
    "metrics": (
        "give a mapping such as {staff_channels: [Driver Self Report], closed_on_creation_seconds: 60}"
    ),
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
        fields = [str(p) for p in loc if p not in _PROTOCOLS]
        field = ".".join(fields) or "entry"
        message = err["msg"]
        if err["type"] == "missing":
            message = "is required but missing"
        elif err["type"] == "union_tag_invalid":
            field = f"{field}.protocol"
            message = f"names an unknown protocol {err['ctx']['tag']!r}"
        elif err["type"] == "value_error" and ": " in message:
            # A model-level rule names the field it is about before a colon.
            named, _, message = message.removeprefix("Value error, ").partition(": ")
            field = f"{field}.{named}" if field != "entry" else named
        leaf = next((p for p in reversed(field.split(".")) if not p.isdigit()), field)
        fix = (err.get("ctx") or {}).get("fix") or _FIXES.get(
            leaf, "see ingestion/cities.yaml and docs/adding-a-city.md for a valid entry"
        )
        lines.append(f"  - {city}: field '{field}' {message}. Fix: {fix}.")
    return RegistryError("\n".join(lines))


def parse_registry(raw: object, origin: str = "<memory>") -> Registry:
    if not isinstance(raw, dict):
        raise RegistryError(f"invalid city registry {origin}: expected a mapping with a 'cities' list")
    try:
        return Registry.model_validate(raw)
    except ValidationError as exc:
        error = _explain(raw, exc, origin)
    # Raised outside the except block: pydantic's own error repeats every input value,
    # a URL's password too, and must not ride along as the context of ours.
    raise error


def registry_path() -> Path:
    return Path(os.environ.get("CIVIC311_CITIES", DEFAULT_REGISTRY))


def read_yaml(path: Path, what: str, missing_fix: str, error: type[Exception]) -> object:
    """The YAML document in `path` (`what` names it in errors); `error` when the file is
    missing (with `missing_fix`) or is not YAML, saying where."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist; {missing_fix}") from None
    except yaml.YAMLError as exc:
        # The problem and where, not PyYAML's text: that quotes the line, which may hold a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "it cannot be parsed"
        raise error(f"{what} {path} is not valid YAML{where}: {problem}") from None


def load_registry(path: Path | None = None) -> Registry:
    """Load and validate the registry from `path`, `$CIVIC311_CITIES` or the packaged default."""
    path = Path(path) if path else registry_path()
    fix = "set CIVIC311_CITIES to a registry file or unset it to use ingestion/cities.yaml"
    return parse_registry(read_yaml(path, "city registry", fix, RegistryError), str(path))


def dbt_vars_json() -> str:
    """The active registry's dbt vars as JSON, for `dbt --vars`."""
    return json.dumps(load_registry().dbt_vars())


if __name__ == "__main__":
    # `dbt build --vars "$(python -m ingestion.registry)"` runs dbt by hand.
    print(dbt_vars_json())
