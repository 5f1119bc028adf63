"""Fixtures for the security suite: the integration harness's production-mode gateway.

`gateway` is the integration suite's (default settings: production mode, the
default limits and budgets). `fuzz_gateway` is the same gateway with the
harvesting limits out of the way (the property suite's GENEROUS budgets and
rate limits, generous connector timeouts), so that the fuzz measures the
release rules, not refusals for volume.
"""

import pytest

from tests.integration import conftest as integration
from tests.integration.harness import running_gateway
from tests.integration.support import connectors_config
from tests.property.conftest import GENEROUS

# the integration fixtures, found by pytest under these names
population = integration.population
signing_key = integration.signing_key
sims = integration.sims
jwks = integration.jwks
gateway = integration.gateway


@pytest.fixture
async def fuzz_gateway(sims, jwks, signing_key):
    slow_ok = {name: {"timeout_seconds": 10.0} for name in sims.urls()}
    async with running_gateway(sims, jwks, signing_key, budgets=GENEROUS,
                               connectors=connectors_config(sims, **slow_ok),
                               cache={"redis_timeout_seconds": 5.0}) as running:
        yield running
