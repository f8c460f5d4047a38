"""Sending a message to a subscription's channels: Slack's webhook JSON, civic311's own
webhook JSON, email over SMTP with STARTTLS, or the console.

Each channel is tried up to ATTEMPTS times with exponential backoff (tenacity). A
channel that still fails is reported failed, with the error (secrets masked), and the
caller records it: the next evaluation delivers it again. Secrets come only from the
environment variables the subscription names, and never reach an error, a log line
or the alerts file: a webhook's URL is shown by its host alone.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import requests
from tenacity import RetryError, Retrying, stop_after_attempt, wait_exponential

from ingestion.redact import redact, remember_credential_variable
from orchestration.alerts.subscriptions import (
    Channel,
    ConsoleChannel,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)

ATTEMPTS = 3
# The first retry waits this long, the next twice as long; CIVIC311_ALERT_BACKOFF_SECONDS
# shortens it (the tests).
BACKOFF_ENV = "CIVIC311_ALERT_BACKOFF_SECONDS"
DEFAULT_BACKOFF = 2.0
TIMEOUT_SECONDS = 15


class DeliveryError(RuntimeError):
    """A channel refused the message; the text names the channel, never its secret."""


@dataclass(frozen=True)
class Message:
    """What one alert says: a title, lines of text, the items as data, and a file."""

    message_id: str
    subscription: str
    kind: str
    title: str
    body: dict
    attachment: Path | None = None

    @property
    def lines(self) -> list[str]:
        return list(self.body.get("lines", []))


@dataclass(frozen=True)
class Outcome:
    channel: str
    delivered: bool
    attempts: int
    error: str | None = None


def channel_id(channel: Channel) -> str:
    """How a channel is named in `alerts.deliveries`: by kind and variable or address."""
    if isinstance(channel, SlackChannel | WebhookChannel):
        return f"{channel.channel}:{channel.url_env}"
    if isinstance(channel, EmailChannel):
        return f"email:{','.join(channel.to)}"
    return "console"


def deliver(message: Message, channel: Channel, *, say: Callable[[str], None] = print) -> Outcome:
    """Send `message` on `channel`, retrying with backoff; never raises for the channel's fault."""
    backoff = float(os.environ.get(BACKOFF_ENV) or DEFAULT_BACKOFF)
    name = channel_id(channel)
    attempts = 0

    def once() -> None:
        nonlocal attempts
        attempts += 1
        _send(message, channel, say)

    try:
        for attempt in Retrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=backoff, min=backoff, max=backoff * 8),
            reraise=False,
        ):
            with attempt:
                once()
    except RetryError as exc:
        error = exc.last_attempt.exception()
        return Outcome(name, False, attempts, redact(f"{type(error).__name__}: {error}")[:500])
    return Outcome(name, True, attempts)


def _send(message: Message, channel: Channel, say: Callable[[str], None]) -> None:
    if isinstance(channel, ConsoleChannel):
        attached = [f"  map: {message.attachment}"] if message.attachment else []
        say("\n".join([f"ALERT {message.title}", *(f"  {line}" for line in message.lines), *attached]))
    elif isinstance(channel, SlackChannel):
        _post(channel.url_env, slack_document(message))
    elif isinstance(channel, WebhookChannel):
        _post(channel.url_env, webhook_document(message))
    elif isinstance(channel, EmailChannel):
        _email(message, channel)


def slack_document(message: Message) -> dict:
    """Slack's incoming-webhook JSON: the title and lines as text, the map as a link."""
    text = "\n".join([f"*{message.title}*", *message.lines])
    if message.attachment:
        text += f"\nMap: {message.attachment.resolve().as_uri()}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]}


def webhook_document(message: Message) -> dict:
    """civic311's alert document: the subscription, the kind, the title, every item's
    data, and the map's file as a link (the PNG itself stays on disk)."""
    return {
        "civic311_alert": message.message_id,
        "subscription": message.subscription,
        "kind": message.kind,
        "title": message.title,
        "lines": message.lines,
        "items": message.body.get("items", []),
        "map": message.attachment.resolve().as_uri() if message.attachment else None,
    }


def _url(variable: str) -> str:
    remember_credential_variable(variable)  # its value is masked wherever civic311 logs
    url = os.environ.get(variable, "").strip()
    if not url:
        raise DeliveryError(f"{variable} is not set: set it to the webhook's URL")
    return url


def _host(url: str) -> str:
    """Where a webhook lives, without its path or query (which hold its token)."""
    return urlsplit(url).netloc.rpartition("@")[2] or "an invalid URL"


def _post(variable: str, document: dict) -> None:
    url = _url(variable)
    try:
        response = requests.post(
            url,
            data=json.dumps(document, default=str),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        # requests puts the URL, token and all, into its messages.
        raise DeliveryError(f"POST to {_host(url)} ({variable}) failed: {type(exc).__name__}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"POST to {_host(url)} ({variable}) answered HTTP {response.status_code}")


def _email(message: Message, channel: EmailChannel) -> None:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail.set_content("\n".join([message.title, "", *message.lines]))
    if message.attachment:
        mail.add_attachment(
            message.attachment.read_bytes(), maintype="image", subtype="png", filename=message.attachment.name
        )
    context = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
    try:
        with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"{channel.smtp_host}:{channel.smtp_port} offers no STARTTLS; civic311 never sends mail "
                    "in clear text: use the server's submission port (587)"
                )
            smtp.starttls(context=context)
            smtp.ehlo()
            if channel.username_env and channel.password_env:
                remember_credential_variable(channel.password_env)
                smtp.login(os.environ.get(channel.username_env, ""), os.environ.get(channel.password_env, ""))
            smtp.send_message(mail)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        server = f"{channel.smtp_host}:{channel.smtp_port}"
        raise DeliveryError(f"email via {server} failed: {type(exc).__name__}: {redact(str(exc))}") from None
