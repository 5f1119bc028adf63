"""From the configured systems to connectors: manifests resolved, connectors built, closed.

Each configured system names a manifest (a built-in one by name, or a file)
and may override its base URL, timeout, cache TTL and connection limit. The
gateway's lifespan owns the connectors and calls `close_all` on exit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from connectors.fhir_r4 import FhirR4Connector
from connectors.manifest import ManifestError, load_manifest, manifest_from_dict
from connectors.plugins import load_plugin
from connectors.resilience import resilient
from connectors.rest_json import RestJsonConnector

if TYPE_CHECKING:
    from collections.abc import Iterable

    from connectors.base import Connector
    from connectors.manifest import Manifest
    from gateway.settings import ConnectorSettings, Settings

__all__ = ["build_connector", "build_connectors", "build_raw_connector", "close_all",
           "manifest_from_text", "manifest_version", "resolve_manifests"]


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


def manifest_from_text(text: str, origin: str, default_ttl: float) -> Manifest:
    """A registered manifest (TOML text, deployment settings such as `base_url` in it).

    The same rules as a configured system: a `cache_ttl_seconds` left out is
    `default_ttl`, and a `base_url` is required. Raises `ManifestError`, one line.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"manifest {origin}: not valid TOML ({exc})") from None
    manifest = manifest_from_dict(data, origin)
    if manifest.cache_ttl_seconds is None:
        manifest = manifest.model_copy(update={"cache_ttl_seconds": default_ttl})
    if manifest.base_url is None:
        raise ManifestError(f"manifest {origin}: base_url: required for a registered system")
    return manifest


def manifest_version(manifest: Manifest) -> str:
    """``sha256:<hex>`` of the resolved manifest's canonical JSON: what is in service.

    Equal for equal manifests however their TOML was written (order, comments).
    """
    canonical = json.dumps(manifest.model_dump(mode="json"), sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def build_connector(manifest: Manifest) -> Connector:
    """The connector a (resolved) manifest describes, inside the resilience wrappers of its
    `[resilience]` table and `timeout_seconds` (`connectors.resilience`); opens nothing yet."""
    return resilient(build_raw_connector(manifest), manifest.resilience,
                     manifest.timeout_seconds)


def build_raw_connector(manifest: Manifest) -> Connector:
    """The bare connector a (resolved) manifest describes: no retry, breaker or cap.

    For the conformance kit, which must see the system's failures as they are."""
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
