"""Local receivers for alert deliveries, started by a test on 127.0.0.1: an HTTP
endpoint that keeps each JSON document POSTed to it (or answers with an error while
told to), and an SMTP server (aiosmtpd) that requires STARTTLS, with a certificate of
a certificate authority made for the test (trustme), and a login."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers.webserver import free_port


@dataclass
class Webhook:
    url: str
    received: list[dict] = field(default_factory=list)
    # While above 0, each POST is answered 503 and counted down (a negative: always).
    failing: int = 0
    refused: int = 0


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    hook = Webhook(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                if hook.failing != 0:
                    hook.failing -= 1 if hook.failing > 0 else 0
                    hook.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                hook.received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            """Say nothing: the test reads what was received, not the server's log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # The path is what a real webhook's secret looks like: it must never be shown.
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0K3N-s3cr3t-path"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    ca_file: Path
    user: str
    password: str
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


@contextmanager
def smtp_receiver(folder: Path, user: str = "alerts", password: str = "correct-horse") -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 that takes mail only after STARTTLS and a login."""
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    ca_file = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    box = Mailbox(free_port(), ca_file, user, password)

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            box.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
            return "250 Message accepted"

    def authenticate(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            name, secret = auth_data.login.decode(), auth_data.password.decode()
            if (name, secret) == (user, password):
                box.logins.append(name)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=box.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def subscribe(
    folder: Path, monkeypatch: pytest.MonkeyPatch, hook: Webhook, kind: str, cities: list[str]
) -> None:
    """An alerts file in `folder` with one subscription of `kind` (named after it) for
    `cities`, delivered to `hook`, set in the environment as a user sets it."""
    monkeypatch.setenv("CIVIC311_TEST_WEBHOOK", hook.url)
    path = folder / "alerts.yaml"
    webhook = {"channel": "webhook", "url_env": "CIVIC311_TEST_WEBHOOK"}
    path.write_text(
        yaml.safe_dump(
            {"subscriptions": [{"name": kind, "kind": kind, "cities": cities, "deliver": [webhook]}]}
        )
    )
    monkeypatch.setenv("CIVIC311_ALERTS", str(path))
