"""The overall deadline of one call: across queueing for a slot, attempts and back-off.

`Timeout` is the outermost wrapper. It sets the call's deadline (the manifest's
`timeout_seconds` from now) where the wrappers inside can read it (`remaining`,
`expired`), so a retry is not started that cannot finish and a wait for a slot
ends in time, and it enforces the deadline with `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from connectors.errors import ConnectorTimeoutError
from connectors.resilience.wrapper import ConnectorWrapper

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["Timeout", "ends_within", "expired", "remaining"]

T = TypeVar("T")


class _Deadline(NamedTuple):
    """One call's deadline: asyncio's timeout, and the seconds it was set to."""

    timeout: asyncio.Timeout
    seconds: float


_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "connector_call_deadline", default=None)
"""The running call's deadline (a task runs one call at a time)."""


def remaining() -> float:
    """Seconds left before the running call's deadline (infinite outside a `Timeout`)."""
    deadline = _DEADLINE.get()
    when = None if deadline is None else deadline.timeout.when()
    if when is None:
        return math.inf
    return when - asyncio.get_running_loop().time()


def ends_within(seconds: float) -> bool:
    """True when the running call's deadline falls at most `seconds` from now; told without
    reading the clock (the deadline, set before, is no longer than that), so a request inside
    it can go without a timer of its own."""
    deadline = _DEADLINE.get()
    return deadline is not None and deadline.seconds <= seconds


def expired() -> bool:
    """True once the running call's deadline has fired: a cancellation is then its timeout."""
    deadline = _DEADLINE.get()
    return deadline is not None and deadline.timeout.expired()


class Timeout(ConnectorWrapper):
    """Each `fetch` and `search` answers within `seconds` or raises `ConnectorTimeoutError`."""

    def __init__(self, inner: Connector, seconds: float) -> None:
        super().__init__(inner)
        if seconds <= 0:
            raise ValueError("a timeout must be positive")
        self.seconds = seconds

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        return await self._within(lambda: self.inner.fetch(nhs_number))

    async def search(self, criteria: DemographicSearch) -> list[SourceFacts]:
        return await self._within(lambda: self.inner.search(criteria))

    async def _within(self, call: Callable[[], Awaitable[T]]) -> T:
        timeout = asyncio.timeout(self.seconds)
        token = _DEADLINE.set(_Deadline(timeout, self.seconds))
        try:
            async with timeout:
                return await call()
        except TimeoutError as exc:
            raise ConnectorTimeoutError(self.name, "no answer within the deadline") from exc
        finally:
            _DEADLINE.reset(token)
