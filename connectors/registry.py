"""From the configured systems to connectors: manifests resolved, connectors built, closed.

Each configured system names a manifest (a built-in one by name, or a file)
and may override its base URL, timeout, cache TTL and connection limit. The
gateway's lifespan owns the connectors and calls `close_all` on exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from connectors.fhir_r4 import FhirR4Connector
from connectors.manifest import ManifestError, load_manifest
from connectors.plugins import load_plugin
from connectors.rest_json import RestJsonConnector

if TYPE_CHECKING:
    from collections.abc import Iterable

    from connectors.base import Connector
    from connectors.manifest import Manifest
    from gateway.settings import ConnectorSettings, Settings

__all__ = ["build_connector", "build_connectors", "close_all", "resolve_manifests"]


def _resolved(configured: ConnectorSettings, default_ttl: float) -> Manifest:
    manifest = load_manifest(configured.manifest)
    overrides = {key: value for key, value in {
        "base_url": configured.base_url, "timeout_seconds": configured.timeout_seconds,
        "cache_ttl_seconds": configured.cache_ttl_seconds,
        "max_connections": configured.max_connections}.items() if value is not None}
    resolved = manifest.model_copy(update={"name": configured.name, **overrides})
    if resolved.cache_ttl_seconds is None:
        resolved = resolved.model_copy(update={"cache_ttl_seconds": default_ttl})
    if resolved.base_url is None:
        raise ManifestError(f"connector {configured.name}: no base_url in its manifest or "
                            "its configuration")
    return resolved


def resolve_manifests(settings: Settings) -> list[Manifest]:
    """Every configured system's manifest with its configuration applied, in order.

    Raises `ManifestError` (one line, naming the file and key) for the first bad one.
    """
    return [_resolved(c, settings.cache.default_ttl_seconds) for c in settings.connectors]


def build_connector(manifest: Manifest) -> Connector:
    """The connector a (resolved) manifest describes; opens nothing yet."""
    if manifest.kind == "rest_json":
        return RestJsonConnector(manifest)
    if manifest.kind == "fhir_r4":
        return FhirR4Connector(manifest)
    return load_plugin(manifest)


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """One connector per configured system, by name, in configuration order.

    Building opens nothing: each connector creates its HTTP session on first
    use, inside the running event loop.
    """
    return {m.name: build_connector(m) for m in resolve_manifests(settings)}


async def close_all(connectors: Mapping[str, Connector] | Iterable[Connector]) -> None:
    """Close every connector, even if some fail to close; then raise their errors together."""
    if isinstance(connectors, Mapping):
        connectors = connectors.values()
    results = await asyncio.gather(*(connector.close() for connector in connectors),
                                   return_exceptions=True)
    errors = [result for result in results if isinstance(result, Exception)]
    if errors:
        raise ExceptionGroup("closing connectors failed", errors)
