"""graphql-cop's twelve checks, and the OWASP GraphQL cheat sheet's, against production mode.

Each test sends what graphql-cop (dolevf/graphql-cop) sends for one of its
checks to the gateway with its production defaults (the integration harness's
`gateway`) and asserts the gateway refuses it, or does not expose what the check
looks for. The OWASP cases not among graphql-cop's follow: depth, amount
(children per request) and cost limits, error masking, and one fixed 401.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from graphql import build_schema, parse

from resolvers.cost import document_cost
from tests.auth.helpers import make_token
from tests.integration.harness import CHILD_FIELDS, FIND_QUERY, running_gateway

SCHEMA_SDL = (Path(__file__).resolve().parents[2] / "schema.graphql").read_text(encoding="utf-8")

# What a stack trace or an unmasked exception would put in a body.
DISCLOSURE = re.compile(
    r"Traceback|File \"|\.py\b|site-packages|/work/|/usr/lib|line \d+, in "
    r"|\b[A-Z][A-Za-z]*(Error|Exception)\b(?!S)|\bKeyError\b|\bGraphQLError\b")


def codes(body: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def assert_refused(response, code: str = "QUERY_TOO_COMPLEX") -> dict:
    body = response.json()
    assert body.get("data") is None, body
    assert codes(body) == [code], body
    assert not DISCLOSURE.search(response.text), response.text
    return body


def child_root(gateway, fixture: str = "ordinary", alias: str = "", fields: str = "id") -> str:
    nhs = gateway.fixtures[fixture]
    head = f"{alias}: " if alias else ""
    return (f'{head}child(id: "{gateway.id_for(nhs)}", purpose: SAFEGUARDING,'
            f' caseReference: "CASE-1") {{ {fields} }}')


# ------------------------------------------------------------------ graphql-cop


async def test_alias_overloading_is_refused(gateway):
    aliases = " ".join(f"alias{i}: __typename" for i in range(101))
    assert_refused(await gateway.post({"query": "query cop { " + aliases + " }"}))


async def test_alias_overloading_on_a_real_field_is_refused_unrun(gateway):
    before = sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())
    roots = " ".join(child_root(gateway, alias=f"a{i}") for i in range(101))
    assert_refused(await gateway.post({"query": "{ " + roots + " }"}))
    after = sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())
    assert after == before


@pytest.mark.parametrize("batch", [
    [{"query": "query cop { __typename }"}] * 10,
    [{"query": "{ __typename }"}],
])
async def test_batch_queries_are_refused(gateway, batch):
    response = await gateway.post(batch)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_field_duplication_of_typename_is_refused(gateway):
    query = "query cop { " + " ".join(["__typename"] * 500) + " }"
    assert_refused(await gateway.post({"query": query}))


async def test_field_duplication_of_a_real_field_is_refused(gateway):
    fields = " ".join(["nhsNumber"] * 500)
    assert_refused(await gateway.post({"query": "{ " + child_root(gateway, fields=fields) + " }"}))


@pytest.mark.parametrize("extensions", [None, {"tracing": True}, {"debug": True},
                                        {"apolloTracing": True}])
async def test_no_tracing_or_debug_extensions_in_responses(gateway, extensions):
    body: dict = {"query": "query cop { __typename }"}
    if extensions is not None:
        body["extensions"] = extensions
    for payload in (body, {**body, "query": "{ " + child_root(gateway, fields=CHILD_FIELDS)
                           + " }"}):
        response = await gateway.post(payload)
        assert response.status_code < 500
        data = response.json()
        assert not data.get("extensions"), data
        text = response.text.lower()
        for word in ("tracing", "\"debug\"", "apollo", "resolvers\":", "duration\""):
            assert word not in text


async def test_directive_overloading_is_refused(gateway):
    """60 `@include` (over the limit of 50), each on its own field node (each in its own
    inline fragment: 60 repeats in one selection are refused on their own)."""
    fields = " ".join(["... { __typename @include(if: true) }"] * 60)
    assert_refused(await gateway.post({"query": f"query cop {{ {fields} }}"}))


async def test_directive_overloading_on_one_field_is_refused(gateway):
    """graphql-cop's shape: the same directive repeated on one field."""
    directives = " ".join(["@include(if: true)"] * 60)
    response = await gateway.post({"query": f"query cop {{ __typename {directives} }}"})
    body = response.json()
    assert body.get("data") is None, body
    assert set(codes(body)) <= {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX", "ERRORS_TRUNCATED"}
    assert len(body["errors"]) <= gateway.settings.limits.max_errors + 1
    assert not DISCLOSURE.search(response.text)


async def test_directive_overloading_with_an_unknown_directive_is_refused(gateway):
    directives = "@aa" * 60
    response = await gateway.post({"query": f"query cop {{ __typename {directives} }}"})
    body = response.json()
    assert body.get("data") is None
    assert set(codes(body)) <= {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX", "ERRORS_TRUNCATED"}
    assert not DISCLOSURE.search(response.text)


@pytest.mark.parametrize("query", [
    "query cop { __schema { types { name fields { name } } } }",
    "query cop { __type(name: \"Child\") { name fields { name } } }",
    "query cop { __schema { queryType { name } } }",
])
async def test_introspection_is_refused(gateway, query):
    response = await gateway.post({"query": query})
    body = response.json()
    assert body.get("data") is None, body
    assert set(codes(body)) <= {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX"}
    assert "Child" not in json.dumps(body.get("data"))
    assert "PersonName" not in response.text


async def test_circular_introspection_is_refused(gateway):
    query = ("query cop { __schema { types { fields { type { fields { type { fields { type {"
             " fields { type { fields { name } } } } } } } } } } } }")
    response = await gateway.post({"query": query})
    body = response.json()
    assert body.get("data") is None, body
    assert codes(body)
    assert set(codes(body)) <= {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX"}


@pytest.mark.parametrize("path", ["/graphql", "/graphiql", "/playground", "/graphql/console",
                                  "/altair", "/voyager", "/"])
async def test_no_graphql_ide_is_served(gateway, path):
    response = await gateway.client.get(path, headers={"Accept": "text/html"})
    assert response.status_code in {404, 405}, (path, response.status_code)
    text = response.text.lower()
    for word in ("graphiql", "playground", "altair", "voyager", "<html"):
        assert word not in text


@pytest.mark.parametrize("query", ["query cop { __typename }", "{ __typename }"])
async def test_get_based_queries_are_refused(gateway, query):
    response = await gateway.client.get(
        "/graphql", params={"query": query},
        headers={"Authorization": f"Bearer {gateway.token()}"})
    assert response.status_code == 405
    assert "__typename" not in response.text


async def test_a_get_mutation_style_csrf_is_refused(gateway):
    child = "{ " + child_root(gateway, fields="nhsNumber") + " }"
    response = await gateway.client.get(
        "/graphql", params={"query": child},
        headers={"Authorization": f"Bearer {gateway.token()}"})
    assert response.status_code == 405
    assert gateway.sims.population.child(gateway.fixtures["ordinary"]).nhs_number \
        not in response.text


@pytest.mark.parametrize(("content_type", "content"), [
    ("application/x-www-form-urlencoded", "query=query+cop+%7B+__typename+%7D"),
    ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"query\""
                                        "\r\n\r\n{ __typename }\r\n--x--\r\n"),
    ("text/plain", '{"query": "{ __typename }"}'),
])
async def test_form_and_simple_request_bodies_are_refused(gateway, content_type, content):
    """CSRF by a plain HTML form or a CORS "simple request": 415."""
    response = await gateway.client.post(
        "/graphql", content=content.encode(),
        headers={"Authorization": f"Bearer {gateway.token()}", "Content-Type": content_type})
    assert response.status_code == 415
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert "__typename" not in response.text


@pytest.mark.parametrize("query", [
    "{ chil(id: 1) { id } }",
    "{ childs { id } }",
    "{ findChildren(search: {nhsNumbr: \"1\"}, purpose: SAFEGUARDING) { id } }",
    "{ child(id: \"x\", purpose: SAFEGUARDNG) { id } }",
    "{ child(id: \"x\", purpose: SAFEGUARDING) { addres { lines } } }",
    "{ child(id: \"x\", purpose: SAFEGUARDING, caseReferenc: \"C-1\") { id } }",
    "{ child(id: \"x\", purpose: SAFEGUARDING) { primaryCar { practice { nam } } } }",
    "{ __typenam }",
])
async def test_no_field_suggestions(gateway, query):
    response = await gateway.post({"query": query})
    assert response.status_code < 500
    body = response.json()
    assert codes(body)
    assert set(codes(body)) <= {"BAD_USER_INPUT"}
    text = json.dumps(body)
    assert "Did you mean" not in text
    assert "did you mean" not in text.lower()
    for name in ("child", "address", "caseReference", "primaryCare", "SAFEGUARDING",
                 "nhsNumber", "__typename"):
        # a misspelling may be quoted back; the right name must not be offered
        assert f'"{name}"' not in text, text
        assert f"'{name}'" not in text, text


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 200 + b"]" * 200 + b"}}",
    b"[" * 5000 + b"]" * 5000,
    b'{"query": "query($n: Int) { __typename }", "variables": {"n": 1e400}}',
    b'{"query": "query($n: Int) { __typename }", "variables": {"n": 99999999999999999999}}',
    b'{"query": "{ child(id: \\"\\u0000\\", purpose: SAFEGUARDING) { id } }"}',
    b'{"query": "{ child(id: 1, purpose: SAFEGUARDING) { id } }"}',
    b'{"query": "{ child(id: \\"' + b"A" * 5000 + b'\\", purpose: SAFEGUARDING) { id } }"}',
    b'{"query": "{ findChildren(search: {dateOfBirth: \\"2015-13-45\\", familyName: \\"X\\"},'
    b' purpose: SAFEGUARDING) { id } }"}',
    b'{"query": "{ accessReport(nhsNumber: \\"not-a-number\\") { at } }"}',
    b'{"query": "query q($s: ChildSearch!) { findChildren(search: $s, purpose: SAFEGUARDING)'
    b' { id } }", "variables": {"s": {"nhsNumber": {"$ne": 1}}}}',
    b'{"query": "{ __typename", "operationName": "x"}',
    b'{"query": "subscription { __typename }"}',
    b'{"query": "mutation { __typename }"}',
    b'{"query": "\\ud800"}',
    b"\xff\xfe{}",
    b'{"query": null}',
    b"null",
    b'"a string"',
])
async def test_no_stack_trace_or_exception_disclosure(gateway, body):
    response = await gateway.client.post(
        "/graphql", content=body,
        headers={"Authorization": f"Bearer {gateway.token()}",
                 "Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    assert not DISCLOSURE.search(response.text), response.text
    payload = response.json()
    for error in payload.get("errors", []):
        assert error["extensions"]["code"] in {"BAD_USER_INPUT", "NOT_FOUND", "FORBIDDEN",
                                               "QUERY_TOO_COMPLEX"}, payload


# ------------------------------------------------------------------ OWASP cheat sheet


async def test_depth_limit(sims, jwks, signing_key):
    """The schema is at most 5 deep, under the default 8: a lower limit shows the check."""
    deep = "education { school { address { lines } } }"
    async with running_gateway(sims, jwks, signing_key, limits={"max_depth": 3}) as gateway:
        response = await gateway.post({"query": "{ " + child_root(gateway, fields=deep) + " }"})
        assert_refused(response)
        ok = (await gateway.post({"query": "{ " + child_root(gateway, fields="id") + " }"}))
        assert not codes(ok.json()), ok.text


async def test_default_depth_limit_refuses_deep_introspection(gateway):
    query = ("{ __schema { types { fields { type { ofType { ofType { ofType { ofType"
             " { ofType { name } } } } } } } } } }")
    body = (await gateway.post({"query": query})).json()
    assert body.get("data") is None
    assert codes(body)
    assert set(codes(body)) <= {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX"}


async def test_amount_limit_children_per_request(gateway):
    nhs = [c.nhs_number for c in gateway.sims.population.children[:11]]
    roots = " ".join(f'c{i}: child(id: "{gateway.id_for(n)}", purpose: SAFEGUARDING) {{ id }}'
                     for i, n in enumerate(nhs))
    body = (await gateway.post({"query": "{ " + roots + " }"})).json()
    limit = gateway.settings.limits.max_children_per_request
    assert limit == 10
    released = [key for key, value in (body.get("data") or {}).items() if value is not None]
    assert len(released) <= limit, body
    refusals = [e for e in body["errors"] if e["extensions"]["code"] == "QUERY_TOO_COMPLEX"]
    assert len(refusals) == 1, body
    assert refusals[0]["message"] == "A request may look up at most 10 children."


async def test_query_cost_limit(gateway):
    before = sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())
    roots = " ".join(child_root(gateway, alias=f"c{i}", fields=CHILD_FIELDS) for i in range(9))
    query = "{ " + roots + " }"
    assert document_cost(build_schema(SCHEMA_SDL), parse(query)) > 1_500
    body = assert_refused(await gateway.post({"query": query}))
    assert "over the limit of 1500" in body["errors"][0]["message"]
    after = sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())
    assert after == before
    assert gateway.settings.limits.max_cost == 1_500


async def test_error_masking(gateway, monkeypatch):
    from gateway.lookup.sources import Sources

    async def broken(self, criteria):
        raise KeyError("/srv/gateway/secret.py line 12 9990000018 Smith")

    monkeypatch.setattr(Sources, "search", broken)
    response = await gateway.post({"query": FIND_QUERY, "variables": {"s": {
        "familyName": "Smith", "givenName": "Amy", "dateOfBirth": "2015-01-01"}}})
    body = response.json()
    [error] = body["errors"]
    assert error["message"] == "Internal error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert not DISCLOSURE.search(response.text)
    assert "9990000018" not in response.text
    assert "secret" not in response.text


async def test_unauthenticated_requests_get_one_fixed_401(gateway):
    now = time.time()
    tokens = {
        "none": None,
        "garbage": "Bearer not-a-jwt",
        "empty": "Bearer ",
        "basic": "Basic dXNlcjpwYXNz",
        "expired": "Bearer " + make_token(gateway.key, now - 7200,
                                          claims={"scope": "child.identity.read",
                                                  "client_id": "c"}),
        "no_mfa": "Bearer " + make_token(gateway.key, now,
                                         claims={"scope": "child.identity.read",
                                                 "client_id": "c", "amr": ["pwd"]}),
        "wrong_audience": "Bearer " + make_token(gateway.key, now,
                                                 claims={"client_id": "c", "aud": "other"}),
    }
    bodies = set()
    for name, header in tokens.items():
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Authorization"] = header
        response = await gateway.client.post(
            "/graphql", content=json.dumps({"query": "{ __typename }"}), headers=headers)
        assert response.status_code == 401, (name, response.text)
        body = response.json()
        assert "data" not in body
        assert codes(body) == ["UNAUTHENTICATED"], (name, body)
        assert not DISCLOSURE.search(response.text)
        bodies.add(json.dumps([dict(e.items()) for e in body["errors"]],
                              sort_keys=True))
    assert len(bodies) == 1, bodies
