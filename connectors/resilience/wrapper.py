"""The base of every resilience wrapper: a connector around a connector, delegating the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["ConnectorWrapper", "unwrap"]


class ConnectorWrapper:
    """Implements `connectors.base.Connector` by delegating everything to `inner`.

    A wrapper overrides `fetch` and `search` (the calls it guards); identity, traits,
    `check` (a health probe must see the system as it is) and `close` pass through.
    """

    def __init__(self, inner: Connector) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def can_shield(self) -> bool:
        """True if this system records shielding, so its silence means "unknown"."""
        return self.inner.can_shield

    @property
    def provides(self) -> frozenset[str]:
        """The `SourceFacts` attributes this system can state (its failure withholds them)."""
        return self.inner.provides

    @property
    def cache_ttl(self) -> float:
        return self.inner.cache_ttl

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
