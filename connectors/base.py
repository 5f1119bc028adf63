"""The `Connector` protocol every source system adapter implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["Connector"]


@runtime_checkable
class Connector(Protocol):
    """An async adapter to one local system.

    Contract:
    - `fetch` returns the system's facts for one NHS number, or `None` when the
      system does not know the child; any failure (unreachable, timeout, bad
      status, malformed body) raises a `connectors.errors.ConnectorError`.
    - `search` returns the facts of every record matching the exact
      demographic attributes (possibly empty); failures raise as for `fetch`.
    - Both are cancellation-safe: cancelling the awaiting task leaves the
      connector usable (no half-read pooled connection is reused).
    - `check` raises `ConnectorError` when the system is not healthy.
    - `close` releases the pooled HTTP session; it is called once, by the
      app's lifespan.
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def can_shield(self) -> bool:
        """True if this system records shielding, so its silence means "unknown"."""
        ...

    @property
    def provides(self) -> frozenset[str]:
        """The `SourceFacts` attributes this system can state (its failure withholds them)."""
        ...

    @property
    def cache_ttl(self) -> float:
        """Seconds its answers may be cached (0 disables caching)."""
        ...

    async def fetch(self, nhs_number: str) -> SourceFacts | None: ...

    async def search(self, criteria: DemographicSearch) -> list[SourceFacts]: ...

    async def check(self) -> None: ...

    async def close(self) -> None: ...
