"""Property: a document run from its execution plan answers exactly as strawberry's executor.

Hypothesis draws `child` documents (aliases, repeated fields, named and inline
fragments, `@include`/`@skip` with literal and variable conditions, one or two
roots, variables) and scopes, as `test_child_property` does; a second property
draws `findChildren` documents the same way. Each document
runs through the same gateway, on a warm cache, twice with the plans turned
off (the first fills the cache) and then twice with them on (the first
learns the document, the second runs its plan). The planned answer must equal the
executor's byte for byte once parsed: `data`, and every error's message,
path, locations and extensions; and the audit notes of the two requests
must record the same released and withheld fields with the same outcomes.
Errors are compared in a fixed order: with two roots their order is a matter
of timing on either path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.property.documents import documents, render, scope_sets, too_complex
from tests.property.profiles import examples, timeout
from tests.property.reference import ALL_SCOPES
from tests.property.runner import _searches, search_input, world_of


def _notes(accesses: list[Any]) -> list[tuple[Any, ...]]:
    return [(a.action, a.purpose, a.case_reference, a.outcome, sorted(a.released),
             sorted(a.withheld.items()), a.shielded, a.sensitive_released) for a in accesses]


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its errors in a fixed order.

    Two `child` roots run concurrently, on either path, so which one's errors
    come first is a matter of timing (two executor runs differ too).
    """
    errors = sorted(body.get("errors", []), key=lambda e: json.dumps(e, sort_keys=True))
    return {**body, "errors": errors}


class _Recorder:
    """The runtime's accountability, noting what each request would record."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[list[tuple[Any, ...]]] = []

    async def record(self, caller: Any, request_id: str, accesses: list[Any]) -> None:
        self.seen.append(_notes(accesses))
        await self.inner.record(caller, request_id, accesses)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@st.composite
def cases(draw: Any) -> tuple[Any, tuple[str, ...]]:
    return draw(documents("child")), draw(scope_sets(ALL_SCOPES))


@st.composite
def find_cases(draw: Any) -> tuple[Any, tuple[str, ...]]:
    return draw(documents("findChildren")), draw(scope_sets(ALL_SCOPES))


@pytest.mark.timeout(timeout(0.7))
@examples(0.7)
@given(case=cases())
async def test_a_planned_answer_equals_the_executors(gateway, case):
    await _planned_equals_executors(gateway, *case)


@pytest.mark.timeout(timeout(0.4))
@examples(0.4)
@given(case=find_cases())
async def test_a_planned_search_equals_the_executors(gateway, case):
    """`findChildren` takes an input object (converted for each request, never shared
    between requests) next to leaf arguments written out (converted once per plan)."""
    await _planned_equals_executors(gateway, *case)


async def _planned_equals_executors(gateway: Any, document: Any, scopes: tuple[str, ...]) -> None:
    runtime = gateway.runtime
    schema = runtime.schema
    plans = schema.plans
    assert plans is not None, "execution plans are on by default"
    world = world_of(gateway)
    ids = {f: gateway.id_for(r.nhs_number) for f, r in world.records.items()}
    searches = {s: search_input(s, world.records[s.fixture]) for s in _searches(document)}
    rendered = render(document, ids, searches)
    if too_complex(document, rendered.text):
        return  # refused before execution on every path: test_child_property's subject
    body = {"query": rendered.text, "variables": rendered.variables}
    token = gateway.token(" ".join(scopes))
    recorder = _Recorder(runtime.accountability)
    object.__setattr__(runtime, "accountability", recorder)  # the runtime is frozen
    try:
        schema.plans = None
        await gateway.post(body, token=token)  # fills the cache
        standard = await gateway.post(body, token=token)
        schema.plans = plans
        await gateway.post(body, token=token)  # learns the plan
        planned = await gateway.post(body, token=token)
    finally:
        schema.plans = plans
        object.__setattr__(runtime, "accountability", recorder.inner)
    known = plans.known(rendered.text, None)
    assert known is not None, f"a valid query was not planned:\n{rendered.text}"
    assert any(plan is not None for plan in known.plans.values()), rendered.text
    event(f"planned, {len(known.conditions)} condition variables")
    assert planned.status_code == standard.status_code
    assert _comparable(planned.json()) == _comparable(standard.json()), (
        f"\nquery: {rendered.text}")
    assert recorder.seen[3] == recorder.seen[1], f"audit notes differ\nquery: {rendered.text}"
