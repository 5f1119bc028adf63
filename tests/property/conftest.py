"""The integration suite's fixtures, and a gateway whose harvesting limits stay out of the way.

The properties send thousands of requests from one subject about the same
few children: at the default rate limit (120 a minute) and budgets (20
children an hour) they would test the limits, which `tests/limits` covers,
instead of the release rules.

The simulators share the test's event loop with the gateway, so a long
garbage collection in the test process (hypothesis keeps a large heap: gen-2
pauses of 0.4-0.7 s were measured over 2,000 examples) would make the
harness's 0.5 s connector timeouts fire and every system look unavailable.
Source failures are `tests/integration/test_failures`' subject, so here the
timeouts are generous.
"""

import pytest

from tests.integration import conftest as integration
from tests.integration.harness import running_gateway
from tests.integration.support import connectors_config

# the integration fixtures, found by pytest under these names
population = integration.population
signing_key = integration.signing_key
sims = integration.sims
jwks = integration.jwks
redis_client = integration.redis_client

GENEROUS = {
    "default": {"subject_per_hour": 1_000_000, "subject_per_day": 1_000_000,
                "organisation_per_hour": 1_000_000, "organisation_per_day": 1_000_000},
    "subject_requests_per_minute": 1_000_000,
    "client_requests_per_minute": 1_000_000,
    "burst": 1_000_000,
}


@pytest.fixture
async def gateway(sims, jwks, signing_key):
    slow_ok = {name: {"timeout_seconds": 10.0} for name in sims.urls()}
    connectors = connectors_config(sims, **slow_ok)
    async with running_gateway(sims, jwks, signing_key, budgets=GENEROUS, connectors=connectors,
                               cache={"redis_timeout_seconds": 5.0}) as running:
        yield running
