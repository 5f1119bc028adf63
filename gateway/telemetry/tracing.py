"""OpenTelemetry traces: one tracer, exported over OTLP/HTTP only when configured.

Without `[telemetry] otlp_endpoint` (and no SDK provider installed otherwise)
the hooks make no spans at all: not even OpenTelemetry's no-op ones, which still
cost microseconds each. An incoming `traceparent` still reaches the logs as
their `trace_id`.

Span attributes are system names, outcome codes, counts and durations only.
Exceptions are never recorded on spans: their messages may quote data.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from opentelemetry import trace

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from contextlib import AbstractContextManager

    from opentelemetry.trace import Span

    from gateway.settings import TelemetrySettings

__all__ = ["configure_tracing", "recording", "span", "traced", "tracer"]

P = ParamSpec("P")
R = TypeVar("R")

tracer = trace.get_tracer("contactpoint.gateway")
"""The gateway's tracer (a proxy: it follows the provider installed later, if any)."""

_installed: list[str] = []
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


class _State:
    recording = False


def recording() -> bool:
    """Whether an SDK tracer provider was there when the app started; if not, no spans.

    OpenTelemetry's no-op spans still cost microseconds each in context
    switching (and its provider lookup reads the environment every time), so
    the hooks make none at all. Decided by `configure_tracing`, at app start.
    """
    return _State.recording


def span(name: str, attributes: Mapping[str, str | int] | None = None, *,
         kind: trace.SpanKind = trace.SpanKind.INTERNAL) -> AbstractContextManager[Span | None]:
    """A current span `name` when recording, else a shared do-nothing context (None).

    Exceptions are not recorded on it (their messages may quote data).
    """
    if not recording():
        return _NO_SPAN
    return tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                        record_exception=False, set_status_on_exception=False)


def configure_tracing(settings: TelemetrySettings) -> bool:
    """Install a batching OTLP/HTTP exporter for `settings.otlp_endpoint`, once per process.

    Returns whether spans are recorded: an exporter was installed, or another SDK
    provider was already (by `opentelemetry-instrument`, or a test). The global
    provider can be set only once, so a second app in the same process keeps the
    first endpoint.
    """
    if settings.otlp_endpoint is not None and not _installed:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.otlp_endpoint)))
        trace.set_tracer_provider(provider)
        _installed.append(settings.otlp_endpoint)
    _State.recording = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _State.recording


def traced(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run the decorated coroutine function inside a span `name`, with an `outcome` attribute.

    The outcome is "ok" or the exception's class name (our own error classes, a
    closed set); the exception itself, whose message may hold data, is not recorded.
    Without spans the caller awaits the function's own coroutine: no second one wraps it.
    """

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
            call = function(*args, **kwargs)
            return _in_span(name, call) if recording() else call

        return wrapper

    return decorate


async def _in_span(name: str, call: Awaitable[R]) -> R:
    with span(name) as current:
        assert current is not None  # noqa: S101 -- recording() said so
        try:
            result = await call
        except Exception as exc:
            current.set_attribute("outcome", type(exc).__name__)
            current.set_status(trace.StatusCode.ERROR)
            raise
        current.set_attribute("outcome", "ok")
        return result
