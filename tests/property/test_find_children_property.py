"""Property: every `findChildren` answer equals the reference.

Searches are drawn over the fixture children: by NHS number (plain or
spaced) or by family name + date of birth + given name and/or postcode (case
and spacing varied, sometimes a given name nobody has), with random scopes,
purposes and case references, one or two root fields, and the same document
shapes as the `child` property. The reference finds children in the
population records itself and applies the rules: identity is needed (else
FORBIDDEN, and `data` is null: the field is non-null), 18+ without consent
are never found, and a postcode the caller may not see (no contact scope, or
a shielded child without the shielded scope and a case reference) is never
matched on. See `test_child_property` for how the async property runs.
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

SHARE = 0.4


@st.composite
def find_cases(draw):
    document = draw(documents("findChildren"))
    return Case(document, draw(scope_sets(ALL_SCOPES)))


@pytest.mark.timeout(timeout(SHARE))
@examples(SHARE)
@given(case=find_cases())
async def test_find_children_answers_equal_the_reference(gateway, redis_client, caplog, case):
    caplog.set_level(logging.DEBUG)
    await run_case(gateway, redis_client, caplog, case)
