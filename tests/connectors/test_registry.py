"""Building connectors from settings, using them, and closing them all."""

from __future__ import annotations

import pytest

from connectors.base import Connector
from connectors.council_rest import CouncilRestConnector
from connectors.errors import ConnectorConnectionError
from connectors.gp_fhir import GpFhirConnector
from connectors.registry import build_connectors, close_all
from connectors.school_rest import SchoolRestConnector
from gateway.settings import build_settings


def settings_for(urls):
    return build_settings({
        "auth": {"issuer": "https://issuer.test", "audience": "contactpoint",
                 "jwks_url": "https://issuer.test/jwks"},
        "cache": {"secret": "c" * 32, "default_ttl_seconds": 12},
        "ids": {"secret": "i" * 32},
        "audit": {"pseudonym_secret": "a" * 32},
        "connectors": [
            {"name": "council", "kind": "council_rest", "base_url": urls["council"],
             "cache_ttl_seconds": 0},
            {"name": "gp", "kind": "gp_fhir", "base_url": urls["gp"], "timeout_seconds": 0.5,
             "max_connections": 4},
            {"name": "school", "kind": "school_rest", "base_url": urls["school"] + "/",
             "cache_ttl_seconds": 60},
        ],
    })


async def test_build_connectors_in_configuration_order(sims, population):
    connectors = build_connectors(settings_for(sims.urls()))
    try:
        assert list(connectors) == ["council", "gp", "school"]
        assert [type(c) for c in connectors.values()] == [
            CouncilRestConnector, GpFhirConnector, SchoolRestConnector]
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


async def test_close_all_takes_any_iterable_and_unused_connectors(sims):
    connectors = build_connectors(settings_for(sims.urls()))
    await close_all(list(connectors.values()))
    await close_all(connectors)


async def test_close_all_closes_the_rest_when_one_fails(sims):
    class Broken(SchoolRestConnector):
        async def close(self):
            await super().close()
            raise RuntimeError("close failed")

    connectors = build_connectors(settings_for(sims.urls()))
    broken = Broken("broken", sims.school.url)
    await broken.check()
    await connectors["gp"].check()
    with pytest.raises(ExceptionGroup) as caught:
        await close_all([broken, *connectors.values()])
    assert [str(e) for e in caught.value.exceptions] == ["close failed"]
    with pytest.raises(ConnectorConnectionError):
        await connectors["gp"].check()
