"""Fixtures for the auth tests: session keys, a live JWKS server, a cache and a validator."""

from __future__ import annotations

import pytest

from gateway.auth import JwksCache, TokenValidator
from tests.auth.helpers import FakeClock, JwksServer, TestKeys, auth_settings, make_keys


@pytest.fixture(scope="session")
def keys() -> TestKeys:
    return make_keys()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(keys):
    server = JwksServer()
    server.publish(keys.es256, keys.rs256, keys.ed25519, keys.es512)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def settings(server):
    return auth_settings(server.url)


@pytest.fixture
async def jwks(settings, clock):
    async with JwksCache(settings, clock=clock) as cache:
        yield cache


@pytest.fixture
def validator(settings, jwks, clock):
    return TokenValidator(settings, jwks, clock=clock)
