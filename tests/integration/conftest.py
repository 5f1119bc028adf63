"""Fixtures: a small synthetic population, live simulators, a JWKS, a gateway on real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from connectors.simulators import Population, run_simulators
from gateway.web.runtime import london_today
from tests.auth.helpers import JwksServer
from tests.integration.harness import REDIS_URL, running_gateway


@pytest.fixture(scope="session")
def population():
    return Population.generate(seed=11, size=400, today=london_today())


@pytest.fixture(scope="session")
def signing_key():
    from joserfc.jwk import ECKey

    return ECKey.generate_key("P-256", {"kid": "it-1", "use": "sig"})


@pytest.fixture
async def sims(population):
    async with run_simulators(population, shutdown_timeout=0.2) as running:
        yield running


@pytest.fixture
async def jwks(signing_key):
    server = JwksServer()
    server.publish(signing_key)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def gateway(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key) as running:
        yield running


@pytest.fixture
async def redis_client():
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


# PostgreSQL for the audit log: the same fresh per-session database the audit tests use.
from tests.audit.conftest import pg, pg_backend  # noqa: E402, F401


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_options(request):
    """Audit settings for each store in turn (set up outside the event loop)."""
    if request.param == "sqlite":
        return {}
    return dict(request.getfixturevalue("pg_backend").options)


@pytest.fixture
async def store_gateway(audit_options, sims, jwks, signing_key):
    """The gateway with its audit log in each store in turn."""
    async with running_gateway(sims, jwks, signing_key, audit=audit_options) as running:
        yield running
