"""Redis round trips per request, counted by the client's own counter, with every protection on.

A cache hit costs one round trip (replay check, rate limit, budget charge and
cache read in one script call), a miss two at most: its write-back is not
awaited, and leaves with the next request's send, or alone soon after. A refusal in
that call moves nothing after it: no budget charged, no system asked. With
Redis down every part falls back as it does on its own.
"""

from __future__ import annotations

import asyncio

import pytest
from joserfc.jwk import ECKey
from prometheus_client import REGISTRY

from gateway.auth.dpop import make_proof
from gateway.cache.line import POST_DELAY_SECONDS
from tests.integration.harness import CHILD_QUERY, FIND_QUERY, running_gateway
from tests.integration.support import total_hits

URL = "http://gateway.test/graphql"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def round_trips() -> float:
    return REGISTRY.get_sample_value("contactpoint_redis_round_trips_total") or 0.0


@pytest.fixture(scope="module")
def client_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


async def ask_child(gateway, nhs: str, *, key: ECKey | None = None, token: str | None = None,
                    proof: str | None = None):
    """POST `child` for `nhs`: a bearer token, or (with `key`) a DPoP-bound one and its proof."""
    body = {"query": CHILD_QUERY,
            "variables": {"id": gateway.id_for(nhs), "purpose": "SAFEGUARDING", "case": "C-1"}}
    if key is None:
        headers = {"Authorization": f"Bearer {gateway.token()}"}
    else:
        token = token or gateway.token(cnf={"jkt": key.thumbprint()})
        headers = {"Authorization": f"DPoP {token}",
                   "DPoP": proof or make_proof(key, "POST", URL, token)}
    return await gateway.client.post("/graphql", json=body, headers=headers)


async def charged(gateway, redis_client) -> int:
    """Distinct children in the caller's subject-hour budget windows."""
    prefix = gateway.settings.cache.key_prefix
    total = 0
    async for key in redis_client.scan_iter(match=f"{prefix}b:sh:*"):
        if not key.endswith((b":warned", b":exceeded")):
            total += await redis_client.scard(key)
    return total


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
async def test_a_miss_costs_two_round_trips_and_a_hit_one(gateway, client_key, dpop,
                                                          monkeypatch):
    # A posted write-back waits for the next send; the timer that sends it alone (5 ms)
    # is pushed out of the test's reach, so a slow machine cannot fire it between the two
    # requests and the count says what the requests themselves sent.
    monkeypatch.setattr("gateway.cache.line.POST_DELAY_SECONDS", 30.0)
    key = client_key if dpop else None
    ordinary, other = gateway.fixtures["ordinary"], gateway.fixtures["school_only"]
    warm = await ask_child(gateway, other, key=key)  # connections opened, scripts loaded
    assert warm.status_code == 200, warm.text
    await gateway.runtime.store.settle()  # its write-back sent and answered

    before = round_trips()
    miss = await ask_child(gateway, ordinary, key=key)
    after_miss = round_trips()
    hit = await ask_child(gateway, ordinary, key=key)
    after_hit = round_trips()

    assert miss.status_code == 200, miss.text
    assert hit.status_code == 200, hit.text
    assert "errors" not in hit.json(), hit.text
    sources = hit.json()["data"]["child"]["sources"]
    assert any(s["fromCache"] for s in sources)
    assert after_miss - before == 1  # its write-back is posted, not yet sent
    assert after_hit - after_miss == 1  # the hit's send carried it, before its read
    await gateway.runtime.store.settle()
    assert round_trips() == after_hit  # nothing was left to send


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
async def test_a_miss_alone_sends_its_write_back_in_a_second_round_trip(gateway, client_key,
                                                                       dpop):
    key = client_key if dpop else None
    warm = await ask_child(gateway, gateway.fixtures["school_only"], key=key)
    assert warm.status_code == 200, warm.text
    await gateway.runtime.store.settle()

    before = round_trips()
    miss = await ask_child(gateway, gateway.fixtures["ordinary"], key=key)
    assert miss.status_code == 200, miss.text
    for _ in range(100):  # nothing else is sent: the write-back's timer sends it
        if round_trips() - before == 2:
            break
        await asyncio.sleep(POST_DELAY_SECONDS)
    assert round_trips() - before == 2
    await gateway.runtime.store.settle()  # answered; settling sends nothing more
    assert round_trips() - before == 2


async def test_find_children_by_nhs_number_costs_at_most_two(gateway):
    body = {"query": FIND_QUERY, "variables": {"s": {"nhsNumber": gateway.fixtures["ordinary"]}}}
    await gateway.post(body)
    before = round_trips()
    response = await gateway.post(body)
    assert response.status_code == 200, response.text
    assert round_trips() - before == 1  # cached by the first


async def test_a_request_with_no_child_still_passes_the_rate_limit_in_one_round_trip(gateway):
    await gateway.post({"query": "{ __typename }"})
    before = round_trips()
    response = await gateway.post({"query": "{ __typename }"})
    assert response.status_code == 200, response.text
    assert round_trips() - before == 1


async def test_a_rate_limited_request_asks_no_system_and_charges_nothing(
        sims, jwks, signing_key, redis_client):
    budgets = {"subject_requests_per_minute": 1, "burst": 1}
    async with running_gateway(sims, jwks, signing_key, budgets=budgets) as gateway:
        first = await ask_child(gateway, gateway.fixtures["ordinary"])
        assert first.status_code == 200, first.text
        assert await charged(gateway, redis_client) == 1
        hits = total_hits(gateway)

        limited = await ask_child(gateway, gateway.fixtures["school_only"])

        assert limited.status_code == 429, limited.text
        assert int(limited.headers["retry-after"]) >= 1
        body = limited.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert total_hits(gateway) == hits
        assert await charged(gateway, redis_client) == 1


async def test_a_rate_limited_search_asks_no_system(sims, jwks, signing_key):
    budgets = {"subject_requests_per_minute": 1, "burst": 1}
    async with running_gateway(sims, jwks, signing_key, budgets=budgets) as gateway:
        await gateway.post({"query": "{ __typename }"})
        hits = total_hits(gateway)
        search = {"familyName": "Nobody", "givenName": "Anyone", "dateOfBirth": "2015-01-01"}
        limited = await gateway.post({"query": FIND_QUERY, "variables": {"s": search}})
        assert limited.status_code == 429, limited.text
        assert total_hits(gateway) == hits


async def test_a_replayed_proof_charges_nothing_and_asks_no_system(
        gateway, client_key, redis_client):
    token = gateway.token(cnf={"jkt": client_key.thumbprint()})
    proof = make_proof(client_key, "POST", URL, token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    body = {"query": CHILD_QUERY, "variables": {
        "id": gateway.id_for(gateway.fixtures["ordinary"]), "purpose": "SAFEGUARDING"}}
    first = await gateway.client.post("/graphql", json=body, headers=headers)
    assert first.status_code == 200, first.text
    hits = total_hits(gateway)
    used = await charged(gateway, redis_client)

    body["variables"]["id"] = gateway.id_for(gateway.fixtures["school_only"])
    replayed = await gateway.client.post("/graphql", json=body, headers=headers)

    assert replayed.status_code == 401, replayed.text
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
    assert "data" not in replayed.json()
    assert total_hits(gateway) == hits
    assert await charged(gateway, redis_client) == used


async def test_with_redis_down_every_part_falls_back_on_its_own(sims, jwks, signing_key,
                                                                client_key):
    budgets = {"subject_requests_per_minute": 60, "burst": 2}
    async with running_gateway(sims, jwks, signing_key, budgets=budgets,
                               cache={"redis_url": DEAD_REDIS}) as gateway:
        runtime = gateway.runtime
        ordinary = gateway.fixtures["ordinary"]
        served = await ask_child(gateway, ordinary)
        assert served.status_code == 200, served.text
        assert not any(s["fromCache"] for s in served.json()["data"]["child"]["sources"])
        assert runtime.store.status == "unavailable"
        assert runtime.budgets.status == "degraded"
        assert runtime.rate_limiter.status == "degraded"

        token = gateway.token(cnf={"jkt": client_key.thumbprint()})
        proof = make_proof(client_key, "POST", URL, token)
        bound = await ask_child(gateway, ordinary, key=client_key, token=token, proof=proof)
        assert bound.status_code == 200, bound.text
        replayed = await ask_child(gateway, ordinary, key=client_key, token=token, proof=proof)
        assert replayed.status_code == 401, replayed.text  # checked before the rate limit
        again = await ask_child(gateway, ordinary)
        assert again.status_code == 429, again.text  # the local GCRA: burst 2 spent


async def test_with_redis_down_a_replay_is_still_refused_in_process(sims, jwks, signing_key,
                                                                    client_key):
    async with running_gateway(sims, jwks, signing_key,
                               cache={"redis_url": DEAD_REDIS}) as gateway:
        ordinary = gateway.fixtures["ordinary"]
        token = gateway.token(cnf={"jkt": client_key.thumbprint()})
        proof = make_proof(client_key, "POST", URL, token)
        first = await ask_child(gateway, ordinary, key=client_key, token=token, proof=proof)
        assert first.status_code == 200, first.text
        replayed = await ask_child(gateway, ordinary, key=client_key, token=token, proof=proof)
        assert replayed.status_code == 401, replayed.text


async def test_budgets_refused_while_redis_is_down_when_so_configured(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, budgets={"when_redis_down": "refuse"},
                               cache={"redis_url": DEAD_REDIS}) as gateway:
        response = await ask_child(gateway, gateway.fixtures["ordinary"])
        assert response.status_code == 503, response.text
        codes = {e["extensions"]["code"] for e in response.json()["errors"]}
        assert codes == {"BUDGETS_UNAVAILABLE"}


async def test_two_children_in_one_request_pass_one_admission(sims, jwks, signing_key,
                                                             redis_client):
    budgets = {"subject_requests_per_minute": 1, "burst": 1}
    query = ("query($a: ID!, $b: ID!) { a: child(id: $a, purpose: SAFEGUARDING) { id }"
             " b: child(id: $b, purpose: SAFEGUARDING) { id } }")
    async with running_gateway(sims, jwks, signing_key, budgets=budgets) as gateway:
        ids = {"a": gateway.id_for(gateway.fixtures["ordinary"]),
               "b": gateway.id_for(gateway.fixtures["school_only"])}
        response = await gateway.post({"query": query, "variables": ids})
        assert response.status_code == 200, response.text
        assert response.json()["data"] == {"a": {"id": ids["a"]}, "b": {"id": ids["b"]}}
        assert await charged(gateway, redis_client) == 2

        limited = await gateway.post({"query": query, "variables": ids})
        assert limited.status_code == 429, limited.text
