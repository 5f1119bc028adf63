"""Which connector failures say the system is (for now) unwell, rather than this answer bad."""

from __future__ import annotations

from connectors.errors import (
    ConnectorConnectionError,
    ConnectorError,
    ConnectorResponseError,
    ConnectorTimeoutError,
)

__all__ = ["is_transient"]


def is_transient(exc: ConnectorError) -> bool:
    """Unreachable, no answer in time, or a 5xx status: worth a retry, and a breaker failure.

    A 4xx or a malformed answer is the system's considered reply: asking again gets the
    same, and it shows the system is up.
    """
    if isinstance(exc, ConnectorResponseError):
        return exc.status >= 500
    return isinstance(exc, ConnectorConnectionError | ConnectorTimeoutError)
