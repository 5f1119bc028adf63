"""Metrics, traces and log correlation that never carry a child's data.

`configure_telemetry(settings)` is called once per app; the hooks that the
request path calls live in `requests`, `upstream` and `metrics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.telemetry.endpoint import metrics_endpoint
from gateway.telemetry.tracing import configure_tracing
from gateway.telemetry.upstream import circuits_closed

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = ["configure_telemetry", "metrics_endpoint"]


def configure_telemetry(settings: Settings) -> None:
    """Install the trace exporter (if configured) and report each system's circuit state."""
    configure_tracing(settings.telemetry)
    circuits_closed(c.name for c in settings.connectors)
