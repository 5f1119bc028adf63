"""`GET /metrics`: the Prometheus text exposition, optionally behind a bearer token.

With several worker processes (prometheus_client's multi-process mode, chosen by
`PROMETHEUS_MULTIPROC_DIR` before prometheus_client is imported) every scrape
merges all workers' files; otherwise it reads this process's registry.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    values,
)
from starlette.responses import Response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request

    from gateway.settings import TelemetrySettings

__all__ = ["metrics_endpoint", "multiprocess_mode"]

_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def multiprocess_mode() -> bool:
    """Whether metric values live in files shared by worker processes.

    Asked of prometheus_client itself (it chose its value class at import from
    `PROMETHEUS_MULTIPROC_DIR`), so the scrape and the storage cannot disagree.
    """
    return values.ValueClass is not values.MutexValue


def _exposition() -> bytes:
    if not multiprocess_mode():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call] # untyped upstream
    return generate_latest(registry)


def metrics_endpoint(settings: TelemetrySettings) -> Callable[[Request], Awaitable[Response]]:
    """The `/metrics` handler; with `metrics_token` set it wants `Bearer <token>`."""
    expected = (None if settings.metrics_token is None
                else f"Bearer {settings.metrics_token.get_secret_value()}".encode())

    async def metrics(request: Request) -> Response:
        if expected is not None and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), expected):
            return Response("A valid metrics token is required.\n", 401,
                            {**_HEADERS, "WWW-Authenticate": 'Bearer realm="metrics"'},
                            media_type="text/plain")
        return Response(_exposition(), 200, _HEADERS, media_type=CONTENT_TYPE_LATEST)

    return metrics
