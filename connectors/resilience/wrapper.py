"""The base of every resilience wrapper: a connector around a connector, delegating the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["ConnectorWrapper", "unwrap"]


class ConnectorWrapper:
    """Implements `connectors.base.Connector` by delegating everything to `inner`.

    A wrapper overrides `fetch` and `search` (the calls it guards); `check` (a health
    probe must see the system as it is) and `close` pass through. Identity and traits
    are the inner connector's, read once when wrapped: they are fixed for a connector's
    life (a system that changes is a new connector, swapped whole in the registry), and
    the lookup asks for them several times a call, which through four layers of
    properties cost about 120 Python calls a cache miss.

    A guarding wrapper's `fetch` and `search` are plain methods that return its guard's
    coroutine (`self._guard(self.inner.fetch, nhs_number)`), not coroutines awaiting it:
    one coroutine and no closure per layer instead of two and one, on each of a miss's
    four upstream calls. Nothing runs until the caller awaits, as before.
    """

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.kind: str = inner.kind
        self.can_shield: bool = inner.can_shield
        """True if this system records shielding, so its silence means "unknown"."""
        self.provides: frozenset[str] = inner.provides
        """The `SourceFacts` attributes this system can state (its failure withholds them)."""
        self.cache_ttl: float = inner.cache_ttl

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        return await self.inner.fetch(nhs_number)

    async def search(self, criteria: DemographicSearch) -> list[SourceFacts]:
        return await self.inner.search(criteria)

    async def check(self) -> None:
        await self.inner.check()

    async def close(self) -> None:
        await self.inner.close()


def unwrap(connector: Connector) -> Connector:
    """The connector inside every wrapper (the one that talks to the system)."""
    while isinstance(connector, ConnectorWrapper):
        connector = connector.inner
    return connector
