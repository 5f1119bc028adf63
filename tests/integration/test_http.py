"""GraphQL over HTTP: media types, body limits, request errors, production hardening."""

import json

import pytest

from tests.integration.harness import FIND_QUERY

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_healthz_and_readyz(gateway):
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    response = await gateway.client.get("/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert body["cache"] == {"kind": "redis", "status": "ok", "note": None}
    assert body["auth"]["jwks"]["status"] == "ok"
    assert {name: c["status"] for name, c in body["connectors"].items()} == {
        "gp": "ok", "school": "ok", "council": "ok", "youth_justice": "ok"}


async def test_readyz_reports_a_down_connector_and_stays_ready(gateway):
    gateway.sims.council.knobs.down = True
    body = (await gateway.client.get("/readyz")).json()
    assert body["status"] == "degraded"
    assert body["connectors"]["council"]["status"] == "unavailable"


async def test_readyz_unready_when_no_connector_answers(gateway):
    for name in gateway.sims.urls():
        getattr(gateway.sims, name).knobs.down = True
    response = await gateway.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unready"


async def test_graphql_response_media_type_and_status_codes(gateway):
    headers = {"Accept": GRAPHQL_RESPONSE}
    ok = await gateway.post({"query": "{ __typename }"}, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert ok.headers["cache-control"] == "no-store"
    invalid = await gateway.post({"query": "{ nope }"}, headers=headers)
    assert invalid.status_code == 400
    assert "data" not in invalid.json()
    assert invalid.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_legacy_json_media_type_answers_200_for_request_errors(gateway):
    response = await gateway.post({"query": "{ nope }"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(("content", "content_type", "status", "fragment"), [
    (b"{not json", "application/json", 400, "not JSON"),
    (b"[]", "application/json", 400, "batches"),
    (b'{"query": 3}', "application/json", 400, "query"),
    (b'{"query": "{ __typename }", "variables": []}', "application/json", 400, "variables"),
    (b'{"query": "{ __typename }", "operationName": 1}', "application/json", 400,
     "operationName"),
    (b"query { __typename }", "application/graphql", 415, "application/json"),
    (b"x" * 70_000, "application/json", 413, "exceeds"),
])
async def test_bad_requests_get_clear_errors(gateway, content, content_type, status, fragment):
    response = await gateway.client.post(
        "/graphql", content=content,
        headers={"Authorization": f"Bearer {gateway.token()}", "Content-Type": content_type})
    assert response.status_code == status
    error = response.json()["errors"][0]
    assert fragment in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_unacceptable_accept_header(gateway):
    response = await gateway.post({"query": "{ __typename }"}, headers={"Accept": "text/csv"})
    assert response.status_code == 406


async def test_get_is_refused_in_production(gateway):
    response = await gateway.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_introspection_and_suggestions_are_off_in_production(gateway):
    body = (await gateway.post({"query": "{ __schema { types { name } } }"})).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = (await gateway.post({"query": "{ chil(id: 1) { id } }"})).json()
    assert "Did you mean" not in json.dumps(body)


async def test_development_mode_offers_graphiql_and_suggestions(sims, jwks, signing_key):
    from tests.integration.harness import running_gateway

    async with running_gateway(sims, jwks, signing_key, mode="development") as gateway:
        page = await gateway.client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        body = (await gateway.post({"query": "{ chil(id: 1) { id } }"})).json()
        assert "Did you mean" in json.dumps(body)


async def test_alias_limit(gateway):
    aliases = " ".join(f"a{i}: __typename" for i in range(16))
    body = (await gateway.post({"query": "{ " + aliases + " }"})).json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_depth_limit_counts_through_fragments(sims, jwks, signing_key):
    from tests.integration.harness import running_gateway

    fragment = "fragment Deep on Child { education { school { address { lines } } } }"
    query = '{ child(id: "x", purpose: SAFEGUARDING) { ...Deep } } ' + fragment
    async with running_gateway(sims, jwks, signing_key, limits={"max_depth": 3}) as gateway:
        body = (await gateway.post({"query": query})).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


async def test_aliases_hidden_in_fragments_are_counted(gateway):
    aliases = " ".join(f"a{i}: __typename" for i in range(16))
    query = f"query {{ ...F }} fragment F on Query {{ {aliases} }}"
    body = (await gateway.post({"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_token_limit(gateway):
    query = "{ " + " ".join(["__typename"] * 2100) + " }"
    body = (await gateway.post({"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_children_per_request_limit(gateway):
    nhs = [c.nhs_number for c in gateway.sims.population.children[:11]]
    selections = " ".join(
        f'c{i}: child(id: "{gateway.id_for(n)}", purpose: SAFEGUARDING) {{ id }}'
        for i, n in enumerate(nhs))
    token = gateway.token()
    response = await gateway.client.post(
        "/graphql", json={"query": "{ " + selections + " }"},
        headers={"Authorization": f"Bearer {token}"})
    codes = [e["extensions"]["code"] for e in response.json().get("errors", [])]
    assert "QUERY_TOO_COMPLEX" in codes or "BAD_USER_INPUT" in codes


async def test_unexpected_errors_are_masked(gateway, caplog, monkeypatch):
    from gateway.lookup.sources import Sources

    async def broken(self, criteria):
        raise RuntimeError("secret detail 9990000018 Smith")

    monkeypatch.setattr(Sources, "search", broken)
    body = (await gateway.gql(FIND_QUERY, {"s": {"familyName": "Smith", "givenName": "Amy",
                                                 "dateOfBirth": "2015-01-01"}}))
    [error] = body["errors"]
    assert error["message"] == "Internal error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret detail" not in json.dumps(body)
    assert "RuntimeError" in caplog.text
    assert "9990000018" not in caplog.text
    assert "Smith" not in caplog.text
