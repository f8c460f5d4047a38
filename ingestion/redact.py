"""One redactor for every text civic311 emits: log lines, error messages, Dagster
metadata and exception text.

It removes the user name and password of any URL (`https://user:pass@host` becomes
`https://***@host`), the value of a query parameter named like a credential
(`?$$app_token=...`), and the value of every credential variable a registry names
(`app_token_env`, `api_key_env`), read from the environment when the text is made, so
a token set after start-up is hidden too. The registry refuses credentials in URLs
at load; this is the net behind that rule, for text that comes from outside (a server
that quotes the token it rejected, a library's exception).
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import quote, urlsplit, urlunsplit

MASK = "***"
# A credential shorter than this is not hidden: masking a short string everywhere it
# occurs would garble the text and reveal little (real tokens and keys are 20+ characters).
MIN_SECRET_LENGTH = 8

# scheme://userinfo@ : userinfo runs to the last "@" before the host's path, query or fragment.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#\"'<>]*@")
# A query parameter named like a credential ($$app_token=, api_key=, ...), in a URL or a bare query.
_CREDENTIAL_PARAMETER = re.compile(
    r"(?i)((?:^|[?&;\s])(?:\$\$|%24%24)?(?:app_?token|api_?key|key|token|access_token|password|secret)=)"
    r"[^&#\s\"'<>]*"
)

# The instance database's password (orchestration/dagster_postgres.yaml), besides those a registry names.
_credential_variables: set[str] = {"CIVIC311_PG_PASSWORD"}


def remember_credential_variable(name: str | None) -> None:
    """Note a variable that holds a credential; the registry calls this for each one it names."""
    if name:
        _credential_variables.add(name)


def credential_variables() -> frozenset[str]:
    """The credential variables named by every registry loaded in this process."""
    return frozenset(_credential_variables)


def _secret_values() -> list[str]:
    values: set[str] = set()
    for name in tuple(_credential_variables):
        value = os.environ.get(name, "").strip()
        if len(value) >= MIN_SECRET_LENGTH:
            values |= {value, quote(value, safe=""), quote(value)}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` without URL user names and passwords, credential query parameters or the value
    of any credential variable."""
    if not isinstance(text, str) or not text:
        return text
    text = _USERINFO.sub(r"\1" + MASK + "@", text)
    text = _CREDENTIAL_PARAMETER.sub(r"\1" + MASK, text)
    for value in _secret_values():
        text = text.replace(value, MASK)
    return text


def redact_url(url: str) -> str:
    """`url` fit to show: its user name and password, query string and fragment masked."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return MASK
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    shown = urlunsplit(
        (parts.scheme, netloc, parts.path, MASK if parts.query else "", MASK if parts.fragment else "")
    )
    return redact(shown)


class RedactingFilter(logging.Filter):
    """A log filter that redacts a record's message and traceback before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_filter(logger: logging.Logger | logging.Handler) -> None:
    """Add the redacting filter to `logger` (or a handler) once."""
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


def get_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` with the redacting filter: how every civic311 module gets its logger.
    A filter applies only to records made on its own logger, so each logger carries one."""
    logger = logging.getLogger(name)
    install_filter(logger)
    return logger


class RedactedError(Exception):
    """Base of civic311's errors: the message is redacted when the error is made, so every
    copy of it (dlt's trace, Dagster's event log, a traceback on stderr) is clean."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


# dlt logs through the "dlt" logger (its default name), with a handler of its own.
install_filter(logging.getLogger("dlt"))
