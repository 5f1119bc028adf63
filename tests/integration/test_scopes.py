"""Scopes, field by field: each scope alone releases exactly its fields; the rest are FORBIDDEN.

README "Scopes: what each releases": a field the caller may not see is null
with an error at its path (`extensions.code` FORBIDDEN, `extensions.scope`
naming the missing scope), and its siblings still resolve.
"""

from __future__ import annotations

import pytest

from tests.integration.harness import FIND_QUERY, errors_by_path
from tests.integration.support import (
    CHILD_SCOPES,
    FIELDS,
    IDENTITY,
    NULLABLE_SELECTION,
    SENSITIVE,
    SHIELDED,
    dumps,
    expected_child,
    personal_strings,
    record,
    strings,
    total_hits,
)

IDENTITY_ONLY = "shielded sources { connector status fromCache }"


def _selection(scope: str) -> str:
    # `shielded` and `sources` are non-null: only the identity scope may ask for them
    # without nulling the whole child (that propagation is tested below).
    return NULLABLE_SELECTION + (" " + IDENTITY_ONLY if scope == IDENTITY else "")


@pytest.mark.parametrize("scope", CHILD_SCOPES)
async def test_each_scope_alone_releases_exactly_its_fields(gateway, scope):
    child = record(gateway, "ordinary")
    body = await gateway.child("ordinary", scopes=scope, fields=_selection(scope))
    served = body["data"]["child"]
    assert served is not None, body
    expected = expected_child(child)
    released = {name for name, (_, needs) in FIELDS.items() if needs == scope}
    withheld = set(FIELDS) - released
    assert released, "every child scope releases some field"
    for name in released:
        assert served[name] == expected[name], name
        assert served[name] is not None, name
    for name in withheld:
        assert served[name] is None, name
    assert errors_by_path(body) == {f"child.{name}": "FORBIDDEN" for name in withheld}
    scopes_named = {e["path"][1]: e["extensions"].get("scope") for e in body["errors"]}
    assert scopes_named == {name: FIELDS[name][1] for name in withheld}
    if scope == IDENTITY:
        assert served["shielded"] is False
        assert {s["connector"]: s["status"] for s in served["sources"]} == {
            "gp": "ok", "school": "ok", "council": "ok", "youth_justice": "ok"}


@pytest.mark.parametrize("scope", CHILD_SCOPES)
async def test_scope_errors_carry_no_value_from_the_record(gateway, scope):
    body = await gateway.child("ordinary", scopes=scope, fields=_selection(scope))
    assert body["errors"]
    told = dumps([{"message": e["message"], "extensions": e["extensions"]}
                  for e in body["errors"]])
    leaked = {value for value in personal_strings(record(gateway, "ordinary")) if value in told}
    assert not leaked


@pytest.mark.parametrize("scopes", [SENSITIVE, SHIELDED, f"{SENSITIVE} {SHIELDED}"])
async def test_special_scopes_alone_cannot_read_a_child(gateway, scopes):
    before = total_hits(gateway)
    body = await gateway.child("ordinary", scopes=scopes, fields=NULLABLE_SELECTION)
    assert body["data"] == {"child": None}
    [error] = body["errors"]
    assert error["path"] == ["child"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert total_hits(gateway) == before, "nothing is fetched for a caller who may see nothing"
    told = dumps(body)
    assert not {v for v in personal_strings(record(gateway, "ordinary")) if v in told}


@pytest.mark.parametrize("scope", [s for s in CHILD_SCOPES if s != IDENTITY])
async def test_special_scope_with_a_child_scope_reads_the_child(gateway, scope):
    body = await gateway.child("ordinary", scopes=f"{scope} {SENSITIVE} {SHIELDED}",
                               fields=NULLABLE_SELECTION)
    assert body["data"]["child"] is not None
    assert set(errors_by_path(body).values()) == {"FORBIDDEN"}


@pytest.mark.parametrize("non_null", ["shielded", "sources { connector status fromCache }"])
@pytest.mark.parametrize("scope", [s for s in CHILD_SCOPES if s != IDENTITY])
async def test_forbidden_non_null_field_nulls_the_whole_child(gateway, scope, non_null):
    field = non_null.split()[0]
    body = await gateway.child("ordinary", scopes=scope, fields=f"{NULLABLE_SELECTION} {non_null}")
    assert body["data"] == {"child": None}
    errors = {".".join(map(str, e["path"])): e["extensions"] for e in body["errors"]}
    assert errors[f"child.{field}"] == {"code": "FORBIDDEN", "scope": IDENTITY}
    released = {name for name, (_, needs) in FIELDS.items() if needs == scope}
    expected = expected_child(record(gateway, "ordinary"))
    told = dumps(body)
    assert not {v for name in released for v in strings(expected[name]) if v in told}, (
        "a child nulled by propagation carries none of its fields")


@pytest.mark.parametrize("scopes", [
    *(s for s in CHILD_SCOPES if s != IDENTITY),
    SENSITIVE,
    SHIELDED,
    " ".join(s for s in (*CHILD_SCOPES, SENSITIVE, SHIELDED) if s != IDENTITY),
])
async def test_find_children_needs_the_identity_scope(gateway, scopes):
    before = total_hits(gateway)
    body = await gateway.gql(FIND_QUERY, {"s": {"nhsNumber": gateway.fixtures["ordinary"]}},
                             scopes=scopes)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["path"] == ["findChildren"]
    assert error["extensions"] == {"code": "FORBIDDEN", "scope": IDENTITY}
    assert total_hits(gateway) == before
    told = dumps(body)
    assert not {v for v in personal_strings(record(gateway, "ordinary")) if v in told}
