"""Errors raised by connectors: one root, with connection, timeout and response branches.

Foreign exceptions (aiohttp, asyncio, json) are translated into these at the
connector boundary (`raise ... from exc`), so the gateway handles one tree.
Messages name the connector and the failure kind, never a child's data.
"""

from __future__ import annotations

__all__ = [
    "ConnectorCircuitOpenError",
    "ConnectorConnectionError",
    "ConnectorError",
    "ConnectorProtocolError",
    "ConnectorResponseError",
    "ConnectorSaturatedError",
    "ConnectorTimeoutError",
]


class ConnectorError(Exception):
    """A source system could not give a usable answer."""

    code = "UPSTREAM_UNAVAILABLE"

    def __init__(self, connector: str, detail: str) -> None:
        super().__init__(f"{connector}: {detail}")
        self.connector = connector
        self.detail = detail


class ConnectorConnectionError(ConnectorError):
    """The system could not be reached (refused, reset, DNS)."""


class ConnectorTimeoutError(ConnectorError):
    """The system did not answer within the connector's timeout."""


class ConnectorResponseError(ConnectorError):
    """The system answered with an unexpected HTTP status."""

    def __init__(self, connector: str, status: int) -> None:
        super().__init__(connector, f"HTTP {status}")
        self.status = status


class ConnectorProtocolError(ConnectorError):
    """The system answered, but the body is not the agreed format."""


class ConnectorSaturatedError(ConnectorTimeoutError):
    """Every slot for calls to the system was taken until the call's deadline passed."""


class ConnectorCircuitOpenError(ConnectorError):
    """The system's circuit breaker is open: the call failed fast, the system was not asked."""
