"""A counting semaphore for the upstream path: first come, first served, in fewer steps.

Each cache miss takes two slots per system (the call's cap, then a pooled connection).
CPython 3.11's `asyncio.Semaphore` spends seven Python calls on one acquire and release
(`__aenter__`, `acquire`, `locked` with a generator over the waiters, `release`,
`_wake_up_next`, `__aexit__`); `take` and `give` are two. The behaviour callers see is
the same: waiters are served in order, a freed slot goes straight to the first waiter (a
newcomer cannot take it first), and a waiter cancelled after it was handed a slot passes
the slot on, so none is ever lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["Slots"]


class Slots:
    """`count` slots; `take` one (waiting in turn when none is free), `give` it back."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("slots must number at least 1")
        self._free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def free(self) -> int:
        """Slots nobody holds now."""
        return self._free

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    async def take(self) -> None:
        """Take a slot, waiting behind earlier callers when none is free."""
        if self._free:  # never with waiters: `give` hands a slot to a waiter before freeing it
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot, then cancelled before it ran: pass it on
            else:
                with contextlib.suppress(ValueError):  # `give` already skipped it (done)
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Give a slot back: to the first waiter, or free."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
