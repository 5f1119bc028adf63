"""The static cost limit refuses a document built to multiply work, before anything runs."""

from __future__ import annotations

from tests.integration.harness import CHILD_FIELDS, running_gateway


def children(gateway, count, fields=CHILD_FIELDS):
    nhs = gateway.fixtures["ordinary"]
    roots = " ".join(f'c{n}: child(id: "{gateway.id_for(nhs)}", purpose: SAFEGUARDING, '
                     f'caseReference: "CASE-1") {{ {fields} }}' for n in range(count))
    return f"query {{ {roots} }}"


async def test_a_few_full_records_pass_and_many_are_refused_unrun(gateway):
    ok = await gateway.gql(children(gateway, 2))
    assert ok["data"]["c0"]["name"]
    before = sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())
    refused = await gateway.gql(children(gateway, 9))
    assert refused.get("data") is None
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "over the limit of 1500" in error["message"]
    after = sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())
    assert after == before, "a refused document reaches no system"


async def test_the_limit_is_configured(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, limits={"max_cost": 100}) as gateway:
        refused = await gateway.gql(children(gateway, 1))
        assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        ok = await gateway.gql(children(gateway, 1, "name { family }"))
        assert ok["data"]["c0"]["name"]
