"""A system that is down, slow, failing or answering garbage costs only its own fields.

README "Sources that fail" and "Shielding" (the council's silence counts as
shielded); DESIGN §5 "Redis down means no cache, not no service".
"""

from __future__ import annotations

import pytest

from connectors.simulators import Malformed
from tests.integration.harness import ALL_SCOPES, errors_by_path, running_gateway
from tests.integration.support import (
    ALL_BUT_SHIELDED,
    SYSTEMS,
    expected_child,
    fields_of,
    record,
    sources_of,
)

# The fields only each system supplies (the others state name, date of birth, gender
# and address between them).
ONLY_FROM = {
    "gp": ("primaryCare",),
    "school": ("education", "carers"),
    "council": ("services",),
    # The ordinary child is unknown to youth justice: its silence loses no field, but it
    # records shielding, so the child counts as shielded (fail closed).
    "youth_justice": (),
}
RECORDS_SHIELDING = ("council", "youth_justice")
FAILURES = {
    "down": {"down": True},
    "error-rate": {"error_rate": 1.0},
    **{f"malformed-{m.value}": {"malformed": m} for m in Malformed},
}
# Past the 1 s connector timeout (roomy for a loaded machine); each costs that second.
SLOW = {"latency_ms": 1500}


def _break(gateway, system: str, knobs: dict) -> None:
    for name, value in knobs.items():
        setattr(getattr(gateway.sims, system).knobs, name, value)


def _cases() -> list:
    # Youth justice does not know the ordinary child: its answer is an empty array, which
    # wrong_types cannot spoil (there is no value in it to give the wrong type).
    cases = [pytest.param(s, k, id=f"{s}-{name}") for s in SYSTEMS
             for name, k in FAILURES.items()
             if (s, name) != ("youth_justice", "malformed-wrong_types")]
    cases += [pytest.param(s, SLOW, id=f"{s}-slow") for s in SYSTEMS]
    return cases


@pytest.mark.parametrize(("system", "knobs"), _cases())
async def test_a_failing_system_costs_only_its_own_fields(gateway, system, knobs):
    child = record(gateway, "ordinary")
    _break(gateway, system, knobs)
    body = await gateway.child("ordinary", scopes=ALL_SCOPES)
    served = body["data"]["child"]
    assert served is not None, body
    lost = ONLY_FROM[system]
    assert errors_by_path(body) == {f"child.{name}": "UPSTREAM_UNAVAILABLE" for name in lost}
    expected = expected_child(child)
    for name in lost:
        assert expected[name] is not None, "the healthy system would have supplied it"
        expected[name] = None
    assert fields_of(served) == expected
    assert sources_of(served) == {name: ("unavailable" if name == system else "ok", False)
                                  for name in SYSTEMS}
    assert served["shielded"] is (system in RECORDS_SHIELDING), "silence on shielding fails closed"


@pytest.mark.parametrize("knobs", [pytest.param(k, id=n) for n, k in FAILURES.items()])
async def test_council_silence_shields_an_unshielded_child(gateway, knobs):
    child = record(gateway, "ordinary")
    assert child.council is not None
    assert not child.council.shielded
    _break(gateway, "council", knobs)
    body = await gateway.child("ordinary", scopes=ALL_BUT_SHIELDED)
    served = body["data"]["child"]
    assert served["shielded"] is True
    assert child.carers
    # The carers in full: a carer's name or phone leads to the child as an address does.
    location = {"child.address", "child.carers", "child.education", "child.primaryCare"}
    assert errors_by_path(body) == {**dict.fromkeys(location, "SHIELDED"),
                                    "child.services": "UPSTREAM_UNAVAILABLE"}
    for name in ("address", "carers", "education", "primaryCare", "services"):
        assert served[name] is None
    assert served["name"] == {"given": list(child.given), "family": child.family}
    for value in (child.home.postcode, child.home.lines[0], child.school.name,
                  child.practice.name, *(c.phone for c in child.carers),
                  *(c.given for c in child.carers), *(c.relationship for c in child.carers)):
        assert value not in str(body)


async def test_all_systems_down_is_upstream_unavailable(gateway):
    for system in SYSTEMS:
        _break(gateway, system, {"down": True})
    body = await gateway.child("ordinary")
    assert body["data"] == {"child": None}
    assert errors_by_path(body) == {"child": "UPSTREAM_UNAVAILABLE"}


async def test_two_systems_down_still_serve_the_third(gateway):
    child = record(gateway, "ordinary")
    _break(gateway, "gp", {"down": True})
    _break(gateway, "council", {"malformed": Malformed.HTML})
    body = await gateway.child("ordinary")
    served = body["data"]["child"]
    assert served["education"]["school"]["name"] == child.school.name
    assert served["shielded"] is True
    # Only the GP and the council state an address: with both silent, it is lost too.
    assert errors_by_path(body) == dict.fromkeys(
        ("child.primaryCare", "child.services", "child.address"), "UPSTREAM_UNAVAILABLE")
    assert served["name"] == {"given": list(child.given), "family": child.family}
    assert sources_of(served) == {"gp": ("unavailable", False), "school": ("ok", False),
                                  "council": ("unavailable", False),
                                  "youth_justice": ("ok", False)}


async def test_redis_down_means_no_cache_not_no_service(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key,
                               cache={"redis_url": "redis://127.0.0.1:1/0"}) as gateway:
        child = record(gateway, "ordinary")
        for _ in range(2):
            body = await gateway.child("ordinary")
            assert "errors" not in body, body
            served = body["data"]["child"]
            assert fields_of(served) == expected_child(child)
            assert sources_of(served) == dict.fromkeys(SYSTEMS, ("ok", False))
        shielded = await gateway.child("shielded")
        assert "errors" not in shielded, shielded
        response = await gateway.client.get("/readyz")
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["cache"]["status"] == "unavailable"
        assert report["cache"]["kind"] == "redis"
        assert all(c["status"] == "ok" for c in report["connectors"].values())
