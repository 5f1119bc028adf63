"""`GET /schema.graphql`: the committed SDL; a valid token in production, open in development."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from gateway.auth.dpop import make_proof
from tests.auth.helpers import make_token
from tests.integration.harness import running_gateway

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
URL = "http://gateway.test/schema.graphql"


def bearer(gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.token()}"}


def assert_is_the_committed_schema(response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.text == SCHEMA_FILE.read_text(encoding="utf-8")


async def test_production_needs_a_token(gateway):
    response = await gateway.client.get("/schema.graphql")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith('Bearer realm="contactpoint"')
    assert "type Child" not in response.text


async def test_a_forged_token_is_refused_with_the_challenge_graphql_sends(gateway):
    forged = make_token(ECKey.generate_key("P-256", {"kid": "it-1"}), time.time())
    response = await gateway.client.get("/schema.graphql",
                                        headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    graphql = await gateway.post({"query": "{ __typename }"}, token=forged)
    assert graphql.status_code == 401
    assert response.headers["www-authenticate"] == graphql.headers["www-authenticate"]
    assert response.json() == graphql.json()


async def test_production_serves_the_committed_schema_for_a_valid_token(gateway):
    assert_is_the_committed_schema(
        await gateway.client.get("/schema.graphql", headers=bearer(gateway)))


async def test_any_scope_will_do(gateway):
    token = gateway.token("audit.read")
    assert_is_the_committed_schema(await gateway.client.get(
        "/schema.graphql", headers={"Authorization": f"Bearer {token}"}))


async def test_a_dpop_bound_token_is_checked_against_this_url(gateway):
    key = ECKey.generate_key("P-256", private=True)
    token = gateway.token(cnf={"jkt": key.thumbprint()})
    good = {"Authorization": f"DPoP {token}", "DPoP": make_proof(key, "GET", URL, token)}
    assert_is_the_committed_schema(await gateway.client.get("/schema.graphql", headers=good))
    elsewhere = make_proof(key, "GET", "http://gateway.test/graphql", token)
    response = await gateway.client.get(
        "/schema.graphql", headers={"Authorization": f"DPoP {token}", "DPoP": elsewhere})
    assert response.status_code == 401


async def test_development_is_open(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, mode="development") as gateway:
        assert_is_the_committed_schema(await gateway.client.get("/schema.graphql"))


async def test_introspection_stays_off_in_production(gateway):
    body = (await gateway.post({"query": "{ __schema { types { name } } }"})).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_etag_is_stable_and_a_match_is_304(gateway):
    first = await gateway.client.get("/schema.graphql", headers=bearer(gateway))
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    again = await gateway.client.get("/schema.graphql", headers=bearer(gateway))
    assert again.headers["etag"] == etag
    cached = await gateway.client.get("/schema.graphql",
                                      headers={**bearer(gateway), "If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    assert cached.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("header", ["W/{etag}", '"other", {etag}', "*"])
async def test_if_none_match_forms(gateway, header):
    etag = (await gateway.client.get("/schema.graphql", headers=bearer(gateway))).headers["etag"]
    response = await gateway.client.get(
        "/schema.graphql", headers={**bearer(gateway), "If-None-Match": header.format(etag=etag)})
    assert response.status_code == 304


async def test_a_stale_etag_gets_the_schema(gateway):
    response = await gateway.client.get(
        "/schema.graphql", headers={**bearer(gateway), "If-None-Match": '"stale"'})
    assert_is_the_committed_schema(response)


async def test_a_matching_etag_without_a_token_is_still_401(gateway):
    etag = (await gateway.client.get("/schema.graphql", headers=bearer(gateway))).headers["etag"]
    response = await gateway.client.get("/schema.graphql", headers={"If-None-Match": etag})
    assert response.status_code == 401
