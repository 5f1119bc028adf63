"""A record assembled live from all three systems, through the HTTP endpoint."""

from tests.integration.harness import FIND_QUERY


async def test_find_then_read_a_child_from_all_three_systems(gateway):
    nhs = gateway.fixtures["ordinary"]
    found = await gateway.gql(FIND_QUERY, {"s": {"nhsNumber": nhs}})
    assert "errors" not in found
    [match] = found["data"]["findChildren"]
    assert nhs not in match["id"]
    body = await gateway.child(nhs)
    assert "errors" not in body, body
    child = body["data"]["child"]
    assert child["nhsNumber"] == nhs
    assert child["education"]["school"]["name"]
    assert child["primaryCare"]["practice"]["name"]
    assert child["services"]
    assert {s["connector"]: s["status"] for s in child["sources"]} == {
        "gp": "ok", "school": "ok", "council": "ok", "youth_justice": "ok"}
