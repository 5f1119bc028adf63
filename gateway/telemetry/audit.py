"""The audit log's group commits, timed and traced (the events themselves are never recorded)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gateway.telemetry.metrics import AUDIT_COMMIT_SECONDS
from gateway.telemetry.tracing import span

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType

    from opentelemetry.trace import Span
    from prometheus_client import Histogram

__all__ = ["CommitTimer", "audit_commit"]

_outcomes: dict[str, Histogram] = {}
"""The histogram's child by outcome, resolved once (`labels()` costs microseconds)."""


def audit_commit(events: int) -> CommitTimer:
    """Time one store commit of `events` events; span "audit.commit" with the count and outcome.

    Used as `with audit_commit(n):` around the awaited commit.
    """
    return CommitTimer(events)


class CommitTimer:
    """`audit_commit`'s context: a plain one, as it wraps an await without needing one of its
    own. At nearly one commit per request in an open loop, the generator steps of
    `contextlib.asynccontextmanager` were a dozen Python calls per request."""

    __slots__ = ("_events", "_span", "_started", "_window")

    def __init__(self, events: int) -> None:
        self._events = events
        self._started = 0.0
        self._window: AbstractContextManager[Span | None] | None = None
        self._span: Span | None = None

    def __enter__(self) -> None:
        self._window = span("audit.commit", {"events": self._events})
        self._span = self._window.__enter__()
        self._started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        outcome = "failed" if kind is not None else "ok"
        child = _outcomes.get(outcome)
        if child is None:
            child = _outcomes[outcome] = AUDIT_COMMIT_SECONDS.labels(outcome)
        child.observe(time.perf_counter() - self._started)
        if self._span is not None:
            self._span.set_attribute("outcome", outcome)
        if self._window is not None:
            self._window.__exit__(kind, exc, traceback)
