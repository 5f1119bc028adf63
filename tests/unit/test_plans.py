"""Execution plans against strawberry's executor on a schema made to fail in every way.

Each document runs through `build_schema`'s standard path and then from its
plan, on the same objects; the formatted results must be equal: data, and
each error's message, path, locations and extensions. The schema has
non-null fields, non-null list items and nested non-null objects that fail,
resolvers that raise a gateway error (kept) or any other exception (masked,
"Internal error."), a resolver returning an exception, and a value no scalar
accepts; the documents use aliases, merged fields, fragments, `__typename` and
`@skip`/`@include` with literal and variable conditions.
"""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from gateway.core.errors import FieldWithheldError
from resolvers.plans import Plans, Uncompilable, know
from resolvers.schema import _mask, _MaskErrors, _QuietSchema

CALLS: list[str] = []


def _withheld() -> FieldWithheldError:
    return FieldWithheldError("SHIELDED", "This field is withheld.")


@strawberry.type
class Leaf:
    value: str
    number: int | None = None

    @strawberry.field
    def loud(self) -> str:
        CALLS.append(f"loud:{self.value}")
        if self.value == "bad":
            raise _withheld()
        return self.value.upper()

    @strawberry.field
    def broken(self) -> str | None:
        if self.value == "bad":
            raise KeyError("9999898882")  # an unexpected error: masked, its message never shown
        return self.value

    @strawberry.field
    def returned(self) -> str | None:
        return ValueError("returned") if self.value == "bad" else "fine"  # type: ignore[return-value]

    @strawberry.field
    def not_an_int(self) -> int | None:
        return "x" if self.value == "bad" else 1  # type: ignore[return-value]


@strawberry.type
class Box:
    name: str
    leaves: list[Leaf]
    strict_leaves: list[Leaf] | None
    maybe: list[Leaf | None] | None

    @strawberry.field
    def required(self) -> Leaf:
        return self.leaves[0]

    @strawberry.field
    def missing(self) -> Leaf:
        return None  # type: ignore[return-value]


def _box(*values: str) -> Box:
    leaves = [Leaf(value=v) for v in values]
    return Box(name="box", leaves=leaves, strict_leaves=leaves, maybe=[*leaves, None])


@strawberry.type
class Query:
    @strawberry.field
    async def box(self, name: str = "good") -> Box | None:
        return _box(name, "ok")

    @strawberry.field
    async def strict_box(self) -> Box:
        return _box("bad")

    @strawberry.field
    async def refused(self) -> Box | None:
        raise _withheld()


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self) -> int:
        return 1


DOCUMENTS = [
    "{ box { name leaves { value loud } } }",
    '{ box(name: "bad") { name leaves { value loud } } }',
    '{ box(name: "bad") { strictLeaves { loud } maybe { loud } } }',
    '{ box(name: "bad") { maybe { value broken returned notAnInt } } }',
    '{ box(name: "bad") { required { loud } name } }',
    "{ box { missing { value } name } }",
    "{ strictBox { name leaves { loud } } }",
    "{ strictBox { name } box { name } refused { name } }",
    "{ a: box { n: name } b: box { name } a: box { leaves { value } } }",
    "{ box { __typename ...F leaves { ... on Leaf { value } } } } fragment F on Box { name }",
    "{ box { name @skip(if: true) leaves @include(if: false) { value } maybe { value } } }",
    "query Q($on: Boolean!) { box { name @include(if: $on) leaves @skip(if: $on) { value } } }",
    "query Q($n: String) { box(name: $n) { name leaves { loud } } }",
    "{ __typename box { __typename leaves { __typename } } }",
]
VARIABLES: list[dict[str, Any] | None] = [None, {"on": True}, {"on": False}, {"n": "bad"}]


def _schema() -> _QuietSchema:
    schema = _QuietSchema(query=Query, mutation=Mutation, extensions=[
        lambda: _MaskErrors(should_mask_error=_mask, error_message="Internal error.")])
    masking = _MaskErrors(should_mask_error=_mask, error_message="Internal error.")
    schema.plans = Plans(schema._schema, 64, lambda *_: "-", lambda _: _nothing(), masking.mask)
    return schema


class _nothing:  # noqa: N801 -- a do-nothing context manager
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _formatted(result: Any) -> dict[str, Any]:
    return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("variables", VARIABLES)
async def test_a_plan_answers_as_the_executor(document, variables):
    names = set(variables or {})
    if any(f"${name}" not in document for name in names) or ("$" in document and not names):
        return
    schema = _schema()
    plans = schema.plans
    assert plans is not None
    schema.plans = None
    CALLS.clear()
    standard = await schema.execute(document, variable_values=variables)
    standard_calls = list(CALLS)
    schema.plans = plans
    await schema.execute(document, variable_values=variables)  # learns the document
    known = plans.known(document, None)
    assert known is not None
    CALLS.clear()
    planned = await schema.execute(document, variable_values=variables)
    assert any(plan is not None for plan in known.plans.values())
    assert _formatted(planned) == _formatted(standard)
    assert standard_calls == CALLS  # the same resolvers, in the same order


async def test_an_unexpected_errors_message_is_masked_on_the_planned_path():
    schema = _schema()
    document = '{ box(name: "bad") { maybe { broken } } }'
    await schema.execute(document)
    planned = await schema.execute(document)
    assert planned.errors
    assert {e.message for e in planned.errors} == {"Internal error."}
    assert "9999898882" not in str(_formatted(planned))


async def test_a_mutation_or_an_introspection_is_never_planned():
    schema = _schema()
    for document in ("mutation { touch }", "{ __schema { queryType { name } } }"):
        for _ in range(2):
            result = await schema.execute(document)
            assert not result.errors
        assert schema.plans is not None
        known = schema.plans.known(document, None)
        assert known is None or all(plan is None for plan in known.plans.values())
    with pytest.raises(Uncompilable):
        know("mutation { touch }", None)


async def test_a_document_that_failed_validation_is_not_learned():
    schema = _schema()
    result = await schema.execute("{ box { nope } }")
    assert result.errors
    assert schema.plans is not None
    assert schema.plans.known("{ box { nope } }", None) is None


async def test_variables_that_do_not_coerce_get_the_executors_errors():
    schema = _schema()
    document = "query Q($on: Boolean!) { box { name @include(if: $on) } }"
    await schema.execute(document, variable_values={"on": True})
    planned = await schema.execute(document, variable_values={"on": "yes"})
    schema.plans = None
    standard = await schema.execute(document, variable_values={"on": "yes"})
    assert planned.errors
    assert _formatted(planned) == _formatted(standard)
