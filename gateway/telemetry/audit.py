"""The audit log's group commits, timed and traced (the events themselves are never recorded)."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from gateway.telemetry.metrics import AUDIT_COMMIT_SECONDS
from gateway.telemetry.tracing import span

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["audit_commit"]


@contextlib.asynccontextmanager
async def audit_commit(events: int) -> AsyncIterator[None]:
    """Time one store commit of `events` events; span "audit.commit" with the count and outcome."""
    started = time.perf_counter()
    outcome = "failed"
    with span("audit.commit", {"events": events}) as current:
        try:
            yield
            outcome = "ok"
        finally:
            AUDIT_COMMIT_SECONDS.labels(outcome).observe(time.perf_counter() - started)
            if current is not None:
                current.set_attribute("outcome", outcome)
