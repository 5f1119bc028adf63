"""Misbehaving systems: every failure becomes one `ConnectorError`, and the connector recovers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from connectors.errors import (
    ConnectorConnectionError,
    ConnectorError,
    ConnectorProtocolError,
    ConnectorResponseError,
    ConnectorTimeoutError,
)
from connectors.simulators import Malformed
from gateway.core.facts import DemographicSearch
from tests.connectors.helpers import make_connector


def assert_no_personal_data(exc, child):
    text = f"{exc} {exc.detail} {exc!r}"
    for value in (child.nhs_number, child.family, *child.given, child.home.postcode):
        assert value not in text


async def fails(connector, child, error):
    with pytest.raises(error) as caught:
        await connector.fetch(child.nhs_number)
    assert caught.value.connector == connector.name
    assert_no_personal_data(caught.value, child)
    return caught.value


@pytest.fixture
def child(population):
    return population.child(population.fixtures()["ordinary"])


async def test_latency_past_the_timeout_is_a_timeout(each, child):
    connector, simulator = each
    simulator.knobs.latency_ms = 800
    await fails(connector, child, ConnectorTimeoutError)


async def test_latency_within_the_timeout_is_fine(each, child):
    connector, simulator = each
    simulator.knobs.latency_ms = 20
    assert (await connector.fetch(child.nhs_number)).nhs_number == child.nhs_number


async def test_server_errors_are_response_errors(each, child):
    connector, simulator = each
    simulator.knobs.error_rate = 1.0
    exc = await fails(connector, child, ConnectorResponseError)
    assert exc.status in (500, 503)
    assert exc.code == "UPSTREAM_UNAVAILABLE"


async def test_a_dropped_connection_is_a_connection_error(each, child):
    connector, simulator = each
    simulator.knobs.down = True
    await fails(connector, child, ConnectorConnectionError)
    with pytest.raises(ConnectorConnectionError):
        await connector.check()


@pytest.mark.parametrize("how", list(Malformed))
async def test_each_malformed_answer_is_a_protocol_error(each, child, how):
    connector, simulator = each
    simulator.knobs.malformed = how
    await fails(connector, child, ConnectorProtocolError)
    with pytest.raises(ConnectorProtocolError):
        await connector.search(DemographicSearch(child.family, child.date_of_birth))
    with pytest.raises(ConnectorProtocolError):
        await connector.check()


async def test_the_connector_recovers_when_the_system_does(each, child):
    connector, simulator = each
    for change in ({"down": True}, {"error_rate": 1.0}, {"malformed": "broken_json"},
                   {"latency_ms": 800}):
        simulator.knobs.update(change)
        with pytest.raises(ConnectorError):
            await connector.fetch(child.nhs_number)
        simulator.knobs.reset()
        assert (await connector.fetch(child.nhs_number)).nhs_number == child.nhs_number


async def test_cancellation_leaves_the_connector_usable(each, child):
    connector, simulator = each
    simulator.knobs.latency_ms = 300
    task = asyncio.create_task(connector.fetch(child.nhs_number))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    simulator.knobs.latency_ms = 0
    results = await asyncio.gather(*(connector.fetch(child.nhs_number) for _ in range(5)))
    assert {facts.nhs_number for facts in results} == {child.nhs_number}


async def test_cancelling_many_requests_midway_leaves_the_pool_healthy(each, child):
    connector, simulator = each
    simulator.knobs.latency_ms = 30
    tasks = [asyncio.create_task(connector.fetch(child.nhs_number)) for _ in range(20)]
    await asyncio.sleep(0.03)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    simulator.knobs.latency_ms = 0
    assert (await connector.fetch(child.nhs_number)).nhs_number == child.nhs_number


async def test_a_refused_connection_is_a_connection_error(child):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connector = make_connector("school", f"http://127.0.0.1:{port}")
    try:
        await fails(connector, child, ConnectorConnectionError)
    finally:
        await connector.close()


async def test_a_closed_connector_refuses_work(each, child):
    connector, _ = each
    assert (await connector.fetch(child.nhs_number)) is not None
    await connector.close()
    exc = await fails(connector, child, ConnectorConnectionError)
    assert "closed" in str(exc)
    await connector.close()


async def test_closing_an_unused_connector_is_fine(sims):
    connector = make_connector("gp", sims.gp.url)
    await connector.close()


async def test_gp_fallback_read_failing_fails_the_lookup(population, child):
    from connectors.simulators import run_simulators

    async with run_simulators(population, include_supported=False) as sims:
        connector = make_connector("gp", sims.gp.url)
        try:
            sims.gp.knobs.malformed = Malformed.WRONG_SHAPE
            with pytest.raises(ConnectorProtocolError):
                await connector.fetch(child.nhs_number)
        finally:
            await connector.close()
