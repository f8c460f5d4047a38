"""Alert subscriptions: who wants to hear about what, declared in `alerts.yaml`.

The file's path is `$CIVIC311_ALERTS`, default `alerts.yaml` in the working directory.
Each subscription names its kind, its cities, optional categories and areas, and
where its alerts go. `docs/alerts.md` shows a full file; `alerts.example.yaml` is the
demo's.

    subscriptions:
      - name: brooklyn_noise            # lowercase, digits, underscores: the alerts' key
        kind: fresh_requests            # also: emerging_hotspot gap_change sla_breach run_failure
                                        #   freshness dataset_rollover
        hours: 24                       # fresh_requests: created within the last 24 h
        cities: [nyc]
        categories: [noise]             # optional: category ids (dbt_project/seeds/service_categories.csv)
        areas:                          # optional: any boundary layer's ids, or ZIPs (layer zip)
          - {layer: community_district, ids: ["301", "302"]}
        deliver:
          - {channel: slack, url_env: CIVIC311_SLACK_WEBHOOK}
          - {channel: email, to: [desk@example.org], sender: civic311@example.org,
             smtp_host: smtp.example.org, username_env: CIVIC311_SMTP_USER,
             password_env: CIVIC311_SMTP_PASSWORD}

Secrets (a webhook's URL holds its token; an SMTP password) are never written in the
file: it names the environment variables that hold them. A file that breaks a rule
is refused whole, with one line per problem naming the subscription, the field and
the fix.
"""

from __future__ import annotations

import csv
import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingestion.registry import Registry, load_registry, read_yaml

ALERTS_ENV = "CIVIC311_ALERTS"
CATEGORIES = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "service_categories.csv"
Kind = Literal[
    "fresh_requests",
    "emerging_hotspot",
    "gap_change",
    "sla_breach",
    "run_failure",
    "freshness",
    "dataset_rollover",
]
KINDS: tuple[str, ...] = get_args(Kind)
# Kinds about the pipeline, not the data: they filter on cities only.
OPERATIONS = ("run_failure", "freshness", "dataset_rollover")
# Layers every city has besides its boundary layers (dim_area).
BUILT_IN_LAYERS = ("zip", "h3")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*")
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class AlertsError(ValueError):
    """The subscriptions file cannot be used; the message names each problem and its fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _variable(value: str) -> str:
    if not _VARIABLE.fullmatch(value):
        # Not repeated: someone who wrote the URL or the password itself would see it again.
        raise ValueError(
            "is not an environment variable's name (write the variable's name, never the secret)"
        )
    return value


class _UrlChannel(_Strict):
    url_env: str

    @field_validator("url_env")
    @classmethod
    def _named(cls, value: str) -> str:
        return _variable(value)


class SlackChannel(_UrlChannel):
    """A Slack incoming webhook (or any service that takes Slack's JSON)."""

    channel: Literal["slack"]


class WebhookChannel(_UrlChannel):
    """Any HTTP endpoint that takes a JSON POST: civic311's own alert document."""

    channel: Literal["webhook"]


class EmailChannel(_Strict):
    """Email over SMTP with STARTTLS (never in clear text)."""

    channel: Literal["email"]
    to: list[str] = Field(min_length=1)
    sender: str
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    username_env: str | None = None
    password_env: str | None = None
    # A certificate authority's PEM file, for a server whose certificate a private CA
    # signed; without it, the system's CAs.
    ca_file: Path | None = None

    @field_validator("to", "sender")
    @classmethod
    def _addresses(cls, value: list[str] | str) -> list[str] | str:
        for address in [value] if isinstance(value, str) else value:
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("username_env", "password_env")
    @classmethod
    def _variables(cls, value: str | None) -> str | None:
        return None if value is None else _variable(value)

    @model_validator(mode="after")
    def _both_or_neither(self) -> EmailChannel:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env: give both username_env and password_env, or neither")
        return self


class ConsoleChannel(_Strict):
    """Printed on the command's output (the demo's)."""

    channel: Literal["console"]


Channel = Annotated[
    SlackChannel | WebhookChannel | EmailChannel | ConsoleChannel, Field(discriminator="channel")
]


class AreaFilter(_Strict):
    layer: str = Field(min_length=1)
    ids: list[str] = Field(min_length=1)

    @field_validator("ids", mode="before")
    @classmethod
    def _text_ids(cls, values: object) -> object:
        # A ZIP or district number written bare in YAML is read as a number: keep its text.
        if isinstance(values, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values]
        return values


class Subscription(_Strict):
    name: str
    kind: Kind
    cities: list[str] = Field(min_length=1)
    categories: list[str] = Field(default_factory=list)
    areas: list[AreaFilter] = Field(default_factory=list)
    # fresh_requests: created within this many hours; sla_breach: due within them
    # (older breaches are history, not news). Defaults: 24 and 168.
    hours: float | None = Field(default=None, gt=0, le=24 * 366)
    deliver: list[Channel] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not lowercase letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _filters_where_they_mean_something(self) -> Subscription:
        if self.kind in OPERATIONS and (self.categories or self.areas):
            raise ValueError(f"categories: a {self.kind} subscription filters on cities only")
        return self

    @model_validator(mode="after")
    def _hours_where_they_mean_something(self) -> Subscription:
        if self.hours is not None and self.kind not in ("fresh_requests", "sla_breach"):
            raise ValueError(
                f"hours: a {self.kind} subscription has no hours (only fresh_requests and sla_breach)"
            )
        return self

    @property
    def window_hours(self) -> float:
        if self.hours is not None:
            return self.hours
        return 24.0 if self.kind == "fresh_requests" else 168.0


class Subscriptions(_Strict):
    subscriptions: list[Subscription] = Field(default_factory=list)

    def named(self, name: str) -> Subscription:
        for subscription in self.subscriptions:
            if subscription.name == name:
                return subscription
        known = ", ".join(s.name for s in self.subscriptions) or "none"
        raise AlertsError(f"no subscription named {name!r}; the file has: {known}")

    def of_kinds(self, kinds: list[str] | tuple[str, ...]) -> list[Subscription]:
        return [s for s in self.subscriptions if s.kind in kinds]


_FIXES = {
    "name": "use lowercase letters, digits and underscores, e.g. 'brooklyn_noise'",
    "kind": f"use one of {', '.join(KINDS)}",
    "cities": "list city ids of the registry (ingestion/cities.yaml), e.g. [nyc]",
    "categories": "list category ids of dbt_project/seeds/service_categories.csv, e.g. [noise]",
    "areas": "give each area filter a layer of every city it names (a boundary layer, zip or h3) and its ids",
    "layer": "name a boundary layer of the cities (ingestion/cities.yaml), or zip, or h3",
    "ids": "list the areas' ids as text, e.g. ['11201']",
    "hours": "give hours only to fresh_requests and sla_breach subscriptions, a number above 0",
    "deliver": "list at least one channel: slack, webhook, email or console",
    "channel": "use slack, webhook, email or console",
    "url_env": "name the environment variable that holds the webhook's URL, e.g. CIVIC311_SLACK_WEBHOOK",
    "username_env": "name the environment variables of the SMTP login, both or neither",
    "password_env": "name the environment variables of the SMTP login, both or neither",
    "to": "list email addresses",
    "sender": "give the From address",
    "smtp_host": "give the SMTP server's host name",
    "smtp_port": "give the SMTP submission port, usually 587",
}


def alerts_path() -> Path:
    return Path(os.environ.get(ALERTS_ENV, "alerts.yaml"))


@cache
def category_ids(path: Path = CATEGORIES) -> frozenset[str]:
    with path.open(newline="") as handle:
        return frozenset(row["category_id"] for row in csv.DictReader(handle))


def parse_subscriptions(raw: object, origin: str, registry: Registry | None = None) -> Subscriptions:
    """The subscriptions in `raw` (a parsed YAML document), checked against the registry:
    every city exists, every category is a canonical one, every area's layer is one of
    each named city's layers. Raises AlertsError naming each problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise AlertsError(f"alerts file {origin}: expected a mapping with a 'subscriptions' list")
    try:
        parsed = Subscriptions.model_validate(raw)
    except ValidationError as exc:
        raise AlertsError(_explain(raw, exc, origin)) from None
    problems = _cross_checks(parsed, registry or load_registry())
    if problems:
        raise AlertsError("\n".join([f"invalid alerts file {origin}:", *problems]))
    return parsed


def load_subscriptions(path: Path | None = None, registry: Registry | None = None) -> Subscriptions:
    path = Path(path) if path else alerts_path()
    fix = f"set {ALERTS_ENV} to your subscriptions file (docs/alerts.md shows one)"
    return parse_subscriptions(read_yaml(path, "alerts file", fix, AlertsError), str(path), registry)


def _explain(raw: dict, exc: ValidationError, origin: str) -> str:
    lines = [f"invalid alerts file {origin}:"]
    entries = raw.get("subscriptions")
    for err in exc.errors():
        loc = list(err["loc"])
        who = "file"
        if len(loc) >= 2 and loc[0] == "subscriptions" and isinstance(loc[1], int):
            entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else {}
            name = entry.get("name") if isinstance(entry, dict) else None
            who = f"subscription {name!r}" if name else f"subscription #{loc[1] + 1}"
            loc = loc[2:]
        # A tagged union puts the tag ("email") into the location.
        fields = [str(p) for p in loc if p not in ("slack", "webhook", "email", "console")]
        field = ".".join(fields) or "entry"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "is required but missing"
        elif err["type"] == "union_tag_invalid":
            field, message = f"{field}.channel", f"names an unknown channel {err['ctx']['tag']!r}"
        elif err["type"] == "union_tag_not_found":
            field, message = f"{field}.channel", "is required but missing"
        elif ": " in message and message.split(": ", 1)[0] in _FIXES:
            named, _, message = message.partition(": ")
            field = f"{field}.{named}" if field != "entry" else named
        leaf = next((p for p in reversed(field.split(".")) if not p.isdigit()), field)
        fix = _FIXES.get(leaf, "see docs/alerts.md for a valid subscription")
        lines.append(f"  - {who}: field '{field}' {message}. Fix: {fix}.")
    return "\n".join(lines)


def _cross_checks(parsed: Subscriptions, registry: Registry) -> list[str]:
    problems = []
    names = [s.name for s in parsed.subscriptions]
    for twice in sorted({n for n in names if names.count(n) > 1}):
        problems.append(
            f"  - subscription {twice!r}: field 'name' is used twice. Fix: give each its own name."
        )
    cities = {city.id: city for city in registry.cities}
    for s in parsed.subscriptions:
        for number, city_id in enumerate(s.cities):
            if city_id not in cities:
                problems.append(
                    f"  - subscription {s.name!r}: field 'cities.{number}' names an unknown city "
                    f"{city_id!r}. Fix: use one of {', '.join(sorted(cities))}."
                )
            elif s.kind == "dataset_rollover" and not cities[city_id].datasets_by_year:
                yearly = sorted(c for c, city in cities.items() if city.datasets_by_year)
                problems.append(
                    f"  - subscription {s.name!r}: field 'cities.{number}' names {city_id!r}, whose registry "
                    "entry maps no source.datasets_by_year, so it never rolls over. Fix: list cities "
                    f"with a dataset per year: {', '.join(yearly) or 'none in this registry'}."
                )
        for number, category in enumerate(s.categories):
            if category not in category_ids():
                problems.append(
                    f"  - subscription {s.name!r}: field 'categories.{number}' names an unknown category "
                    f"{category!r}. Fix: {_FIXES['categories']}."
                )
        for number, area in enumerate(s.areas):
            if s.kind == "sla_breach" and area.layer != "zip":
                problems.append(
                    f"  - subscription {s.name!r}: field 'areas.{number}.layer' is {area.layer!r}, but the "
                    "published facts place a request by its ZIP alone. Fix: filter an sla_breach "
                    "subscription on layer zip."
                )
                continue
            for city_id in s.cities:
                city = cities.get(city_id)
                layers = [*(layer.name for layer in city.boundaries), *BUILT_IN_LAYERS] if city else []
                if city and area.layer not in layers:
                    problems.append(
                        f"  - subscription {s.name!r}: field 'areas.{number}.layer' names {area.layer!r}, "
                        f"which {city_id} does not have. Fix: use one of {', '.join(layers)}."
                    )
    return problems
