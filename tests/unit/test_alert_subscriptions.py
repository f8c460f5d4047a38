"""The subscriptions file: a valid one loads; a bad one is refused with a line per
problem naming the subscription, the field and the fix, and no secret is ever in it."""

from __future__ import annotations

import copy

import pytest
import yaml

from orchestration.alerts.subscriptions import AlertsError, load_subscriptions, parse_subscriptions

VALID = {
    "subscriptions": [
        {
            "name": "brooklyn_noise",
            "kind": "fresh_requests",
            "hours": 12,
            "cities": ["nyc"],
            "categories": ["noise"],
            "areas": [{"layer": "zip", "ids": [11201, "11215"]}],
            "deliver": [
                {"channel": "slack", "url_env": "CIVIC311_SLACK_WEBHOOK"},
                {
                    "channel": "email",
                    "to": ["desk@example.org"],
                    "sender": "civic311@example.org",
                    "smtp_host": "smtp.example.org",
                    "username_env": "CIVIC311_SMTP_USER",
                    "password_env": "CIVIC311_SMTP_PASSWORD",
                },
            ],
        },
        {
            "name": "hotspots",
            "kind": "emerging_hotspot",
            "cities": ["nyc", "chicago"],
            "deliver": [{"channel": "webhook", "url_env": "CIVIC311_WEBHOOK"}],
        },
    ]
}


def broken(change) -> dict:
    raw = copy.deepcopy(VALID)
    change(raw["subscriptions"][0])
    return raw


def test_a_valid_file_loads(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(VALID))
    parsed = load_subscriptions(path)
    first = parsed.named("brooklyn_noise")
    assert first.areas[0].ids == ["11201", "11215"]  # a bare ZIP stays text
    assert first.window_hours == 12 and parsed.named("hotspots").window_hours == 168
    assert [s.name for s in parsed.of_kinds(["emerging_hotspot"])] == ["hotspots"]


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (lambda s: s.update(name="Brooklyn Noise"), "name", "lowercase letters"),
        (lambda s: s.update(kind="hotspot"), "kind", "fresh_requests, emerging_hotspot"),
        (lambda s: s.update(cities=["atlantis"]), "cities.0", "chicago"),
        (lambda s: s.update(categories=["loud"]), "categories.0", "service_categories.csv"),
        (lambda s: s.update(areas=[{"layer": "ward", "ids": ["1"]}]), "areas.0.layer", "community_district"),
        (lambda s: s.update(deliver=[]), "deliver", "slack, webhook, email or console"),
        (lambda s: s.update(deliver=[{"channel": "pager"}]), "deliver.0.channel", "slack, webhook"),
        (
            lambda s: s["deliver"][0].update(url_env="https://hooks.slack.com/services/T0/B0/Zq9tok"),
            "deliver.0.url_env",
            "environment variable",
        ),
        (lambda s: s["deliver"][1].pop("password_env"), "deliver.1.username_env", "both or neither"),
        (lambda s: s["deliver"][1].update(to=["desk"]), "deliver.1.to", "email addresses"),
        (lambda s: s.update(kind="gap_change"), "hours", "only to fresh_requests and sla_breach"),
        (
            lambda s: s.update(kind="sla_breach", areas=[{"layer": "modzcta", "ids": ["10001"]}]),
            "areas.0.layer",
            "on layer zip",
        ),
    ],
)
def test_a_bad_subscription_names_itself_the_field_and_the_fix(change, field, fix):
    with pytest.raises(AlertsError) as err:
        parse_subscriptions(broken(change), "alerts.yaml")
    message = str(err.value)
    assert "alerts.yaml" in message and "Fix:" in message
    assert f"field '{field}'" in message, message
    assert fix in message, message
    assert "Zq9tok" not in message  # the value refused is not repeated when it may be one


def test_two_subscriptions_of_one_name_are_refused():
    raw = copy.deepcopy(VALID)
    raw["subscriptions"][1]["name"] = "brooklyn_noise"
    with pytest.raises(AlertsError, match="'brooklyn_noise': field 'name' is used twice"):
        parse_subscriptions(raw, "alerts.yaml")


def test_a_missing_file_names_the_variable(tmp_path):
    with pytest.raises(AlertsError, match="CIVIC311_ALERTS"):
        load_subscriptions(tmp_path / "none.yaml")


def test_a_rollover_subscription_for_a_city_without_yearly_datasets_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "alerts.yaml"
    path.write_text(
        yaml.safe_dump(
            {"subscriptions": [{"name": "rollover", "kind": "dataset_rollover", "cities": ["nyc"],
                                "deliver": [{"channel": "console"}]}]}
        )
    )  # fmt: skip
    with pytest.raises(
        AlertsError, match=r"'cities.0' names 'nyc', .* Fix: list cities with a dataset per year: la"
    ):
        load_subscriptions(path)
