"""Shared fixtures: one synthetic population, the three simulators on loopback, connectors."""

from __future__ import annotations

import aiohttp
import pytest

from connectors.rest_json import RestJsonConnector
from connectors.simulators import Population, run_simulators
from tests.connectors.helpers import KINDS, SIZE, TODAY, make_connector


@pytest.fixture(scope="session")
def population():
    return Population.generate(seed=2026, size=SIZE, today=TODAY)


@pytest.fixture
async def sims(population):
    async with run_simulators(population, shutdown_timeout=0.2) as running:
        yield running


@pytest.fixture
async def gp(sims):
    connector = make_connector("gp", sims.gp.url)
    yield connector
    await connector.close()


@pytest.fixture
async def school(sims):
    connector = make_connector("school", sims.school.url)
    yield connector
    await connector.close()


@pytest.fixture
async def council(sims):
    connector = make_connector("council", sims.council.url)
    yield connector
    await connector.close()


@pytest.fixture(params=KINDS)
async def each(request, sims):
    """(connector, its simulator) for each kind in turn."""
    simulator = getattr(sims, request.param)
    connector = make_connector(request.param, simulator.url, timeout=0.5)
    yield connector, simulator
    await connector.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def connect():
    """`connect(manifest)`: a REST JSON connector closed after the test."""
    built = []

    def connect(manifest):
        connector = RestJsonConnector(manifest)
        built.append(connector)
        return connector

    yield connect
    for connector in built:
        await connector.close()
