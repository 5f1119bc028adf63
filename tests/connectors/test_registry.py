"""Building connectors from settings and manifests, plugins by entry point, closing them all."""

from __future__ import annotations

import sys
import textwrap

import pytest

from connectors.base import Connector
from connectors.errors import ConnectorConnectionError
from connectors.fhir_r4 import FhirR4Connector
from connectors.manifest import BUILTIN_DIR, ManifestError, load_manifest
from connectors.registry import build_connector, build_connectors, close_all, resolve_manifests
from connectors.resilience import unwrap
from connectors.rest_json import RestJsonConnector
from gateway.settings import build_settings


def settings_for(urls, extra=()):
    return build_settings({
        "auth": {"issuer": "https://issuer.test", "audience": "contactpoint",
                 "jwks_url": "https://issuer.test/jwks"},
        "cache": {"secret": "c" * 32, "default_ttl_seconds": 12},
        "ids": {"secret": "i" * 32},
        "audit": {"pseudonym_secret": "a" * 32},
        "connectors": [
            {"name": "council", "manifest": "council", "base_url": urls["council"],
             "cache_ttl_seconds": 0},
            {"name": "gp", "manifest": "gp", "base_url": urls["gp"], "timeout_seconds": 0.5,
             "max_connections": 4},
            {"name": "school", "manifest": "school", "base_url": urls["school"] + "/",
             "cache_ttl_seconds": 60},
            *extra,
        ],
    })


async def test_build_connectors_in_configuration_order(sims, population):
    connectors = build_connectors(settings_for(sims.urls()))
    try:
        assert list(connectors) == ["council", "gp", "school"]
        assert [type(unwrap(c)) for c in connectors.values()] == [
            RestJsonConnector, FhirR4Connector, RestJsonConnector]
        assert all(isinstance(c, Connector) for c in connectors.values())
        assert [c.cache_ttl for c in connectors.values()] == [0, 12, 60]
        nhs = population.fixtures()["ordinary"]
        for connector in connectors.values():
            await connector.check()
            assert (await connector.fetch(nhs)).nhs_number == nhs
    finally:
        await close_all(connectors)
    with pytest.raises(ConnectorConnectionError):
        await connectors["gp"].fetch(nhs)


def test_configuration_overrides_the_manifest(sims):
    manifests = resolve_manifests(settings_for(sims.urls()))
    gp = next(m for m in manifests if m.name == "gp")
    assert (gp.timeout_seconds, gp.max_connections, gp.base_url) == (
        0.5, 4, sims.urls()["gp"])
    assert load_manifest("gp").timeout_seconds == 2.0


def test_a_council_manifest_file_under_another_name(tmp_path, sims):
    path = tmp_path / "yj.toml"
    path.write_text((BUILTIN_DIR / "council.toml").read_text())
    manifests = resolve_manifests(settings_for(sims.urls(), [
        {"name": "leeds", "manifest": str(path), "base_url": sims.urls()["council"]}]))
    assert [m.name for m in manifests][-1] == "leeds"


def test_a_manifest_without_base_url_anywhere_is_refused(tmp_path, sims):
    settings = settings_for(sims.urls(), [{"name": "nowhere", "manifest": "council"}])
    with pytest.raises(ManifestError, match="nowhere: no base_url"):
        resolve_manifests(settings)


def test_a_missing_manifest_is_one_line_naming_it(sims):
    settings = settings_for(sims.urls(), [{"name": "x", "manifest": "no_such_system",
                                           "base_url": "http://127.0.0.1:1"}])
    with pytest.raises(ManifestError, match=r"no_such_system\.toml: no such file"):
        resolve_manifests(settings)


PLUGIN = '''
from gateway.core.facts import SourceFacts

class EchoConnector:
    """A plugin system that knows every child by NHS number and nothing else."""

    def __init__(self, manifest):
        self.name, self.kind = manifest.name, manifest.kind
        self.can_shield, self.provides = manifest.records_shielding, manifest.facts
        self.cache_ttl = manifest.cache_ttl_seconds or 0.0
        self.greeting = manifest.python.options["greeting"]

    @classmethod
    def from_manifest(cls, manifest):
        return cls(manifest)

    async def fetch(self, nhs_number):
        return SourceFacts(nhs_number, gender="unknown")

    async def search(self, criteria):
        return []

    async def check(self):
        return None

    async def close(self):
        return None
'''


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """A real installed distribution (dist-info with entry_points.txt) holding a plugin."""
    (tmp_path / "cp_echo_plugin.py").write_text(PLUGIN)
    info = tmp_path / "cp_echo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cp-echo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[contactpoint.connectors]\necho = cp_echo_plugin:EchoConnector\n"
        "broken = cp_echo_plugin:NoSuchClass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("cp_echo_plugin", None)


def python_manifest(tmp_path, plugin):
    path = tmp_path / "echo.toml"
    path.write_text(textwrap.dedent(f"""
        name = "echo"
        kind = "python"
        authority = "council:test"
        base_url = "http://127.0.0.1:1"
        provides = ["gender"]
        [python]
        plugin = "{plugin}"
        options = {{ greeting = "hello" }}
    """))
    return load_manifest(path)


async def test_a_python_plugin_is_found_by_its_entry_point(tmp_path, plugin_on_path):
    connector = build_connector(python_manifest(tmp_path, "echo"))
    assert isinstance(connector, Connector)
    assert unwrap(connector).greeting == "hello"
    assert (await connector.fetch("9990000018")).gender == "unknown"


@pytest.mark.parametrize(("plugin", "reason"), [
    ("absent", "no entry point 'absent'"),
    ("broken", "cannot be imported"),
])
def test_an_unusable_plugin_is_a_clear_error(tmp_path, plugin_on_path, plugin, reason):
    with pytest.raises(ManifestError, match=reason):
        build_connector(python_manifest(tmp_path, plugin))


async def test_close_all_takes_any_iterable_and_unused_connectors(sims):
    connectors = build_connectors(settings_for(sims.urls()))
    await close_all(list(connectors.values()))
    await close_all(connectors)


async def test_close_all_closes_the_rest_when_one_fails(sims):
    class Broken(RestJsonConnector):
        async def close(self):
            await super().close()
            raise RuntimeError("close failed")

    connectors = build_connectors(settings_for(sims.urls()))
    broken = Broken(load_manifest("school").model_copy(update={"base_url": sims.school.url}))
    await broken.check()
    await connectors["gp"].check()
    with pytest.raises(ExceptionGroup) as caught:
        await close_all([broken, *connectors.values()])
    assert [str(e) for e in caught.value.exceptions] == ["close failed"]
    with pytest.raises(ConnectorConnectionError):
        await connectors["gp"].check()
