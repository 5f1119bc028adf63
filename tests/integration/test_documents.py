"""Trusted documents and automatic persisted queries, through the HTTP API."""

from __future__ import annotations

import json

import pytest

from gateway.settings import ConfigError
from gateway.web.documents import sha256_hex
from tests.integration.harness import CHILD_QUERY, running_gateway
from tests.integration.test_refusal_audit import logged

NAME_QUERY = ("query Name($id: ID!, $purpose: Purpose!, $case: String) {"
              " child(id: $id, purpose: $purpose, caseReference: $case) { name { family } } }")
ARBITRARY = "{ __typename }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def manifest(tmp_path, *documents, apollo=False):
    path = tmp_path / "persisted-documents.json"
    if apollo:
        data = {"format": "apollo-persisted-query-manifest", "version": 1,
                "operations": [{"id": sha256_hex(d), "name": "Op", "type": "query", "body": d}
                               for d in documents]}
    else:
        data = {sha256_hex(d): d for d in documents}
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


@pytest.fixture(params=["codegen", "apollo"])
async def trusted_gateway(request, tmp_path, sims, jwks, signing_key):
    """Production, trusted documents only (the production default), from either manifest."""
    path = manifest(tmp_path, NAME_QUERY, CHILD_QUERY, apollo=request.param == "apollo")
    async with running_gateway(sims, jwks, signing_key, mode="production",
                               documents={"manifest": path, "trusted_only": None}) as gateway:
        yield gateway


def child_variables(gateway, fixture="ordinary"):
    return {"id": gateway.id_for(gateway.fixtures[fixture]), "purpose": "SAFEGUARDING",
            "case": "CASE-1"}


async def test_production_serves_a_trusted_document_by_id_with_variables(trusted_gateway):
    gateway = trusted_gateway
    assert gateway.runtime.documents.trusted_only
    response = await gateway.post({"documentId": f"sha256:{sha256_hex(NAME_QUERY)}",
                                   "variables": child_variables(gateway),
                                   "operationName": "Name"})
    body = response.json()
    assert response.status_code == 200, body
    assert body["data"]["child"]["name"]["family"]
    bare = await gateway.post({"documentId": sha256_hex(NAME_QUERY),
                               "variables": child_variables(gateway)})
    assert bare.json() == body


async def test_production_refuses_an_arbitrary_document(trusted_gateway):
    for accept in ("application/json", GRAPHQL_RESPONSE):
        response = await trusted_gateway.post({"query": ARBITRARY}, headers={"Accept": accept})
        assert response.status_code == 400
        assert response.json()["errors"] == [{
            "message": "Only trusted documents are accepted; send a documentId from the "
                       "manifest.", "extensions": {"code": "DOCUMENT_NOT_TRUSTED"}}]


async def test_the_exact_text_of_a_trusted_document_is_trusted(trusted_gateway):
    variables = child_variables(trusted_gateway)
    response = await trusted_gateway.post({"query": NAME_QUERY, "variables": variables})
    assert response.status_code == 200
    assert response.json()["data"]["child"]["name"]["family"]
    edited = await trusted_gateway.post({"query": NAME_QUERY.replace("family", "family given"),
                                         "variables": variables})
    assert edited.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"


async def test_an_unknown_document_id(trusted_gateway):
    response = await trusted_gateway.post({"documentId": f"sha256:{sha256_hex(ARBITRARY)}"})
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "PERSISTED_QUERY_NOT_FOUND"}
    assert "documentId" in error["message"]


async def test_apollo_clients_hash_of_a_trusted_document_is_served_with_apq_off(trusted_gateway):
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(NAME_QUERY)}}
    response = await trusted_gateway.post({"extensions": persisted,
                                           "variables": child_variables(trusted_gateway)})
    assert response.json()["data"]["child"]["name"]["family"]
    unknown = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(ARBITRARY)}}
    response = await trusted_gateway.post({"extensions": unknown})
    assert (response.status_code, response.json()) == (200, {"errors": [{
        "message": "PersistedQueryNotSupported",
        "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"}}]})


async def test_trusted_only_refusals_are_audit_events(trusted_gateway):
    await trusted_gateway.post({"query": ARBITRARY})
    await trusted_gateway.post({"documentId": "sha256:" + "0" * 64})
    events = await logged(trusted_gateway)
    assert [(e.action, e.outcome, e.subject, e.reason) for e in events] == [
        ("request", "bad_request", "user-7", "DOCUMENT_NOT_TRUSTED"),
        ("request", "bad_request", "user-7", "PERSISTED_QUERY_NOT_FOUND")]


async def test_automatic_persisted_queries_round_trip(sims, jwks, signing_key):
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(ARBITRARY)}}
    async with running_gateway(sims, jwks, signing_key,
                               documents={"automatic_persisted_queries": True}) as gateway:
        first = await gateway.post({"extensions": persisted})
        assert (first.status_code, first.json()) == (200, {"errors": [{
            "message": "PersistedQueryNotFound",
            "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]})
        second = await gateway.post({"query": ARBITRARY, "extensions": persisted})
        assert second.json() == {"data": {"__typename": "Query"}}
        third = await gateway.post({"extensions": persisted})
        assert third.json() == {"data": {"__typename": "Query"}}


async def test_apq_is_on_in_development_only_by_default(sims, jwks, signing_key):
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(ARBITRARY)}}
    async with running_gateway(sims, jwks, signing_key, mode="development") as gateway:
        assert gateway.runtime.documents.apq is not None
        assert (await gateway.post({"query": ARBITRARY, "extensions": persisted})).status_code \
            == 200
        assert (await gateway.post({"extensions": persisted})).json()["data"]
    async with running_gateway(sims, jwks, signing_key) as gateway:  # production
        response = await gateway.post({"extensions": persisted})
        assert response.json()["errors"][0]["extensions"]["code"] == \
            "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_a_hash_that_does_not_match_its_query(gateway):
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex("{ other }")}}
    response = await gateway.post({"query": ARBITRARY, "extensions": persisted})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"message": "provided sha does not match query",
                                           "extensions": {"code": "BAD_USER_INPUT"}}]


async def test_a_manifest_that_would_fail_stops_start_up(tmp_path, sims, jwks, signing_key):
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps({sha256_hex(ARBITRARY): "{ nope }"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="is not the SHA-256 of its document"):
        async with running_gateway(sims, jwks, signing_key, documents={"manifest": str(path)}):
            pass
    invalid = "{ shoeSize }"
    path.write_text(json.dumps({sha256_hex(invalid): invalid}), encoding="utf-8")
    with pytest.raises(ConfigError, match="Cannot query field 'shoeSize'"):
        async with running_gateway(sims, jwks, signing_key, documents={"manifest": str(path)}):
            pass
