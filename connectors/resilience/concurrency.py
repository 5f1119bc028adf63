"""A cap on the calls in flight to one system, so a slow system cannot hold all our capacity.

Each call takes a slot (`connectors.slots.Slots`) for its whole life (every attempt and
back-off inside it), so the cap bounds the requests open to the system at once. A call
that finds no slot waits for one only until its deadline (see `timeout`), then fails as
`ConnectorSaturatedError`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.errors import ConnectorSaturatedError
from connectors.resilience.timeout import expired
from connectors.resilience.wrapper import ConnectorWrapper
from connectors.slots import Slots

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["ConcurrencyCap"]

A = TypeVar("A")
T = TypeVar("T")


class ConcurrencyCap(ConnectorWrapper):
    """At most `limit` of this connector's `fetch` and `search` calls run at once."""

    def __init__(self, inner: Connector, limit: int) -> None:
        super().__init__(inner)
        if limit < 1:
            raise ValueError("a concurrency cap must be at least 1")
        self.limit = limit
        self.in_flight = 0
        """Calls holding a slot now."""
        self._slots = Slots(limit)

    def fetch(self, nhs_number: str) -> Coroutine[Any, Any, SourceFacts | None]:
        return self._capped(self.inner.fetch, nhs_number)

    def search(self, criteria: DemographicSearch) -> Coroutine[Any, Any, list[SourceFacts]]:
        return self._capped(self.inner.search, criteria)

    async def _capped(self, call: Callable[[A], Awaitable[T]], arg: A) -> T:
        try:
            await self._slots.take()
        except asyncio.CancelledError:
            if not expired():
                raise
            # The deadline's own cancellation (the enclosing `Timeout`'s): say why it
            # expired. `Timeout` takes back its own cancel whatever we raise.
            raise ConnectorSaturatedError(
                self.name, f"all {self.limit} call slots busy until the deadline") from None
        self.in_flight += 1
        try:
            return await call(arg)
        finally:
            self.in_flight -= 1
            self._slots.give()
