"""The overall deadline of one call: across queueing for a slot, attempts and back-off.

`Timeout` is the outermost wrapper. It sets the call's deadline (the manifest's
`timeout_seconds` from now) where the wrappers inside can read it (`remaining`,
`expired`), so a retry is not started that cannot finish and a wait for a slot
ends in time, and it enforces the deadline as `asyncio.timeout` does: a timer cancels
the task, and the cancellation it caused (and no other) becomes the call's
`ConnectorTimeoutError`, with the task left uncancelled.

`_Deadline` is that timer without `asyncio.timeout`'s machinery, which a call's fixed
deadline does not need (rescheduling, a state machine, two async context steps): it runs
on every upstream call, four times a cache miss, and on CPython 3.11 each
`asyncio.timeout` asks for the running loop three times, a `getpid` system call each.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.errors import ConnectorTimeoutError
from connectors.resilience.wrapper import ConnectorWrapper

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["Timeout", "ends_within", "expired", "remaining"]

A = TypeVar("A")
T = TypeVar("T")


class _Deadline:
    """One call's deadline: when it falls, in the loop's time, and whether it has fired."""

    __slots__ = ("_cancelling", "_handle", "_task", "fired", "seconds", "when")

    def __init__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a call's deadline needs a task")
        self.seconds = seconds
        self.when = loop.time() + seconds
        self.fired = False
        self._task = task
        self._cancelling = task.cancelling()
        self._handle: asyncio.TimerHandle | None = loop.call_at(self.when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self.fired = True
        self._task.cancel()

    def end(self, exc: BaseException | None) -> bool:
        """Stop the timer as the call ends, once (with `exc` if it raised). True when `exc`
        is the cancellation this deadline caused, now taken back: the call timed out."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            return False
        # Fired: take back our cancel request; the cancellation is ours only if nobody
        # else asked for one meanwhile (asyncio.timeout's own test).
        return self._task.uncancel() <= self._cancelling and isinstance(
            exc, asyncio.CancelledError)


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

    def fetch(self, nhs_number: str) -> Coroutine[Any, Any, SourceFacts | None]:
        return self._within(self.inner.fetch, nhs_number)

    def search(self, criteria: DemographicSearch) -> Coroutine[Any, Any, list[SourceFacts]]:
        return self._within(self.inner.search, criteria)

    async def _within(self, call: Callable[[A], Awaitable[T]], arg: A) -> T:
        deadline = _Deadline(self.seconds)
        token = _DEADLINE.set(deadline)
        try:
            result = await call(arg)
        except BaseException as exc:
            _DEADLINE.reset(token)
            if deadline.end(exc):
                cause = TimeoutError()  # as asyncio.timeout raises it, from the cancellation
                cause.__cause__ = exc
                raise ConnectorTimeoutError(self.name, "no answer within the deadline") \
                    from cause
            raise
        _DEADLINE.reset(token)
        deadline.end(None)
        return result
