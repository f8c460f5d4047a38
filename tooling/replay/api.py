"""What every replayed protocol implements, and the response the server writes.

The server owns transport concerns shared by all protocols (routing by mount
prefix, the fault plan, rate limits, the request log); an `Api` only answers
requests for its own paths from its recorded data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), headers or {})


class Api(Protocol):
    """One protocol's emulation over recorded records, mounted under a path prefix."""

    def respond(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        """Answer a GET for `path` (relative to the mount prefix, starting with "/")."""

    def is_data_request(self, path: str) -> bool:
        """Whether `path` serves pages of records (faults and page counts apply only to those)."""

    def empty_page(self, path: str, params: Mapping[str, str]) -> Response:
        """A well-formed answer with no records, as a flaky server might send."""

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        """An error body in the protocol's own shape."""

    def apply_changes(self, inserts: Sequence[dict], updates: Sequence[dict]) -> None:
        """Insert and update records as the live service would between two pages."""
