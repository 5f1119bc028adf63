"""Request hygiene: malformed or hostile requests get coded 4xx answers, never a 500.

Run in the harness's default mode, production (no introspection, no suggestions).
A GraphQL request error (no operation to run, a document over a limit) is HTTP 400
in `application/graphql-response+json` and 200 in legacy `application/json`, as the
GraphQL-over-HTTP specification asks; a request body of the wrong shape is 400 in both.
"""

import json

import pytest
from pydantic import ValidationError

from gateway.settings import LimitSettings
from tests.integration.harness import running_gateway
from tests.integration.support import IDENTITY, NULLABLE_SELECTION

GRAPHQL_RESPONSE = "application/graphql-response+json"
SECRET = "9990000018 Smith"


async def _post_raw(gateway, content: bytes, accept: str = GRAPHQL_RESPONSE):
    return await gateway.client.post("/graphql", content=content, headers={
        "Authorization": f"Bearer {gateway.token()}", "Content-Type": "application/json",
        "Accept": accept})


def _nested(depth: int) -> bytes:
    """A JSON array nested `depth` levels around a string that must never be echoed."""
    return b"[" * depth + json.dumps(SECRET).encode() + b"]" * depth


def _only_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    assert SECRET not in response.text
    return error


# --- no operation to run ---------------------------------------------------------------

@pytest.mark.parametrize("operation", ["B", ""])
async def test_an_operation_name_naming_nothing_is_a_request_error(gateway, operation):
    payload = {"query": "query A { __typename }", "operationName": operation}
    response = await gateway.post(payload, headers={"Accept": GRAPHQL_RESPONSE})
    error = _only_error(response, 400, "BAD_USER_INPUT")
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "`operationName` names no operation" in error["message"]
    legacy = await gateway.post(payload)
    assert legacy.json()["errors"][0]["message"] == error["message"]
    assert legacy.status_code == 200


async def test_a_document_of_fragments_only_is_a_request_error(gateway):
    response = await gateway.post({"query": "fragment F on Query { __typename }"},
                                  headers={"Accept": GRAPHQL_RESPONSE})
    error = _only_error(response, 400, "BAD_USER_INPUT")
    assert error["message"] == "The document holds no operation to run."


async def test_a_named_operation_is_still_chosen_by_name(gateway):
    payload = {"query": "query A { a: __typename } query B { b: __typename }",
               "operationName": "B"}
    response = await gateway.post(payload, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.json() == {"data": {"b": "Query"}}


# --- the request body's shape ----------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("variables", "x"), ("variables", 3), ("variables", ["a"]),
    ("operationName", 1), ("operationName", ["A"]), ("operationName", {"A": 1}),
    ("extensions", []), ("extensions", "x"), ("extensions", 0),
])
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_parts_of_the_wrong_type_are_refused(gateway, field, value, accept):
    response = await gateway.post({"query": "{ __typename }", field: value},
                                  headers={"Accept": accept})
    error = _only_error(response, 400, "BAD_USER_INPUT")
    assert f"`{field}`" in error["message"]
    assert response.headers["content-type"].startswith(accept)


@pytest.mark.parametrize("field", ["variables", "extensions"])
async def test_nesting_past_the_bound_is_refused(gateway, field):
    deepest_allowed = b'{"query": "{ __typename }", "%s": {"a": %s}}' % (
        field.encode(), _nested(31))
    assert (await _post_raw(gateway, deepest_allowed)).json() == {"data": {"__typename": "Query"}}
    content = b'{"query": "{ __typename }", "%s": {"a": %s}}' % (field.encode(), _nested(32))
    error = _only_error(await _post_raw(gateway, content), 400, "BAD_USER_INPUT")
    assert error["message"] == f"`{field}` nests deeper than 32 levels."


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_variables_nested_a_thousand_deep_are_refused(gateway, accept):
    content = b'{"query": "query($a: String) { __typename }", "variables": {"a": %s}}' % (
        _nested(1_000))
    response = await _post_raw(gateway, content, accept)
    error = _only_error(response, 400, "BAD_USER_INPUT")
    assert "nests" in error["message"]
    assert response.headers["content-type"].startswith(accept)


async def test_a_body_nested_as_deep_as_its_size_allows_is_refused(gateway):
    content = b'{"query": "{ __typename }", "x": %s}' % _nested(30_000)
    error = _only_error(await _post_raw(gateway, content), 400, "BAD_USER_INPUT")
    assert error["message"] == "The request body nests too deeply."


# --- directives ------------------------------------------------------------------------

def _directives(count: int) -> str:
    # Each in its own inline fragment: a field repeated in one selection is refused by itself.
    return " ".join(["... { __typename @include(if: true) }"] * count)


async def test_fifty_directives_are_allowed(gateway):
    response = await gateway.post({"query": "{ " + _directives(50) + " }"},
                                  headers={"Accept": GRAPHQL_RESPONSE})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_fifty_one_include_on_withheld_fields_are_too_complex(gateway):
    nhs = gateway.fixtures["ordinary"]
    fields = " ".join(["... on Child { address @include(if: true) { postcode } }"] * 51)
    query = (f'{{ child(id: "{gateway.id_for(nhs)}", purpose: SAFEGUARDING, '
             f'caseReference: "C-1") {{ id {fields} }} }}')
    response = await gateway.post({"query": query}, token=gateway.token(IDENTITY),
                                  headers={"Accept": GRAPHQL_RESPONSE})
    error = _only_error(response, 400, "QUERY_TOO_COMPLEX")
    assert error["message"] == "The document holds more than 50 directives."


@pytest.mark.parametrize(("in_fragment", "status"), [(48, 200), (49, 400)])
async def test_directives_are_counted_across_fragments(gateway, in_fragment, status):
    query = ("query Q($v: Boolean = true) { ...F @include(if: $v) "
             "... on Query @skip(if: false) { __typename } } "
             "fragment F on Query { " + _directives(in_fragment) + " }")
    response = await gateway.post({"query": query}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == status
    if status == 400:
        _only_error(response, 400, "QUERY_TOO_COMPLEX")


async def test_the_directive_limit_is_configurable(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, limits={"max_directives": 2}) as gw:
        assert "errors" not in (await gw.post({"query": "{ " + _directives(2) + " }"})).json()
        body = (await gw.post({"query": "{ " + _directives(3) + " }"})).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


# --- errors per response ---------------------------------------------------------------

def _truncated(errors: list[dict], cap: int) -> None:
    assert len(errors) == cap + 1
    *kept, last = errors
    assert all(e["extensions"]["code"] != "ERRORS_TRUNCATED" for e in kept)
    assert last["extensions"] == {"code": "ERRORS_TRUNCATED"}
    assert last["message"] == (f"More than {cap} errors; the rest were left out. "
                               "Ask for fewer fields to see them.")


async def test_validation_errors_are_capped(gateway):
    query = "{ " + " ".join(f"f{i}" for i in range(150)) + " }"
    response = await gateway.post({"query": query}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400
    _truncated(response.json()["errors"], 20)


async def test_execution_errors_from_many_aliased_withheld_fields_are_capped(gateway):
    nhs = gateway.fixtures["ordinary"]
    lookup = (f'child(id: "{gateway.id_for(nhs)}", purpose: SAFEGUARDING, '
              f'caseReference: "C-1") {{ id {NULLABLE_SELECTION} }}')
    query = "{ " + " ".join(f"c{i}: {lookup}" for i in range(8)) + " }"
    response = await gateway.post({"query": query}, token=gateway.token(IDENTITY),
                                  headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    body = response.json()
    assert all(body["data"][f"c{i}"]["id"] for i in range(8))
    _truncated(body["errors"], 20)
    assert {e["extensions"]["code"] for e in body["errors"][:-1]} == {"FORBIDDEN"}


async def test_the_error_cap_is_configurable(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, limits={"max_errors": 1}) as gw:
        one = (await gw.post({"query": "{ f0 }"})).json()
        two = (await gw.post({"query": "{ f0 f1 }"})).json()
    assert len(one["errors"]) == 1
    _truncated(two["errors"], 1)


@pytest.mark.parametrize(("name", "default", "low", "high"), [
    ("max_directives", 50, 1, 500), ("max_errors", 20, 1, 1_000), ("max_json_depth", 32, 2, 64),
])
def test_new_limits_have_defaults_and_bounds(name, default, low, high):
    assert getattr(LimitSettings(), name) == default
    assert getattr(LimitSettings(**{name: low}), name) == low
    assert getattr(LimitSettings(**{name: high}), name) == high
    for value in (low - 1, high + 1):
        with pytest.raises(ValidationError):
            LimitSettings(**{name: value})


async def test_the_directive_rule_keeps_validation_cached(gateway):
    """The rule is built once with the schema, so ValidationCache's key stays the same.

    (With execution plans on, a document's second request skips validation
    altogether; here they are off, so that the second request is validated.)
    """
    from strawberry.extensions.validation_cache import _get_validate_cache

    gateway.runtime.schema.plans = None
    cache = _get_validate_cache(gateway.settings.limits.parser_cache_size)
    query = "{ " + _directives(3) + " a_unique_alias: __typename }"
    await gateway.post({"query": query})
    before = cache.cache_info().hits
    assert (await gateway.post({"query": query})).json()["data"]["a_unique_alias"] == "Query"
    assert cache.cache_info().hits == before + 1
