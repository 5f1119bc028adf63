"""Explicit examples of the tricky shapes, checked both against the reference and by hand.

Each runs through the property's runner (cold and warm cache, reference
comparison, leak checks in the response, logs and Redis) and then states the
expected answer in plain terms, so a reader need not trust the reference.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from tests.integration.harness import errors_by_path
from tests.property.documents import (
    MAX_ALIASES,
    MAX_TOKENS,
    EnumValue,
    IdOf,
    count_aliases,
    count_tokens,
    from_text,
    padding,
    render,
)
from tests.property.reference import (
    ALL_SCOPES,
    CONTACT,
    EDUCATION,
    IDENTITY,
    SENSITIVE,
    SERVICES,
    SHIELDED,
)
from tests.property.runner import Case, run_case, world_of


@pytest.fixture
def play(gateway, redis_client, caplog):
    caplog.set_level(logging.DEBUG)

    async def play(text: str, scopes: tuple[str, ...], **values) -> dict:
        document = from_text(text, values)
        return await run_case(gateway, redis_client, caplog, Case(document, scopes))

    return play


# --- the same field twice, one alias under @skip ------------------------------

TWICE = """query($id: ID!, $hide: Boolean!) {
  child(id: $id, purpose: SAFEGUARDING) {
    a: address { lines }
    b: address @skip(if: $hide) { postcode }
    c: address @skip(if: true) { postcode }
    address { postcode }
  }
}"""


@pytest.mark.parametrize("hide", [True, False])
async def test_same_field_twice_with_aliases_one_skipped(gateway, play, hide):
    body = await play(TWICE, (IDENTITY, CONTACT), id=IdOf("ordinary"), hide=hide)
    home = world_of(gateway).records["ordinary"].home
    expected = {"a": {"lines": [*home.lines, home.town]}, "address": {"postcode": home.postcode}}
    if not hide:
        expected = {"a": expected["a"], "b": {"postcode": home.postcode},
                    "address": expected["address"]}
    assert body == {"data": {"child": expected}}


async def test_a_skipped_alias_of_a_withheld_field_reports_nothing(play):
    # shielded child, no child.shielded.read: only the alias not skipped is SHIELDED
    body = await play(TWICE, (IDENTITY, CONTACT), id=IdOf("shielded"), hide=True)
    assert body["data"] == {"child": {"a": None, "address": None}}
    assert errors_by_path(body) == {"child.a": "SHIELDED", "child.address": "SHIELDED"}


async def test_the_same_field_twice_without_alias_is_one_answer(gateway, play):
    body = await play('query($id: ID!) { child(id: $id, purpose: EDUCATION) '
                      '{ gender gender primaryCare { practice { name } } '
                      'primaryCare { practice { phone } } } }',
                      (IDENTITY, EDUCATION, "child.health.read"), id=IdOf("ordinary"))
    gender = world_of(gateway).records["ordinary"].gender
    assert body["data"] == {"child": {"gender": gender, "primaryCare": None}}
    assert errors_by_path(body) == {"child.primaryCare": "FORBIDDEN"}  # EDUCATION: no health
    [error] = body["errors"]
    assert error["extensions"]["scope"] == "child.health.read"


# --- a fragment spread asking for a shielded child's location -----------------

WHERE = """query($id: ID!, $case: String) {
  child(id: $id, purpose: SOCIAL_CARE, caseReference: $case) { id ...Where }
}
fragment Where on Child {
  address { postcode }
  education { school { name } }
  carers { relationship address { postcode } }
  services { kind contact }
}"""
SHIELDED_PATHS = {"child.address", "child.education", "child.carers",
                  "child.services.0.contact"}


@pytest.mark.parametrize(("scopes", "case", "revealed"), [
    ((CONTACT, EDUCATION, SERVICES, SHIELDED), "CASE-42", True),
    ((CONTACT, EDUCATION, SERVICES, SHIELDED), None, False),
    ((CONTACT, EDUCATION, SERVICES, SHIELDED), "   ", False),
    ((CONTACT, EDUCATION, SERVICES), "CASE-42", False),
])
async def test_a_fragment_spread_asking_for_a_shielded_childs_location(
        gateway, play, scopes, case, revealed):
    body = await play(WHERE, scopes, id=IdOf("shielded"), case=case)
    record = world_of(gateway).records["shielded"]
    assert len(record.carers) == 2
    assert len(record.council.involvements) == 1
    child = body["data"]["child"]
    if revealed:
        assert "errors" not in body
        assert child["address"] == {"postcode": record.home.postcode}
        assert child["education"] == {"school": {"name": record.school.name}}
        assert child["services"][0]["contact"] == record.council.involvements[0].contact
        assert child["carers"] == [{"relationship": c.relationship,
                                    "address": {"postcode": c.address.postcode}}
                                   for c in record.carers]
        return
    assert child["address"] is None
    assert child["education"] is None
    assert child["carers"] is None   # the carers in full, not only their addresses
    assert errors_by_path(body) == dict.fromkeys(SHIELDED_PATHS, "SHIELDED")
    for value in (record.home.postcode, record.school.name,
                  *(c.address.postcode for c in record.carers)):
        assert value not in str(body)


# --- a sensitive service inside an inline fragment -----------------------------

HIDDEN = """query($id: ID!, $purpose: Purpose!, $yes: Boolean = true) {
  child(id: $id, purpose: $purpose) {
    services { kind }
    ... on Child { s2: services { name sensitive } }
    ... @include(if: $yes) { ... on Child { services { contact } } }
  }
}"""


@pytest.mark.parametrize(("fixture", "purpose", "scopes", "shown"), [
    ("sensitive_consented", "SAFEGUARDING", (SERVICES, SENSITIVE), True),
    ("sensitive_consented", "HEALTH_CARE", (SERVICES, SENSITIVE), True),
    ("sensitive_consented", "EARLY_HELP", (SERVICES, SENSITIVE), False),  # not permitted
    ("sensitive_consented", "SAFEGUARDING", (SERVICES,), False),
    ("sensitive_unconsented", "SAFEGUARDING", (SERVICES, SENSITIVE), False),  # no consent
])
async def test_a_sensitive_service_inside_an_inline_fragment(
        gateway, play, fixture, purpose, scopes, shown):
    body = await play(HIDDEN, scopes, id=IdOf(fixture), purpose=EnumValue(purpose))
    services = world_of(gateway).records[fixture].council.involvements
    [sensitive] = [s for s in services if s.sensitive]
    visible = [s for s in services if not s.sensitive or shown]
    assert "errors" not in body, "an absent sensitive service is no error"
    assert body["data"] == {"child": {
        "services": [{"kind": s.kind, "contact": s.contact} for s in visible],
        "s2": [{"name": s.name, "sensitive": s.sensitive} for s in visible],
    }}
    if not shown:
        assert sensitive.name not in str(body)
        assert sensitive.kind not in str(body)


# --- non-null fields withheld ---------------------------------------------------


async def test_an_aliased_non_null_field_withheld_nulls_the_child(play):
    body = await play('query($id: ID!) { child(id: $id, purpose: SAFEGUARDING) '
                      '{ address { postcode } s: shielded } }', (CONTACT,), id=IdOf("ordinary"))
    assert body["data"] == {"child": None}
    assert errors_by_path(body)["child.s"] == "FORBIDDEN"


# --- the shape limits at their boundaries --------------------------------------


def _aliased(count: int) -> str:
    """A document of exactly `count` aliases, some through a fragment spread twice."""
    assert count >= 4
    inline = " ".join(f"n{i}: nhsNumber" for i in range(count - 4))
    return ('query($id: ID!) { child(id: $id, purpose: SAFEGUARDING) '
            f'{{ {inline} ...F ... on Child {{ ...F }} }} }} '
            'fragment F on Child { g: gender d: dateOfBirth }')


@pytest.mark.parametrize("count", [MAX_ALIASES, MAX_ALIASES + 1])
async def test_alias_limit_boundary(play, count):
    text = _aliased(count)
    assert count_aliases(from_text(text, {"id": IdOf("ordinary")})) == count
    body = await play(text, ALL_SCOPES, id=IdOf("ordinary"))
    if count <= MAX_ALIASES:
        assert body["data"]["child"]["g"]
    else:
        assert "data" not in body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


@pytest.mark.parametrize("tokens", [MAX_TOKENS, MAX_TOKENS + 1])
async def test_token_limit_boundary(gateway, redis_client, caplog, tokens):
    caplog.set_level(logging.DEBUG)
    base = from_text('query($id: ID!) { child(id: $id, purpose: SAFEGUARDING) { gender } }',
                     {"id": IdOf("ordinary")})
    [root] = base.roots
    short = count_tokens(render(base, {"ordinary": "x"}).text)
    padded = replace(base, roots=(replace(root, selections=root.selections
                                          + padding(tokens - short)),))
    assert count_tokens(render(padded, {"ordinary": "x"}).text) == tokens
    body = await run_case(gateway, redis_client, caplog, Case(padded, ALL_SCOPES))
    if tokens <= MAX_TOKENS:
        assert body["data"]["child"]["__typename"] == "Child"
    else:
        assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


# --- found by the property tests ------------------------------------------------


async def test_many_repeated_fields_are_answered_or_too_complex(gateway):
    """708 repeats exhaust graphql-core's overlapping-fields budget: QUERY_TOO_COMPLEX."""
    text = ('query($id: ID!) { child(id: $id, purpose: SAFEGUARDING) { '
            + " ".join(["gender"] * 708) + " } }")
    assert count_tokens(text) < 2_000  # within the token limit
    nhs = gateway.fixtures["ordinary"]
    body = await gateway.gql(text, {"id": gateway.id_for(nhs)})
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    assert codes <= {"QUERY_TOO_COMPLEX"}, body
    if not codes:
        assert body["data"]["child"]["gender"] == gateway.sims.population.child(nhs).gender
