"""What civic311 hands Dagster passes through the one redactor (ingestion/redact.py).

`redacted` wraps the body of every civic311 asset and check: it filters the step's
`context.log`, redacts the metadata of each result the body yields or returns (dlt's
and dbt's too), and replaces an exception whose text would show a secret with one
that does not, so nothing secret reaches the run's event log or its stored errors.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dagster import AssetCheckResult, MaterializeResult, ObserveResult
from dagster._serdes import deserialize_value, serialize_value

from ingestion.redact import RedactedError, install_filter, redact

F = TypeVar("F", bound=Callable[..., Any])


class RedactedFailure(RedactedError):
    """An asset or check failed with text that showed a secret; this is that text, redacted."""


def redact_value(value: Any) -> Any:
    """`value` with every string in it redacted: plain data, or a Dagster metadata value."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    # Exact types: Dagster's metadata values are records that pose as tuples.
    if type(value) is dict:
        return {key: redact_value(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(redact_value(item) for item in value)
    try:
        text = serialize_value(value)
    except Exception:  # noqa: BLE001 - not a Dagster value: Dagster refuses it itself
        return value
    clean = json.dumps(redact_value(json.loads(text)))
    return value if clean == text else deserialize_value(clean)


def redact_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if metadata is None else {key: redact_value(value) for key, value in metadata.items()}


def redact_result(result: Any) -> Any:
    """A result or event of a Dagster body with its metadata redacted (others pass unchanged)."""
    if isinstance(result, MaterializeResult | ObserveResult):
        return result._replace(
            metadata=redact_metadata(result.metadata),
            check_results=[redact_result(check) for check in result.check_results or ()],
        )
    if isinstance(result, AssetCheckResult):
        return result._replace(metadata=redact_metadata(result.metadata))
    if hasattr(result, "with_metadata") and getattr(result, "metadata", None):
        return result.with_metadata(redact_metadata(result.metadata))
    if isinstance(result, tuple) and not hasattr(result, "_fields"):
        return tuple(redact_result(item) for item in result)
    return result


def _redacted_failure(error: Exception) -> RedactedFailure | None:
    """A stand-in for `error` when its text (with its causes) would show a secret, else None."""
    text = "".join(traceback.format_exception(error))
    return None if redact(text) == text else RedactedFailure(text)


def _filter_log(args: tuple[Any, ...]) -> None:
    for arg in args[:1]:
        log = getattr(arg, "log", None)
        if isinstance(log, logging.Logger):
            install_filter(log)


def redacted(body: F) -> F:
    """Wrap an asset or check body so that what it hands Dagster is redacted (see module doc)."""
    if inspect.isgeneratorfunction(body):

        @functools.wraps(body)
        def generator(*args: Any, **kwargs: Any) -> Any:
            _filter_log(args)
            try:
                for result in body(*args, **kwargs):
                    yield redact_result(result)
                return
            except Exception as error:  # noqa: BLE001 - re-raised unless it shows a secret
                failure = _redacted_failure(error)
                if failure is None:
                    raise
            # Raised outside the except block, so the original is not kept as its context.
            raise failure from None

        return generator  # type: ignore[return-value]

    @functools.wraps(body)
    def function(*args: Any, **kwargs: Any) -> Any:
        _filter_log(args)
        try:
            return redact_result(body(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - re-raised unless it shows a secret
            failure = _redacted_failure(error)
            if failure is None:
                raise
        raise failure from None

    return function  # type: ignore[return-value]
