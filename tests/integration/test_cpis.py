"""The responsible council is told (CP-IS style) when a protected child's record is released.

Real parts throughout: the council simulator takes the notifications over HTTP
(`POST /cp-is/notifications`), the outbox is a SQLite file in the test's folder, and
"killed between release and delivery" is a `contactpoint serve` process sent SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from connectors.simulators.council import NOTIFICATIONS, NOTIFICATIONS_STATUS
from gateway.accountability.notifications import PAYLOAD_KEYS
from tests.integration.harness import FIND_QUERY, Gateway, running_gateway
from tests.integration.support import record
from tests.integration.test_socket_and_cli import free_port
from tests.integration.test_two_processes import wait_healthy
from tests.integration.test_workers import CLI, ENV, exit_status, production_config

PROTECTION = "protection { childProtectionPlan lookedAfter responsibleAuthority }"
FIELDS = f"name {{ family }} address {{ postcode }} {PROTECTION}"
SCOPES = "child.identity.read child.contact.read child.protection.read"


def taken(gateway) -> list:
    """What the council simulator has been told, in order."""
    return gateway.sims.council.app[NOTIFICATIONS]


async def told(gateway, count: int, seconds: float = 5.0) -> list:
    """The council's notifications once there are `count` (delivering what is due meanwhile)."""
    async with asyncio.timeout(seconds):
        while len(taken(gateway)) < count:
            await gateway.runtime.outbox.drain()
            await asyncio.sleep(0.01)
    return taken(gateway)


async def settled(gateway) -> None:
    """Nothing left to deliver: every message due now has been tried."""
    await gateway.runtime.outbox.drain()


@pytest.fixture
async def cpis(sims, jwks, signing_key, tmp_path):
    async with running_gateway(sims, jwks, signing_key,
                               outbox={"sqlite_path": str(tmp_path / "outbox.db"),
                                       "poll_seconds": 0.05}) as gateway:
        yield gateway


async def look(gateway: Gateway, fixture_or_nhs: str, organisation: str = "org-a",
               roles: tuple[str, ...] = ("social-worker",)) -> dict:
    nhs = gateway.fixtures.get(fixture_or_nhs, fixture_or_nhs)
    token = gateway.token(SCOPES, org=organisation, roles=list(roles))
    query = ("query($id: ID!) { child(id: $id, purpose: SAFEGUARDING, caseReference: \"C-9\")"
             f" {{ {FIELDS} }} }}")
    response = await gateway.post({"query": query, "variables": {"id": gateway.id_for(nhs)}},
                                  token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["child"]


async def test_the_flags_are_served_under_their_own_scope(cpis):
    child = await look(cpis, "protection_plan")
    assert child["protection"] == {"childProtectionPlan": True, "lookedAfter": False,
                                   "responsibleAuthority": "council"}
    without = await cpis.child("protection_plan", scopes="child.identity.read",
                               fields=f"name {{ family }} {PROTECTION}")
    assert without["data"]["child"]["protection"] is None
    assert without["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    education = await cpis.child("protection_plan", scopes=SCOPES, purpose="EDUCATION",
                                 fields=f"name {{ family }} {PROTECTION}")
    assert education["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_one_notification_per_organisation_per_day(cpis):
    await look(cpis, "protection_plan")
    await look(cpis, "protection_plan")                      # again, the same day
    [first] = await told(cpis, 1)
    await look(cpis, "protection_plan", organisation="org-b", roles=("gp", "duty"))
    notes = await told(cpis, 2)
    await settled(cpis)
    assert len(taken(cpis)) == 2
    assert [n.body["organisation"] for n in notes] == ["org-a", "org-b"]
    assert notes[1].body["roles"] == ["duty", "gp"]
    # Delivered: the outbox keeps the council's reference and no longer the payload.
    assert first.reference.startswith("CPIS-")


async def test_a_looked_after_child_is_told_and_an_ordinary_one_is_not(cpis):
    await look(cpis, "ordinary")
    child = await look(cpis, "looked_after")
    assert child["protection"]["lookedAfter"] is True
    [note] = await told(cpis, 1)
    await settled(cpis)
    assert len(taken(cpis)) == 1
    assert note.body["nhs_number"] == cpis.fixtures["looked_after"]


async def test_the_council_is_told_only_who_looked_why_and_what(cpis):
    await look(cpis, "protection_plan", roles=("social-worker",))
    [note] = await told(cpis, 1)
    body = note.body
    assert set(body) == PAYLOAD_KEYS
    assert (body["nhs_number"], body["organisation"], body["roles"], body["purpose"],
            body["fields"]) == (cpis.fixtures["protection_plan"], "org-a", ["social-worker"],
                                "SAFEGUARDING", ["contact", "identity", "protection"])
    assert "user-7" not in str(body)                          # the looker's own name: not told
    child = record(cpis, "protection_plan")
    other_systems = {child.family, *child.given, child.home.postcode, child.school.name,
                     child.practice.name, *(c.phone for c in child.carers)}
    assert not {value for value in other_systems if value in str(body)}


async def test_a_council_not_taking_notifications_delays_delivery_never_the_response(cpis):
    cpis.sims.council.app[NOTIFICATIONS_STATUS][0] = 503
    started = time.perf_counter()
    await look(cpis, "protection_plan")
    answered = time.perf_counter() - started
    await settled(cpis)                                       # tried, refused
    assert taken(cpis) == []
    assert answered < 1.0                                     # the connector timeout is 1 s
    cpis.sims.council.app[NOTIFICATIONS_STATUS][0] = 201
    [note] = await told(cpis, 1)
    assert note.body["nhs_number"] == cpis.fixtures["protection_plan"]


async def test_a_gateway_killed_between_release_and_delivery_still_tells_the_council(
        sims, jwks, signing_key, tmp_path):
    outbox = tmp_path / "outbox.db"
    config = production_config(tmp_path, sims, jwks)
    with config.open("a") as file:
        file.write(f'\n[outbox]\nsqlite_path = "{outbox}"\npoll_seconds = 0.05\n')
    sims.council.app[NOTIFICATIONS_STATUS][0] = 503           # released, not yet delivered
    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen([*CLI, "serve", "--config", str(config), "--port", str(port)],
                                   cwd=tmp_path, env=ENV, stdout=log, stderr=log)
    helper = Gateway(None, None, sims, signing_key, sims.population.fixtures(), None)
    nhs = helper.fixtures["protection_plan"]
    token = helper.token(SCOPES, org="org-a", roles=["social-worker"])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            await wait_healthy(client, process)
            headers = {"Authorization": f"Bearer {token}"}
            found = await client.post("/graphql", headers=headers, json={
                "query": FIND_QUERY, "variables": {"s": {"nhsNumber": nhs}}})
            child_id = found.json()["data"]["findChildren"][0]["id"]
            query = f"query($id: ID!) {{ child(id: $id, purpose: SAFEGUARDING) {{ {FIELDS} }} }}"
            released = await client.post("/graphql", headers=headers, json={
                "query": query, "variables": {"id": child_id}})
            assert released.status_code == 200, released.text
            assert released.json()["data"]["child"]["protection"]["childProtectionPlan"]
            refused = sims.council.hits["/cp-is/notifications"]
            async with asyncio.timeout(10):                   # the gateway tried, and failed
                while sims.council.hits["/cp-is/notifications"] == refused:
                    await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            assert await exit_status(process, 10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert sims.council.app[NOTIFICATIONS] == []
    sims.council.app[NOTIFICATIONS_STATUS][0] = 201
    async with running_gateway(sims, jwks, signing_key,
                               outbox={"sqlite_path": str(outbox)}) as gateway:
        [note] = await told(gateway, 1, seconds=10)
    assert note.body["nhs_number"] == nhs
    assert note.body["organisation"] == "org-a"


async def test_an_authority_with_no_system_in_service_is_alerted_and_kept(cpis):
    elsewhere = next(c for c in cpis.sims.population.children
                     if c.protection is not None and c.protection.responsible_authority != "council"
                     and c.council is not None and not c.council.shielded)
    child = await look(cpis, elsewhere.nhs_number)
    assert child["protection"]["responsibleAuthority"] == elsewhere.protection.responsible_authority
    await look(cpis, elsewhere.nhs_number)                    # again: no second alert
    await settled(cpis)
    assert taken(cpis) == []
    alerts = [json.loads(line) for line in
              Path(cpis.settings.alerts.path).read_text().splitlines()]
    unreachable = [a for a in alerts if a["kind"] == "responsible_authority_unreachable"]
    assert len(unreachable) == 1
    assert elsewhere.nhs_number not in json.dumps(unreachable)
    assert unreachable[0]["detail"] == {"reason": "no endpoint"}
