"""Building the configured connectors, and closing them.

`build_connectors` maps each configured system's `kind` to its connector
class; the gateway's lifespan owns the result and calls `close_all` on exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from connectors.council_rest import CouncilRestConnector
from connectors.gp_fhir import GpFhirConnector
from connectors.school_rest import SchoolRestConnector

if TYPE_CHECKING:
    from collections.abc import Iterable

    from connectors.base import Connector
    from connectors.http import HttpConnector
    from gateway.settings import Settings

__all__ = ["CONNECTOR_KINDS", "build_connectors", "close_all"]

CONNECTOR_KINDS: dict[str, type[HttpConnector]] = {
    "gp_fhir": GpFhirConnector,
    "school_rest": SchoolRestConnector,
    "council_rest": CouncilRestConnector,
}


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """One connector per configured system, by name, in configuration order.

    Building opens nothing: each connector creates its HTTP session on first
    use, inside the running event loop.
    """
    connectors: dict[str, Connector] = {}
    for configured in settings.connectors:
        factory = CONNECTOR_KINDS[configured.kind]
        connectors[configured.name] = factory.from_settings(
            configured, settings.connector_ttl(configured))
    return connectors


async def close_all(connectors: Mapping[str, Connector] | Iterable[Connector]) -> None:
    """Close every connector, even if some fail to close; then raise their errors together."""
    if isinstance(connectors, Mapping):
        connectors = connectors.values()
    results = await asyncio.gather(*(connector.close() for connector in connectors),
                                   return_exceptions=True)
    errors = [result for result in results if isinstance(result, Exception)]
    if errors:
        raise ExceptionGroup("closing connectors failed", errors)
