"""The notification endpoints of the systems in service, by authority (for `notifications`).

A system takes notifications when its manifest declares `[notifications] path`; the
authority responsible for a child is told through the first system in service whose
manifest `authority` is that authority. The connector set is held (a `Lease`) while
posting, so a registration meanwhile cannot close the connector mid-call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.errors import ConnectorProtocolError
from connectors.http import HttpConnector
from connectors.resilience.wrapper import unwrap
from gateway.accountability.outbox import OutboxRetryError

if TYPE_CHECKING:
    from gateway.lookup.registry import ConnectorSet, Registry, System

__all__ = ["RegistryEndpoints"]


def _system(connectors: ConnectorSet, authority: str) -> System | None:
    return next((s for s in connectors.systems if s.authority == authority
                 and s.manifest.notifications is not None
                 and isinstance(unwrap(s.connector), HttpConnector)), None)


class RegistryEndpoints:
    """Implements `gateway.accountability.notifications.Endpoints` over the registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def reachable(self, authority: str) -> bool:
        return _system(self._registry.current, authority) is not None

    async def post(self, authority: str, payload: dict[str, Any], key: str) -> str | None:
        lease = self._registry.take()
        try:
            system = _system(lease.connector_set, authority)
            if system is None or system.manifest.notifications is None:
                raise OutboxRetryError(f"no system of {authority} takes notifications")
            connector = unwrap(system.connector)
            assert isinstance(connector, HttpConnector)  # noqa: S101 -- `_system` checked it
            answer = await connector.post_json(system.manifest.notifications.path, payload,
                                               {"Idempotency-Key": key})
        finally:
            lease.release()
        reference = answer.get("reference") if isinstance(answer, dict) else None
        if reference is not None and not isinstance(reference, str):
            raise ConnectorProtocolError(system.name, "notification reference is not a string")
        return reference
