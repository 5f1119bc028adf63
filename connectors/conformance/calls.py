"""Every call the kit makes to a system: bounded, timed, and its failure put in safe words.

A connector already applies its manifest's timeout; the kit bounds each call
again (with a little grace) so that a plugin that ignores its timeout cannot
hang the kit. Failures are described by kind, HTTP status and JSON path
only: connector errors and `ShapeError` messages never carry a child's data,
and anything else is named by its class alone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from connectors.errors import ConnectorError, ConnectorResponseError, ConnectorTimeoutError
from connectors.shape import ShapeError

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["GRACE_SECONDS", "Call", "Calls", "Outcome", "describe"]

T = TypeVar("T")

GRACE_SECONDS = 0.5
"""Beyond the manifest's timeout before the kit itself gives up on a call."""


@dataclass(frozen=True, slots=True)
class Call:
    """One call made: what it was (``"lookup"``), how long it took, whether it timed out."""

    label: str
    seconds: float
    timed_out: bool


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """A call's value, or (when `failure` is set) why there is none."""

    value: T | None
    failure: str | None = None


def describe(exc: Exception, timeout_seconds: float) -> str:
    """Why a call failed, in words safe to print (no values from the answer)."""
    if isinstance(exc, TimeoutError | ConnectorTimeoutError):
        return f"no answer within {timeout_seconds:g}s"
    if isinstance(exc, ConnectorResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, ConnectorError):
        return exc.detail
    if isinstance(exc, ShapeError):
        return f"malformed answer: {exc}"
    return f"unexpected {type(exc).__name__}"


@dataclass
class Calls:
    """Runs the kit's calls one at a time and remembers each one's duration."""

    timeout_seconds: float
    made: list[Call] = field(default_factory=list)

    async def run(self, label: str, call: Awaitable[T]) -> Outcome[T]:
        """Await `call` within the timeout (plus grace); its value, or why it failed."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_seconds + GRACE_SECONDS):
                value = await call
        except Exception as exc:  # noqa: BLE001 -- a plugin may raise anything; the kit reports it
            timed_out = isinstance(exc, TimeoutError | ConnectorTimeoutError)
            self._record(label, started, timed_out=timed_out)
            return Outcome(None, describe(exc, self.timeout_seconds))
        self._record(label, started, timed_out=False)
        return Outcome(value)

    def _record(self, label: str, started: float, *, timed_out: bool) -> None:
        self.made.append(Call(label, time.perf_counter() - started, timed_out))
