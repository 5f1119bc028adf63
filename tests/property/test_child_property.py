"""Property: every `child` answer equals an independent reference implementation of the rules.

Hypothesis draws query documents over the public schema (aliases, the same
field twice with and without aliases, named and inline fragments,
`@include`/`@skip` with literal and variable conditions, one or two `child`
root fields, id/purpose/caseReference as literals or variables; some past the
alias or token limits), a random set of the seven scopes, and for each root a
purpose, a case reference (none, "", "CASE-42") and a fixture child. Each
case runs on a cold then a warm cache (`tests.property.runner`).

How it runs: pytest-asyncio (1.x) runs hypothesis `@given` tests declared
`async def`: each example's coroutine runs on the test's event loop, so the
function-scoped async fixtures (simulators, JWKS, gateway, Redis client) are
set up once per test and shared by every example; hence the suppressed
`function_scoped_fixture` health check, and each example dropping the
gateway's cached answers itself. (A synchronous `@given` test driving its own
event loop would have to build the gateway per example or share a loop with
the fixtures; this needs neither.)

Examples: 150 in CI, 2,000 with `HYPOTHESIS_PROFILE=thorough`
(`tests.property.profiles`); `--hypothesis-show-statistics` shows what they
covered (error codes, null propagation, refusals, sensitive and shielded
releases).
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.property.documents import documents, scope_sets
from tests.property.profiles import examples, timeout
from tests.property.reference import ALL_SCOPES
from tests.property.runner import Case, run_case


@st.composite
def child_cases(draw):
    document = draw(documents("child"))
    return Case(document, draw(scope_sets(ALL_SCOPES)))


@pytest.mark.timeout(timeout())
@examples()
@given(case=child_cases())
async def test_child_answers_equal_the_reference(gateway, redis_client, caplog, case):
    caplog.set_level(logging.DEBUG)
    await run_case(gateway, redis_client, caplog, case)
