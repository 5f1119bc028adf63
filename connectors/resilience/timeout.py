"""The overall deadline of one call: across queueing for a slot, attempts and back-off.

`Timeout` is the outermost wrapper. It sets the call's deadline (the manifest's
`timeout_seconds` from now) where the wrappers inside can read it (`remaining`,
`expired`), so a retry is not started that cannot finish and a wait for a slot
ends in time, and it enforces the deadline as `asyncio.timeout` does (one timer that
cancels the task, its cancellation accounted for on the way out), without that class's
state machine and asynchronous context manager: it runs around every upstream call.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.errors import ConnectorTimeoutError
from connectors.resilience.wrapper import ConnectorWrapper

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["Timeout", "ends_within", "expired", "remaining"]

T = TypeVar("T")



class _Deadline:
    """One call's deadline: when it falls (loop time), and whether it has fired."""

    __slots__ = ("cancelling", "fired", "seconds", "task", "when")

    def __init__(self, seconds: float, when: float, task: asyncio.Task[Any]) -> None:
        self.seconds = seconds
        self.when = when
        self.task = task
        self.cancelling = task.cancelling()
        """Cancellations requested of the task before the call (not the deadline's)."""
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "connector_call_deadline", default=None)
"""The running call's deadline (a task runs one call at a time)."""


def remaining() -> float:
    """Seconds left before the running call's deadline (infinite outside a `Timeout`)."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return math.inf
    return deadline.when - asyncio.get_running_loop().time()


def ends_within(seconds: float) -> bool:
    """True when the running call's deadline falls at most `seconds` from now; told without
    reading the clock (the deadline, set before, is no longer than that), so a request inside
    it can go without a timer of its own."""
    deadline = _DEADLINE.get()
    return deadline is not None and deadline.seconds <= seconds


def expired() -> bool:
    """True once the running call's deadline has fired: a cancellation is then its timeout."""
    deadline = _DEADLINE.get()
    return deadline is not None and deadline.fired


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
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        deadline = _Deadline(self.seconds, loop.time() + self.seconds, task)
        timer = loop.call_at(deadline.when, deadline.fire)
        token = _DEADLINE.set(deadline)
        try:
            result = await call()
        except BaseException as exc:
            timer.cancel()
            # As `asyncio.timeout` leaves: the deadline's own cancellation is taken back, and
            # only a cancellation nobody else asked for becomes the timeout.
            if deadline.fired and task.uncancel() <= deadline.cancelling \
                    and type(exc) is asyncio.CancelledError:
                timeout = TimeoutError()
                timeout.__cause__ = exc
                raise ConnectorTimeoutError(self.name, "no answer within the deadline") \
                    from timeout
            if isinstance(exc, TimeoutError):
                raise ConnectorTimeoutError(self.name, "no answer within the deadline") from exc
            raise
        finally:
            _DEADLINE.reset(token)
        timer.cancel()
        if deadline.fired:  # it fired as the call returned: its cancellation is taken back
            task.uncancel()
        return result
