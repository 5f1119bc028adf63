"""The integration suite's fixtures, and a gateway whose harvesting limits stay out of the way.

The properties send thousands of requests from one subject about the same
few children: at the default rate limit (120 a minute) and budgets (20
children an hour) they would test the limits, which `tests/limits` covers,
instead of the release rules.
"""

import pytest

from tests.integration import conftest as integration
from tests.integration.harness import running_gateway

# the integration fixtures, found by pytest under these names
population = integration.population
signing_key = integration.signing_key
sims = integration.sims
jwks = integration.jwks
redis_client = integration.redis_client

GENEROUS = {
    "default": {"subject_per_hour": 1_000_000, "subject_per_day": 1_000_000,
                "organisation_per_day": 1_000_000},
    "subject_requests_per_minute": 1_000_000,
    "client_requests_per_minute": 1_000_000,
    "burst": 1_000_000,
}


@pytest.fixture
async def gateway(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, budgets=GENEROUS) as running:
        yield running
