"""Retries of idempotent reads, with full-jitter back-off, bounded by a retry budget.

`fetch` and `search` are GETs, so asking again is safe. Only transient failures are
retried (`transient.is_transient`), at most `attempts` tries in all, waiting a random
time in [0, min(cap, base * 2**n)] before try n+1 (AWS's "full jitter", so clients
that failed together do not retry together). A retry is made only when

- the call's deadline leaves room for the back-off and another try as long as the
  failed one took (see `timeout`), and
- the system's `RetryBudget` has a token: as in Finagle and Envoy, retries may be at
  most `ratio` of the calls of the last `ttl` seconds plus `min_per_second` each
  second, so a failing system receives at most (1 + ratio) times the calls it would
  without retries, not `attempts` times.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.errors import ConnectorError
from connectors.resilience.timeout import remaining
from connectors.resilience.transient import is_transient
from connectors.resilience.window import RollingCount
from connectors.resilience.wrapper import ConnectorWrapper

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["Backoff", "Retry", "RetryBudget"]

A = TypeVar("A")
T = TypeVar("T")

_MIN_TRY_SECONDS = 0.01
"""The least time left for another try to be worth making."""


class RetryBudget:
    """Retries allowed: `ratio` of the last `ttl` seconds' calls, plus `min_per_second`.

    Each call deposits (`record_call`); each retry withdraws (`try_retry`), which
    fails when the window's retries would exceed its allowance.
    """

    def __init__(self, ratio: float, min_per_second: float, *, ttl: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ratio <= 1 or min_per_second < 0:
            raise ValueError("a retry budget needs 0 <= ratio <= 1 and min_per_second >= 0")
        self.ratio = ratio
        self.reserve = min_per_second * ttl
        self._calls = RollingCount(ttl, clock)
        self._retries = RollingCount(ttl, clock)

    def record_call(self) -> None:
        self._calls.add()

    def try_retry(self) -> bool:
        """Withdraw one retry if the budget allows it; False (withdrawing nothing) if not."""
        if self._retries.total() + 1 > self.ratio * self._calls.total() + self.reserve:
            return False
        self._retries.add()
        return True


class Backoff:
    """Full-jitter exponential back-off: after n failed tries, a random wait in
    [0, min(cap, base * 2**(n-1))]."""

    def __init__(self, base_seconds: float, cap_seconds: float,
                 draw: Callable[[float, float], float] = random.uniform) -> None:
        self.base = base_seconds
        self.cap = cap_seconds
        self._draw = draw

    def delay(self, failed_tries: int) -> float:
        return self._draw(0.0, min(self.cap, self.base * 2 ** (failed_tries - 1)))


class Retry(ConnectorWrapper):
    """Retries transient failures of `fetch` and `search`, within `budget` and the deadline."""

    def __init__(self, inner: Connector, *, attempts: int, backoff: Backoff,
                 budget: RetryBudget) -> None:
        super().__init__(inner)
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self.backoff = backoff
        self.budget = budget

    def fetch(self, nhs_number: str) -> Coroutine[Any, Any, SourceFacts | None]:
        return self._retrying(self.inner.fetch, nhs_number)

    def search(self, criteria: DemographicSearch) -> Coroutine[Any, Any, list[SourceFacts]]:
        return self._retrying(self.inner.search, criteria)

    async def _retrying(self, call: Callable[[A], Awaitable[T]], arg: A) -> T:
        self.budget.record_call()
        tries = 1
        while True:
            started = time.monotonic()
            try:
                return await call(arg)
            except ConnectorError as exc:
                delay = self._retry_after(exc, tries, time.monotonic() - started)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            tries += 1

    def _retry_after(self, exc: ConnectorError, tries: int, took: float) -> float | None:
        """The back-off before another try, or None when there is to be no other try."""
        if tries >= self.attempts or not is_transient(exc):
            return None
        delay = self.backoff.delay(tries)
        if remaining() - delay < max(took, _MIN_TRY_SECONDS):
            return None
        return delay if self.budget.try_retry() else None
