"""Challenging a released value: routed by provenance, delivered through the durable outbox.

README "Challenging a value". Acceptance: a challenge reaches the right system (and only
it) for a value from each of the four systems; the outbox survives a gateway restart; a
system down delays delivery, never the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from connectors.manifest import BUILTIN_DIR
from connectors.simulators.challenges import CHALLENGES
from tests.integration.harness import SYSTEMS, running_gateway

if TYPE_CHECKING:
    from pathlib import Path

MAKE = ("mutation($id: ID!, $p: Purpose!, $f: String!, $r: String!, $ref: String) {"
        " challenge(childId: $id, purpose: $p, field: $f, reason: $r, reference: $ref)"
        " { id state system contact } }")
STATE = ("query($id: ID!) { challenge(id: $id)"
         " { id state system sentAt acknowledgedAt resolvedAt } }")
READ = ("query($id: ID!, $p: Purpose!) { child(id: $id, purpose: $p) {"
        " address { postcode } education { school { name } }"
        " primaryCare { practice { name } } services { kind name source } } }")
REASON = "QX-REASON-7731: the family moved in March; the worker has the new address."
FAST = {"poll_seconds": 0.05, "max_backoff_seconds": 0.2}


def _taken(gateway: Any) -> dict[str, int]:
    return {name: len(getattr(gateway.sims, name).app[CHALLENGES]) for name in SYSTEMS}


async def _until(condition: Any, seconds: float = 10.0) -> None:
    """Wait for `condition()` with a deadline (the dispatcher delivers in the background)."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


async def _read(gateway: Any, nhs: str, purpose: str = "SAFEGUARDING") -> dict[str, Any]:
    body = await gateway.gql(READ, {"id": gateway.id_for(nhs), "p": purpose})
    return body["data"]["child"]


async def _make(gateway: Any, nhs: str, field: str, *, purpose: str = "SAFEGUARDING",
                token: str | None = None) -> dict[str, Any]:
    variables = {"id": gateway.id_for(nhs), "p": purpose, "f": field, "r": REASON,
                 "ref": "CASE-77"}
    body: dict[str, Any] = await gateway.gql(MAKE, variables, token=token)
    return body


@contextlib.asynccontextmanager
async def _fast_gateway(sims: Any, jwks: Any, key: Any, **overrides: Any) -> Any:
    outbox = {**FAST, **overrides.pop("outbox", {})}
    async with running_gateway(sims, jwks, key, outbox=outbox, **overrides) as gateway:
        yield gateway


def _service_field(child: dict[str, Any], system: str) -> str:
    index = next(i for i, s in enumerate(child["services"]) if s["source"] == system)
    return f"Child.services[{index}]"


@pytest.mark.parametrize("system", SYSTEMS)
async def test_a_challenge_reaches_the_system_that_supplied_the_value_and_only_it(
        sims, jwks, signing_key, system):
    async with _fast_gateway(sims, jwks, signing_key) as gateway:
        nhs = gateway.fixtures["multi_service"]
        child = await _read(gateway, nhs)
        field = {"gp": "Child.primaryCare.practice.name",
                 "school": "Child.education.school.name"}.get(system) or _service_field(
                     child, system)
        body = await _make(gateway, nhs, field)
        made = body["data"]["challenge"]
        assert (made["state"], made["system"]) == ("PENDING", system)
        assert made["contact"]
        await _until(lambda: _taken(gateway)[system] == 1)
        assert _taken(gateway) == {name: int(name == system) for name in SYSTEMS}
        [taken] = getattr(gateway.sims, system).app[CHALLENGES]
        assert (taken.body["nhsNumber"], taken.body["field"], taken.body["reason"],
                taken.body["reference"]) == (nhs, field, REASON, "CASE-77")
        state = (await gateway.gql(STATE, {"id": made["id"]}))["data"]["challenge"]
        assert (state["state"], state["system"]) == ("ACKNOWLEDGED", system)
        assert state["sentAt"]
        assert state["acknowledgedAt"]
        assert state["resolvedAt"] is None


async def test_the_source_resolving_it_shows_in_the_state(sims, jwks, signing_key):
    async with _fast_gateway(sims, jwks, signing_key) as gateway:
        nhs = gateway.fixtures["ordinary"]
        await _read(gateway, nhs)
        made = (await _make(gateway, nhs, "Child.education"))["data"]["challenge"]
        await _until(lambda: _taken(gateway)["school"] == 1)
        [taken] = sims.school.app[CHALLENGES]
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{sims.school.url}/_sim/challenges/{taken.id}/resolve")
            assert answer.status_code == 200
        state = (await gateway.gql(STATE, {"id": made["id"]}))["data"]["challenge"]
        assert state["state"] == "RESOLVED"
        assert state["resolvedAt"] is not None


async def test_only_someone_released_the_field_under_that_purpose_may_challenge(gateway):
    nhs = gateway.fixtures["ordinary"]
    never_read = await _make(gateway, nhs, "Child.address")
    assert never_read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await gateway.child("ordinary", purpose="EDUCATION", fields="id name { family }")
    other_field = await _make(gateway, nhs, "Child.address", purpose="EDUCATION")
    assert other_field["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await gateway.child("ordinary", purpose="EDUCATION")
    other_purpose = await _make(gateway, nhs, "Child.address", purpose="SAFEGUARDING")
    assert other_purpose["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    someone_else = await _make(gateway, nhs, "Child.address", purpose="EDUCATION",
                               token=gateway.token(sub="another-practitioner"))
    assert someone_else["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    allowed = await _make(gateway, nhs, "Child.address", purpose="EDUCATION")
    assert allowed["data"]["challenge"]["state"] == "PENDING"
    events = await gateway.runtime.accountability.history(nhs, 50)
    challenges = [(e.outcome, e.released, e.sources) for e in events
                  if e.action == "challenge.create"]
    assert challenges[0] == ("applied", ("Child.address",),
                             (allowed["data"]["challenge"]["system"],))
    assert [c[0] for c in challenges[1:]] == ["refused"] * 4


async def test_the_child_or_parent_may_challenge_through_subject_self(gateway):
    nhs = gateway.fixtures["ordinary"]
    own = gateway.token("subject.self", subject_nhs_number=nhs)
    body = await _make(gateway, nhs, "Child.primaryCare", token=own)
    assert body["data"]["challenge"]["system"] == "gp"
    other = gateway.token("subject.self", subject_nhs_number=gateway.fixtures["shielded"])
    refused = await _make(gateway, nhs, "Child.primaryCare", token=other)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_only_the_challenger_can_read_the_state(gateway):
    nhs = gateway.fixtures["ordinary"]
    await _read(gateway, nhs)
    made = (await _make(gateway, nhs, "Child.education"))["data"]["challenge"]
    theirs = await gateway.gql(STATE, {"id": made["id"]},
                               token=gateway.token(sub="another-practitioner"))
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    last = made["id"][-1]
    forged_id = made["id"][:-1] + ("1" if last == "0" else "0")  # never the id itself
    forged = await gateway.gql(STATE, {"id": forged_id})
    assert forged["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_system_down_delays_delivery_never_the_answer(sims, jwks, signing_key):
    async with _fast_gateway(sims, jwks, signing_key) as gateway:
        nhs = gateway.fixtures["ordinary"]
        await _read(gateway, nhs)
        sims.school.knobs.down = True
        started = time.monotonic()
        made = (await _make(gateway, nhs, "Child.education"))["data"]["challenge"]
        assert time.monotonic() - started < 2.0  # at most the school's 1 s timeout on the read
        assert (made["state"], made["system"]) == ("PENDING", "school")
        outbox = gateway.runtime.outbox
        message_id = made["id"].split(".")[0]
        async with asyncio.timeout(10):  # the dispatcher tries, fails, backs off, tries again
            while (await outbox.state(message_id)).attempts < 2:
                await asyncio.sleep(0.02)
        delivery = await outbox.state(message_id)
        assert (delivery.state, delivery.reference) == ("pending", None)
        assert delivery.last_error is not None
        assert _taken(gateway)["school"] == 0
        state = (await gateway.gql(STATE, {"id": made["id"]}))["data"]["challenge"]
        assert state["state"] == "PENDING"
        sims.school.knobs.down = False
        await outbox.drain()
        await _until(lambda: _taken(gateway)["school"] == 1)
        state = (await gateway.gql(STATE, {"id": made["id"]}))["data"]["challenge"]
        assert state["state"] == "ACKNOWLEDGED"


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


async def test_the_outbox_survives_a_restart_and_keeps_no_reason_nor_nhs_number(
        sims, jwks, signing_key, tmp_path):
    stores = {"outbox": {"sqlite_path": str(tmp_path / "outbox.db")},
              "audit": {"sqlite_path": str(tmp_path / "audit.db")}}
    nhs = sims.population.fixtures()["ordinary"]
    async with _fast_gateway(sims, jwks, signing_key, **stores) as gateway:
        await _read(gateway, nhs)
        sims.school.knobs.down = True
        made = (await _make(gateway, nhs, "Child.education"))["data"]["challenge"]
        assert made["state"] == "PENDING"
    assert _taken(gateway)["school"] == 0
    assert REASON.encode() not in _files(tmp_path)  # encrypted while it waits
    sims.school.knobs.down = False
    async with _fast_gateway(sims, jwks, signing_key, **stores) as restarted:
        await _until(lambda: _taken(restarted)["school"] == 1)
        state = (await restarted.gql(STATE, {"id": made["id"]}))["data"]["challenge"]
        assert state["state"] == "ACKNOWLEDGED"
    raw = _files(tmp_path)
    assert REASON.encode() not in raw
    assert b"QX-REASON" not in raw
    assert nhs.encode() not in raw


async def test_a_system_without_a_challenge_endpoint_is_refused_naming_its_contact(
        sims, jwks, signing_key, tmp_path):
    manifest = tmp_path / "school.toml"
    text = (BUILTIN_DIR / "school.toml").read_text(encoding="utf-8")
    manifest.write_text(text.replace('path = "/challenges"\n', ""), encoding="utf-8")
    connectors = [{"name": n, "manifest": str(manifest) if n == "school" else n,
                   "base_url": sims.urls()[n], "timeout_seconds": 1.0} for n in SYSTEMS]
    async with _fast_gateway(sims, jwks, signing_key, connectors=connectors) as gateway:
        nhs = gateway.fixtures["ordinary"]
        await _read(gateway, nhs)
        body = await _make(gateway, nhs, "Child.education.school.name")
        [error] = body["errors"]
        assert error["extensions"]["code"] == "CHALLENGES_NOT_TAKEN"
        assert error["message"] == ("The school system takes no challenges through the "
                                    "gateway; contact: the school office (data protection "
                                    "lead).")
        await gateway.runtime.outbox.drain()
        assert _taken(gateway) == dict.fromkeys(SYSTEMS, 0)
        events = await gateway.runtime.accountability.history(nhs, 10)
        assert next((e.action, e.outcome, e.sources) for e in events) == (
            "challenge.create", "refused", ("school",))


@pytest.mark.parametrize(("field", "reason"), [
    ("Child.nope", REASON), ("Address.lines", REASON), ("Child.address[0]", REASON),
    ("Child.address", ""), ("Child.address", "x" * 2_001)])
async def test_bad_fields_and_reasons_are_bad_user_input(gateway, field, reason):
    nhs = gateway.fixtures["ordinary"]
    body = await gateway.gql(MAKE, {"id": gateway.id_for(nhs), "p": "SAFEGUARDING",
                                    "f": field, "r": reason})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_nothing_is_sent_that_the_audit_log_does_not_show(sims, jwks, signing_key,
                                                                 tmp_path):
    down = {"sqlite_path": str(tmp_path / "no-such-folder" / "audit.db"), "timeout_seconds": 0.5}
    async with _fast_gateway(sims, jwks, signing_key, audit=down) as gateway:
        nhs = gateway.fixtures["ordinary"]
        own = gateway.token("subject.self", subject_nhs_number=nhs)
        response = await gateway.post({"query": MAKE, "variables": {
            "id": gateway.id_for(nhs), "p": "SAFEGUARDING", "f": "Child.primaryCare",
            "r": REASON}}, token=own)
        assert "AUDIT_UNAVAILABLE" in response.text
        await gateway.runtime.outbox.drain()
        assert _taken(gateway) == dict.fromkeys(SYSTEMS, 0)


BY_NUMBER = ("mutation($n: String, $id: ID) { challenge(nhsNumber: $n, childId: $id, "
             "purpose: SAFEGUARDING, field: \"Child.primaryCare\", reason: \"Wrong surgery\") "
             "{ system state } }")


async def test_the_child_or_parent_may_name_the_child_by_nhs_number(gateway):
    """A child or parent has no childId (those come from a practitioner's search)."""
    nhs = gateway.fixtures["ordinary"]
    own = gateway.token("subject.self", subject_nhs_number=nhs)
    made = await gateway.gql(BY_NUMBER, {"n": nhs}, token=own)
    assert made["data"]["challenge"] == {"system": "gp", "state": "PENDING"}
    other = await gateway.gql(BY_NUMBER, {"n": gateway.fixtures["shielded"]}, token=own)
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    practitioner = await gateway.gql(BY_NUMBER, {"n": nhs})
    assert practitioner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    both = await gateway.gql(BY_NUMBER, {"n": nhs, "id": gateway.id_for(nhs)}, token=own)
    assert both["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
