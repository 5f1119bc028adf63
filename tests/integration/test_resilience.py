"""Through the gateway: a failing system's circuit opens, `/readyz` shows it, and it recovers.

The school's manifest here is the built-in one with a `[resilience]` table (as a council
would write it): two failed calls open the circuit, for a short time so the test is quick.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from connectors.manifest import manifest_path
from tests.integration.harness import SYSTEMS, errors_by_path, running_gateway

OPEN_SECONDS = 0.5


@pytest.fixture
async def gateway(sims, jwks, signing_key, tmp_path):
    manifest = tmp_path / "school.toml"
    manifest.write_text(manifest_path("school").read_text(encoding="utf-8") + (
        f"\n[resilience]\nattempts = 1\nbreaker_failures = 2\n"
        f"breaker_open_seconds = {OPEN_SECONDS}\n"), encoding="utf-8")
    urls = sims.urls()
    connectors = [{"name": n, "manifest": str(manifest) if n == "school" else n,
                   "base_url": urls[n], "timeout_seconds": 1.0} for n in SYSTEMS]
    async with running_gateway(sims, jwks, signing_key, connectors=connectors) as running:
        yield running


async def readiness(gateway):
    gateway.app.state.readiness = None  # past the 2 s reuse of the last report
    response = await gateway.client.get("/readyz")
    return response.json()


def school_hits(gateway):
    return sum(gateway.sims.school.hits.values())


def circuit_gauge():
    return REGISTRY.get_sample_value("contactpoint_upstream_circuit_state", {"system": "school"})


async def test_the_circuit_opens_shows_in_readyz_and_recovers(gateway, caplog):
    ready = await readiness(gateway)
    assert ready["status"] == "ready"
    seen = {n: (c["circuit"], c["error_rate"]) for n, c in ready["connectors"].items()}
    assert seen == dict.fromkeys(SYSTEMS, ("closed", 0.0))

    gateway.sims.school.knobs.error_rate = 1.0
    for _ in range(2):
        body = await gateway.child("ordinary")
        assert errors_by_path(body)["child.education"] == "UPSTREAM_UNAVAILABLE"
    school = (await readiness(gateway))["connectors"]["school"]
    assert (school["circuit"], school["error_rate"]) == ("open", 1.0)
    assert circuit_gauge() == 2
    assert "circuit school: closed -> open (recent error rate 100%)" in caplog.messages

    asked = school_hits(gateway)
    body = await gateway.child("ordinary")  # fails fast: the school is not asked
    assert errors_by_path(body)["child.education"] == "UPSTREAM_UNAVAILABLE"
    assert {s["connector"]: s["status"] for s in body["data"]["child"]["sources"]}[
        "school"] == "unavailable"
    assert school_hits(gateway) == asked

    gateway.sims.school.knobs.reset()
    deadline = time.monotonic() + 10 * OPEN_SECONDS
    while (await readiness(gateway))["connectors"]["school"]["circuit"] != "half_open":
        assert time.monotonic() < deadline, "the circuit did not become half-open"
        await asyncio.sleep(0.02)
    body = await gateway.child("ordinary")  # the probe: the school answers, the circuit closes
    assert "errors" not in body, body
    assert body["data"]["child"]["education"] is not None
    ready = await readiness(gateway)
    assert ready["connectors"]["school"]["circuit"] == "closed"
    assert ready["status"] == "ready"
    assert circuit_gauge() == 0
