"""The `python` kind: a connector class found by name in the entry-point group
`contactpoint.connectors`, for the systems a manifest's mapping cannot describe.

A plugin package declares, in its own ``pyproject.toml``::

    [project.entry-points."contactpoint.connectors"]
    mysystem = "mypackage.connector:MySystemConnector"

and the class offers ``from_manifest(manifest) -> Connector``; the manifest's
``[python] options`` table is the plugin's own configuration.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from connectors.base import Connector
from connectors.manifest import ManifestError

if TYPE_CHECKING:
    from connectors.manifest import Manifest

__all__ = ["ENTRY_POINT_GROUP", "load_plugin"]

ENTRY_POINT_GROUP = "contactpoint.connectors"


def load_plugin(manifest: Manifest) -> Connector:
    """The plugin connector a `python` manifest names; raises `ManifestError` if unusable."""
    assert manifest.python is not None  # noqa: S101 -- the manifest's validator ensures it
    name = manifest.python.plugin
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        raise ManifestError(f"manifest {manifest.name}: python.plugin: no entry point {name!r} "
                            f"in group {ENTRY_POINT_GROUP} (is the plugin package installed?)")
    try:
        factory = next(iter(found)).load()
    except (ImportError, AttributeError) as exc:
        raise ManifestError(f"manifest {manifest.name}: python.plugin: {name!r} cannot be "
                            f"imported ({type(exc).__name__})") from None
    builder = getattr(factory, "from_manifest", None)
    if not callable(builder):
        raise ManifestError(f"manifest {manifest.name}: python.plugin: {name!r} has no "
                            "from_manifest(manifest)")
    connector = builder(manifest)
    if not isinstance(connector, Connector):
        raise ManifestError(f"manifest {manifest.name}: python.plugin: {name!r} does not "
                            "implement the Connector protocol")
    return connector
