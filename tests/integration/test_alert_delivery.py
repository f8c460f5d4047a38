"""Each delivery channel against a real receiver on 127.0.0.1: Slack's and civic311's
webhook JSON, email through an SMTP server that requires STARTTLS and a login (with
the map attached), retries with backoff, a failure reported with the secret masked,
and a server without STARTTLS refused."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from PIL import Image

from orchestration.alerts.delivery import BACKOFF_ENV, Message, deliver
from orchestration.alerts.subscriptions import ConsoleChannel, EmailChannel, SlackChannel, WebhookChannel
from tests.helpers.receivers import smtp_receiver, webhook_receiver
from tests.helpers.webserver import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def message(tmp_path) -> Message:
    png = tmp_path / "map.png"
    Image.new("RGB", (40, 30), "white").save(png)
    return Message(
        message_id="20121123T060000-abcd1234",
        subscription="brooklyn_noise",
        kind="emerging_hotspot",
        title="civic311 brooklyn_noise: 1 emerging hotspot in nyc",
        body={"lines": ["week of 2012-11-19 · zip 11201 · noise: 12 requests vs 0.4 expected"],
              "items": [{"area_id": "11201", "requests": 12}]},
        attachment=png,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setenv(BACKOFF_ENV, "0.01")


def test_webhooks_post_their_json(message, monkeypatch):
    with webhook_receiver() as hook:
        monkeypatch.setenv("CIVIC311_TEST_SLACK", hook.url)
        monkeypatch.setenv("CIVIC311_TEST_WEBHOOK", hook.url)
        slack = deliver(message, SlackChannel(channel="slack", url_env="CIVIC311_TEST_SLACK"))
        webhook = deliver(message, WebhookChannel(channel="webhook", url_env="CIVIC311_TEST_WEBHOOK"))
    assert slack.delivered and webhook.delivered and (slack.attempts, webhook.attempts) == (1, 1)
    slack_doc, webhook_doc = hook.received
    assert slack_doc["text"].startswith("*civic311 brooklyn_noise: 1 emerging hotspot in nyc*")
    assert "zip 11201" in slack_doc["blocks"][0]["text"]["text"]
    assert webhook_doc["subscription"] == "brooklyn_noise" and webhook_doc["kind"] == "emerging_hotspot"
    assert webhook_doc["items"] == [{"area_id": "11201", "requests": 12}]
    assert webhook_doc["map"].startswith("file://") and webhook_doc["map"].endswith("map.png")


def test_a_webhook_is_retried_then_reported_failed_without_its_secret(message, monkeypatch):
    channel = WebhookChannel(channel="webhook", url_env="CIVIC311_TEST_WEBHOOK")
    with webhook_receiver() as hook:
        monkeypatch.setenv("CIVIC311_TEST_WEBHOOK", hook.url)
        hook.failing = 2  # two 503s, then it takes it
        recovered = deliver(message, channel)
        hook.failing = -1  # down for good
        failed = deliver(message, channel)
    assert recovered.delivered and recovered.attempts == 3 and len(hook.received) == 1
    assert not failed.delivered and failed.attempts == 3
    assert "HTTP 503" in failed.error and "CIVIC311_TEST_WEBHOOK" in failed.error
    assert "T0K3N" not in failed.error and "127.0.0.1" in failed.error


def test_an_unset_variable_is_named(message, monkeypatch):
    monkeypatch.delenv("CIVIC311_TEST_WEBHOOK", raising=False)
    outcome = deliver(message, WebhookChannel(channel="webhook", url_env="CIVIC311_TEST_WEBHOOK"))
    assert not outcome.delivered and "CIVIC311_TEST_WEBHOOK is not set" in outcome.error


def test_email_goes_over_starttls_with_a_login_and_the_map_attached(message, tmp_path, monkeypatch):
    with smtp_receiver(tmp_path) as box:
        monkeypatch.setenv("CIVIC311_TEST_SMTP_USER", box.user)
        monkeypatch.setenv("CIVIC311_TEST_SMTP_PASSWORD", box.password)
        channel = EmailChannel(
            channel="email",
            to=["desk@example.org"],
            sender="civic311@example.org",
            smtp_host="127.0.0.1",
            smtp_port=box.port,
            username_env="CIVIC311_TEST_SMTP_USER",
            password_env="CIVIC311_TEST_SMTP_PASSWORD",
            ca_file=box.ca_file,
        )
        outcome = deliver(message, channel)
        monkeypatch.setenv("CIVIC311_TEST_SMTP_PASSWORD", "wrong-password")
        refused = deliver(message, channel)
    assert outcome.delivered, outcome.error
    assert box.logins == ["alerts"]
    (mail,) = box.messages
    assert mail["Subject"] == message.title and mail["To"] == "desk@example.org"
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "image/png" and attachment.get_filename() == "map.png"
    assert attachment.get_content().startswith(b"\x89PNG")
    assert "zip 11201" in mail.get_body(("plain",)).get_content()
    assert not refused.delivered and "SMTPAuthenticationError" in refused.error
    assert "wrong-password" not in refused.error


def test_a_server_without_starttls_is_refused(message, tmp_path):
    class Accept:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            return "250 OK"

    port = free_port()
    plain = Controller(Accept(), hostname="127.0.0.1", port=port)
    plain.start()
    try:
        outcome = deliver(
            message,
            EmailChannel(
                channel="email", to=["desk@example.org"], sender="civic311@example.org",
                smtp_host="127.0.0.1", smtp_port=port,
            ),
        )  # fmt: skip
    finally:
        plain.stop()
    assert not outcome.delivered and "offers no STARTTLS" in outcome.error


def test_the_console_prints(message):
    said = []
    assert deliver(message, ConsoleChannel(channel="console"), say=said.append).delivered
    assert said[0].startswith("ALERT civic311 brooklyn_noise")
