"""Calls to the source systems and the cache in front of them, measured per system.

Labels are the configured system name, the operation ("fetch" or "search") and
a closed outcome; spans carry the same and nothing of the request (no NHS
number, search criteria or answer).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

from opentelemetry import trace

from gateway.telemetry.metrics import (
    CACHE_LOOKUPS,
    UPSTREAM_CALLS,
    UPSTREAM_CIRCUIT_STATE,
    UPSTREAM_ERRORS,
    UPSTREAM_SECONDS,
)
from gateway.telemetry.tracing import recording, span

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable
    from contextlib import AbstractContextManager

    from opentelemetry.trace import Span
    from prometheus_client import Counter, Histogram

__all__ = ["cache_span", "circuits_closed", "count_cache", "report_circuit", "upstream_call"]

T = TypeVar("T")

_ERROR_KINDS = {"ConnectorConnectionError": "connection", "ConnectorTimeoutError": "timeout",
                "ConnectorSaturatedError": "saturated", "ConnectorCircuitOpenError": "circuit_open",
                "ConnectorResponseError": "response", "ConnectorProtocolError": "protocol",
                "ConnectorError": "connector", "CancelledError": "cancelled"}
"""`connectors.errors` by class name: telemetry sits below the connectors in the layers."""

# Label children resolved once (`labels()` costs microseconds; the label sets are closed).
_calls: dict[tuple[str, str, str], tuple[Histogram, Counter]] = {}
_cache: tuple[dict[str, Counter], dict[str, Counter]] = ({}, {})
"""By system: the miss children, then the hit children (no key tuple per lookup)."""


def _error_kind(exc: BaseException) -> str:
    return next((_ERROR_KINDS[c.__name__] for c in type(exc).__mro__
                 if c.__name__ in _ERROR_KINDS), "unexpected")


async def upstream_call(system: str, operation: str, call: Awaitable[T]) -> T:
    """Await `call` (one request to `system`) in a span, counting and timing it."""
    if recording():
        return await _traced(system, operation, call)
    # No tracer: no span, not even a do-nothing context around the call.
    started = time.perf_counter()
    try:
        result = await call
    except BaseException as exc:
        _observe(None, system, operation, started, _error_kind(exc))
        raise
    _observe(None, system, operation, started, None)
    return result


async def _traced(system: str, operation: str, call: Awaitable[T]) -> T:
    started = time.perf_counter()
    with span(f"upstream.{operation}", {"system": system},
              kind=trace.SpanKind.CLIENT) as current:
        try:
            result = await call
        except BaseException as exc:
            _observe(current, system, operation, started, _error_kind(exc))
            raise
        _observe(current, system, operation, started, None)
        return result


def _observe(current: Span | None, system: str, operation: str, started: float,
             error: str | None) -> None:
    outcome = "ok" if error is None else "error"
    key = (system, operation, outcome)
    children = _calls.get(key)
    if children is None:
        children = _calls[key] = (UPSTREAM_SECONDS.labels(system, operation),
                                  UPSTREAM_CALLS.labels(system, operation, outcome))
    children[0].observe(time.perf_counter() - started)
    children[1].inc()
    if error is not None:
        UPSTREAM_ERRORS.labels(system, operation, error).inc()
    if current is not None:
        current.set_attribute("outcome", error or "ok")
        if error is not None:
            current.set_status(trace.StatusCode.ERROR)


def cache_span(entries: int) -> AbstractContextManager[Span | None]:
    """The "cache.get" span around one read of `entries` cache entries."""
    return span("cache.get", {"entries": entries})


def count_cache(systems: Iterable[str], hits: Iterable[object]) -> None:
    """Count one hit or miss per (system, entry); an entry that is None is a miss."""
    for system, hit in zip(systems, hits, strict=True):
        found = hit is not None
        counter = _cache[found].get(system)
        if counter is None:
            counter = _cache[found][system] = CACHE_LOOKUPS.labels(system,
                                                                  "hit" if found else "miss")
        counter.inc()


def circuits_closed(systems: Iterable[str]) -> None:
    """Report every system's circuit as closed (0), as each breaker starts."""
    for system in systems:
        UPSTREAM_CIRCUIT_STATE.labels(system).set(0)


def report_circuit(system: str, state: int) -> None:
    """A system's breaker changed state: 0 closed, 1 half-open, 2 open."""
    UPSTREAM_CIRCUIT_STATE.labels(system).set(state)
