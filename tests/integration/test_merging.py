"""Four systems, one child: lists are unions with their sources, provenance says where each
released value came from, and nothing about a membership-sensitive system leaks."""

from __future__ import annotations

from tests.integration.harness import running_gateway
from tests.integration.support import ALL_BUT_SHIELDED, IDENTITY, SERVICES, record

MERGED = """name { given family } address { lines } shielded
  services { kind name source sources contact }
  provenance { field sources disagreeing unavailable }
  sources { connector status }"""


def provenance(child):
    return {p["field"]: p for p in child["provenance"]}


async def test_services_from_council_and_youth_justice_each_keep_their_source(gateway):
    child = record(gateway, "multi_service")
    assert child.council.involvements
    assert child.youth_justice.orders
    body = await gateway.child("multi_service", fields=MERGED)
    served = body["data"]["child"]
    assert "errors" not in body
    expected = {(i.kind, "council") for i in child.council.involvements} | {
        (o.kind, "youth_justice") for o in child.youth_justice.orders}
    assert {(s["kind"], s["source"]) for s in served["services"]} == expected
    assert all(s["sources"] == [s["source"]] for s in served["services"])
    assert provenance(served)["services"] == {
        "field": "services", "sources": ["council", "youth_justice"], "disagreeing": [],
        "unavailable": []}
    assert provenance(served)["name"]["sources"] == ["gp"]


async def test_youth_justice_down_keeps_the_councils_services_and_says_the_list_is_partial(
        gateway):
    child = record(gateway, "multi_service")
    gateway.sims.youth_justice.knobs.down = True
    body = await gateway.child("multi_service", fields=MERGED)
    served = body["data"]["child"]
    assert {s["source"] for s in served["services"]} == {"council"}
    assert len(served["services"]) == len(child.council.involvements)
    assert provenance(served)["services"]["unavailable"] == ["youth_justice"]
    assert served["shielded"] is True  # it records shielding and did not answer


async def test_a_membership_sensitive_system_is_never_named_without_services(gateway):
    body = await gateway.child("multi_service", scopes=IDENTITY, fields=MERGED.replace(
        "address { lines } ", "").replace("services { kind name source sources contact }", ""))
    served = body["data"]["child"]
    named = {s for p in served["provenance"] for s in p["sources"] + p["disagreeing"]}
    assert "youth_justice" not in named
    # The status list names every configured system, known to the child or not.
    assert {s["connector"] for s in served["sources"]} >= {"youth_justice"}
    with_services = await gateway.child("multi_service", scopes=f"{IDENTITY} {SERVICES}",
                                        purpose="EDUCATION", fields=MERGED.replace(
                                            "address { lines } ", ""))
    assert "youth_justice" in {s["source"] for s in with_services["data"]["child"]["services"]}


async def test_provenance_lists_only_released_fields(gateway):
    body = await gateway.child("shielded", scopes=ALL_BUT_SHIELDED, fields=MERGED)
    served = body["data"]["child"]
    assert served["address"] is None
    fields = set(provenance(served))
    assert "address" not in fields
    assert {"name", "services"} <= fields


async def test_a_configured_authority_decides_a_single_value(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key,
                               merge={"authority": {"name": ["council", "gp"],
                                                    "address": ["council"]}}) as gateway:
        body = await gateway.child("multi_service", fields=MERGED)
        served = provenance(body["data"]["child"])
        assert served["name"]["sources"] == ["council"]
        assert served["address"]["sources"] == ["council"]
