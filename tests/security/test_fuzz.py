"""Fuzz: hypothesis-graphql documents over `schema.graphql`, sent to the production-mode gateway.

hypothesis-graphql (`gql_st.queries`) draws valid documents over the whole
public schema (every root field, any sub-selection, arguments of every input
type). Its string-like scalars (`ID`, `String`, `Date`) are drawn as
placeholders that name a fixture child's value (`@@ID:ordinary@@`,
`@@NHS:shielded@@`, `@@POSTCODE:...@@`, ...) or a plausible bad value, and the
placeholders are replaced with the real values (ids from `gateway.id_for`)
before sending, so the documents reach the resolvers instead of stopping at
NOT_FOUND. Each is sent with a token of every scope (sometimes `audit.read`
too) or of a restricted set without `child.contact.read`,
`child.education.read` and `child.health.read`. Asserted for each:

- no 5xx;
- every error has an `extensions.code` from the documented set, never
  INTERNAL_SERVER_ERROR, and no error message shows a stack trace or an
  exception's class;
- with a restricted token, no location value of any fixture child (home and
  carer address lines and postcodes, carer phones, school and GP practice
  names, addresses and phones) appears anywhere in the body, unless the
  document itself carries it (a search's postcode).

The gateway has the property suite's generous budgets and rate limits, so the
fuzz meets the release rules, not refusals for volume. Examples: 40 in CI,
2,000 with `HYPOTHESIS_PROFILE=thorough` (or `security-thorough`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from hypothesis_graphql import strategies as gql_st

from tests.integration.support import CHILD_SCOPES, CONTACT, EDUCATION, HEALTH, record
from tests.property.documents import FIXTURES
from tests.security.test_graphql_cop import DISCLOSURE

SCHEMA_SDL = (Path(__file__).resolve().parents[2] / "schema.graphql").read_text(encoding="utf-8")

settings.register_profile(
    "security-ci", max_examples=40, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.filter_too_much])
settings.register_profile("security-thorough", settings.get_profile("security-ci"),
                          max_examples=2000)
PROFILE_NAME = ("security-thorough"
                if os.environ.get("HYPOTHESIS_PROFILE") in {"thorough", "security-thorough"}
                else "security-ci")
PROFILE = settings.get_profile(PROFILE_NAME)
TIMEOUT = 60 + 1.5 * PROFILE.max_examples

DOCUMENTED_CODES = frozenset({
    "UNAUTHENTICATED", "FORBIDDEN", "SHIELDED", "NOT_FOUND", "BAD_USER_INPUT", "RATE_LIMITED",
    "ACCESS_BUDGET_EXCEEDED", "UPSTREAM_UNAVAILABLE", "QUERY_TOO_COMPLEX",
    "INTERNAL_SERVER_ERROR", "AUDIT_UNAVAILABLE", "BUDGETS_UNAVAILABLE", "ERRORS_TRUNCATED"})

ALL_SCOPES = (*CHILD_SCOPES, "child.sensitive.read", "child.shielded.read")
LOCATION_SCOPES = frozenset({CONTACT, EDUCATION, HEALTH})
RESTRICTABLE = (*tuple(s for s in ALL_SCOPES if s not in LOCATION_SCOPES), "audit.read")

CASE_ARGUMENT = re.compile(r'caseReference: "(?:[^"\\]|\\.)*"')
# Drawn for every caseReference argument: mostly valid references, so that the
# documents reach the release rules; None keeps hypothesis-graphql's string.
CASE_REFERENCES = st.sampled_from(["CASE-1", "CS/2026/00123", "CASE-1", None])
PLACEHOLDER = re.compile(r"@@(ID|NHS|FAMILY|GIVEN|POSTCODE|DOB):([a-z_]+)@@")


def _placeholders(kind: str) -> st.SearchStrategy[str]:
    return st.sampled_from(FIXTURES).map(lambda f: f"@@{kind}:{f}@@")


ID_VALUES = st.one_of(_placeholders("ID"), st.sampled_from(["c1.forged", "", "x" * 64]))
STRING_VALUES = st.one_of(
    _placeholders("NHS"), _placeholders("FAMILY"), _placeholders("GIVEN"),
    _placeholders("POSTCODE"),
    st.sampled_from(["CASE-1", "CS/2026/00123", "", "9999898882", "SW1A 1AA", "2015-01-01"]),
    st.text(max_size=24))
DATE_VALUES = st.one_of(_placeholders("DOB"),
                        st.sampled_from(["2015-01-01", "2015-13-45", "", "yesterday"]))

QUERIES = gql_st.queries(SCHEMA_SDL, custom_scalars={
    "ID": ID_VALUES.map(nodes.String),
    "String": STRING_VALUES.map(nodes.String),
    "Date": DATE_VALUES.map(nodes.String),
    "DateTime": st.sampled_from(["2026-01-01T00:00:00"]).map(nodes.String),
})


@st.composite
def scope_sets(draw) -> tuple[str, ...]:
    if draw(st.booleans()):
        extra = ("audit.read",) if draw(st.booleans()) else ()
        return (*ALL_SCOPES, *extra)
    return tuple(draw(st.lists(st.sampled_from(RESTRICTABLE), unique=True, max_size=5)))


def concrete(gateway, text: str) -> str:
    """The document with each placeholder replaced by the fixture child's value."""

    def value(match: re.Match[str]) -> str:
        kind, fixture = match.groups()
        child = record(gateway, fixture)
        if kind == "ID":
            return gateway.id_for(child.nhs_number)
        return {"NHS": child.nhs_number, "FAMILY": child.family, "GIVEN": child.given[0],
                "POSTCODE": child.home.postcode,
                "DOB": child.date_of_birth.isoformat()}[kind]

    return PLACEHOLDER.sub(value, text)


def location_strings(gateway) -> set[str]:
    """What `child.contact.read`, `child.education.read` and `child.health.read` release,
    for every fixture child."""
    values: set[str] = set()
    for fixture in FIXTURES:
        child = record(gateway, fixture)
        places = [child.home, *(c.address for c in child.carers)]
        values |= {c.phone for c in child.carers}
        for org in (child.school, child.practice):
            if org is not None:
                places.append(org.address)
                values |= {org.name, org.phone}
        for place in places:
            values |= {*place.lines, place.postcode, "".join(place.postcode.split())}
    return {v for v in values if v and len(v) >= 3}


def _word(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")


@pytest.mark.timeout(TIMEOUT)
@settings(PROFILE)
@given(query=QUERIES, scopes=scope_sets(), case=CASE_REFERENCES)
async def test_generated_queries_obey_the_rules(fuzz_gateway, query, scopes, case):
    gateway = fuzz_gateway
    if case is not None:
        query = CASE_ARGUMENT.sub(f'caseReference: "{case}"', query)
    text = concrete(gateway, query)
    # hypothesis-graphql draws the Purpose (an enum) itself, from every value
    response = await gateway.post({"query": text}, token=gateway.token(" ".join(scopes)))
    assert response.status_code < 500, (response.status_code, text, response.text[:2000])
    body = response.json()
    errors = body.get("errors", [])
    for error in errors:
        code = error.get("extensions", {}).get("code")
        event(f"code {code}")
        assert code in DOCUMENTED_CODES, (code, text, error)
        assert code != "INTERNAL_SERVER_ERROR", (text, error)
        assert not DISCLOSURE.search(error.get("message", "")), (text, error)
    if not errors:
        event("no errors")
    if any(v is not None for v in (body.get("data") or {}).values()):
        event("data released")
    if LOCATION_SCOPES.isdisjoint(scopes):
        event("restricted scopes")
        withheld = {v for v in location_strings(gateway) if v not in text}
        found = sorted(v for v in withheld if _word(v).search(response.text))
        assert not found, (f"withheld values {found} with scopes {scopes}", text,
                           response.text[:3000])
