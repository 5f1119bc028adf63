"""Execution plans against strawberry's executor on a schema made to fail in every way.

Each document runs through `build_schema`'s standard path and then from its
plan, on the same objects; the formatted results must be equal: data, and
each error's message, path, locations and extensions. The schema has
non-null fields, non-null list items and nested non-null objects that fail,
resolvers that raise a gateway error (kept) or any other exception (masked,
"Internal error."), a resolver returning an exception, and a value no scalar
accepts; the documents use aliases, merged fields, fragments, `__typename` and
`@skip`/`@include` with literal and variable conditions. A second schema's
root fields take every kind of argument (literal, variable, default, list,
input object, GlobalID, null), and one has a permission class and one a field
extension: the direct root calls must give each resolver what strawberry's
wrapper gives it.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import pytest
import strawberry
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry.types import Info

from gateway.core.errors import FieldWithheldError
from gateway.settings import LimitSettings
from resolvers.enums import Purpose, SourceState
from resolvers.plans import Plans, Uncompilable, _Leaf, compile_plan, know
from resolvers.schema import _mask, _MaskErrors, _QuietSchema, build_schema

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


@strawberry.enum
class Shade(Enum):
    LIGHT = "light"
    DARK = "dark"


@strawberry.type
class Box:
    name: str
    leaves: list[Leaf]
    strict_leaves: list[Leaf] | None
    maybe: list[Leaf | None] | None

    def _bad(self) -> bool:
        return any(leaf.value == "bad" for leaf in self.leaves)

    # Lists of leaves: completed item by item without a call each (plans' `_complete`).
    @strawberry.field
    def numbers(self) -> list[int] | None:
        return [len(leaf.value) for leaf in self.leaves] + (["x"] if self._bad() else [])  # type: ignore[operator]

    @strawberry.field
    def tags(self) -> list[str] | None:
        return [leaf.value for leaf in self.leaves] + ([None] if self._bad() else [])  # type: ignore[list-item]

    @strawberry.field
    def maybe_tags(self) -> list[str | None]:
        return [leaf.value for leaf in self.leaves] + [None]

    @strawberry.field
    def shades(self) -> list[Shade]:
        return [Shade.DARK if self._bad() else Shade.LIGHT, Shade.LIGHT]

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
    "{ box { numbers tags maybeTags shades } }",
    '{ box(name: "bad") { name numbers tags maybeTags shades } }',
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


# ------------------------------------------------------------------------------ root calls
#
# A root field's resolver is called directly where strawberry's wrapper would only convert
# arguments and build an `Info`: each document below runs through the executor and then
# from its plan (twice: fixed arguments are converted once per plan, and a resolver that
# changes a list it was given must not change the next request's), and the answers, the
# errors and what the resolvers received must be equal.


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.input
class Filter:
    names: list[str]
    colour: Colour = Colour.RED


class IsAllowed(BasePermission):
    message = "Not allowed."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        CALLS.append(f"permission:{sorted(kwargs.items())}")
        return bool(kwargs.get("name") != "secret")


class Upper(FieldExtension):
    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        CALLS.append(f"extension:{sorted(kwargs.items())}")
        return (await next_(source, info, **kwargs)).upper()


@strawberry.type
class ArgsQuery:
    @strawberry.field
    async def echo(self, info: Info, id: strawberry.ID, colour: Colour, note: str | None = None,
                   count: int = 3, tags: list[str] | None = None, filter: Filter | None = None,
                   when: dt.date | None = None) -> str:
        received = repr((self, id, colour, note, count, tags, filter, when, info.context,
                         info.field_name, info.path.as_list(), info.variable_values))
        CALLS.append(received)
        if tags is not None:
            tags.append("changed")  # by the resolver: never seen by the next request
        return received

    @strawberry.field
    def plain(self, n: int = 1) -> int:
        CALLS.append(f"plain:{n}")
        return n

    @strawberry.field
    def rooted(root) -> str:  # noqa: N805 -- strawberry's `root` parameter
        return repr(root)

    @strawberry.field
    async def explode(self, id: strawberry.ID) -> str | None:
        raise KeyError(id)  # unexpected: masked

    @strawberry.field
    async def node(self, id: strawberry.relay.GlobalID) -> str:
        return f"{id.type_name}:{id.node_id}"

    @strawberry.field(permission_classes=[IsAllowed])
    async def guarded(self, name: str) -> str:
        return name

    @strawberry.field(extensions=[Upper()])
    async def shout(self, word: str) -> str:
        return word


DIRECT = {"echo", "plain", "rooted", "explode", "node"}
"""The root fields called directly; the others keep strawberry's wrapper."""

ARGUMENT_CASES: list[tuple[str, dict[str, Any] | None]] = [
    ('query Q($id: ID!) { echo(id: $id, colour: BLUE, note: "n") }', {"id": "1"}),
    ("{ echo(id: 1, colour: RED) }", None),
    ('query Q($c: Colour!, $n: String) { echo(id: "1", colour: $c, note: $n) }', {"c": "BLUE"}),
    ('query Q($c: Colour!, $n: String) { echo(id: "1", colour: $c, note: $n) }',
     {"c": "RED", "n": None}),
    ('query Q($n: String = "d") { echo(id: "1", colour: RED, note: $n) }', None),
    ('query Q($t: [String!]) { echo(id: "1", colour: RED, tags: $t) }', {"t": ["a"]}),
    ('{ echo(id: "1", colour: RED, tags: ["a", "b"], filter: {names: ["x"]}) }', None),
    ('query Q($f: Filter) { echo(id: "1", colour: RED, filter: $f) }',
     {"f": {"names": ["y"], "colour": "BLUE"}}),
    ('{ echo(id: "1", colour: RED, when: "2020-01-02", count: 5, note: null) }', None),
    ('query Q($id: ID = "x") { echo(id: $id, colour: RED) }', {"id": None}),
    ('query Q($id: ID = "x") { echo(id: $id, colour: RED) }', None),
    ('{ a: echo(id: "1", colour: RED) b: echo(id: "2", colour: BLUE) plain rooted }', None),
    ("query Q($n: Int) { plain(n: $n) p: plain(n: 2) }", {"n": 7}),
    ('query Q($id: ID!) { explode(id: $id) }', {"id": "9999898882"}),
    ('{ node(id: "VGhpbmc6MQ==") }', None),
    ('{ node(id: "not a global id") }', None),
    ('{ guarded(name: "ok") }', None),
    ('{ guarded(name: "secret") }', None),
    ('query Q($n: String!) { guarded(name: $n) }', {"n": "secret"}),
    ('query Q($w: String!) { shout(word: "hi") again: shout(word: $w) }', {"w": "yo"}),
]


def _args_schema() -> _QuietSchema:
    schema = _QuietSchema(query=ArgsQuery, extensions=[
        lambda: _MaskErrors(should_mask_error=_mask, error_message="Internal error.")])
    masking = _MaskErrors(should_mask_error=_mask, error_message="Internal error.")
    schema.plans = Plans(schema._schema, 64, lambda *_: "-", lambda _: _nothing(), masking.mask)
    return schema


@pytest.mark.parametrize(("document", "variables"), ARGUMENT_CASES)
async def test_a_root_resolver_gets_the_arguments_the_executor_gives(document, variables):
    schema = _args_schema()
    plans = schema.plans
    assert plans is not None
    context = {"who": "tester"}
    schema.plans = None
    CALLS.clear()
    standard = await schema.execute(document, variable_values=variables, context_value=context)
    standard_calls = list(CALLS)
    schema.plans = plans
    await schema.execute(document, variable_values=variables, context_value=context)  # learns
    known = plans.known(document, None)
    assert known is not None
    for _ in range(2):
        CALLS.clear()
        planned = await schema.execute(document, variable_values=variables,
                                       context_value=context)
        [plan] = [plan for plan in known.plans.values() if plan is not None]
        assert _formatted(planned) == _formatted(standard)
        if len(plan.roots) == 1:
            assert standard_calls == CALLS
        else:  # the executor calls a sync root before any async one's body runs
            assert sorted(standard_calls) == sorted(CALLS)
    for root in plan.roots:
        assert (root.call is not None) == (root.nodes[0].name.value in DIRECT)


async def test_only_the_arguments_a_request_can_change_are_converted_per_request():
    document = ('query Q($id: ID!, $t: [String!]) { echo(id: $id, colour: BLUE, note: "n", '
                "tags: $t, when: \"2020-01-02\") }")
    schema = _args_schema()
    [root] = compile_plan(schema._schema, know(document, None), {}).roots
    assert root.call is not None
    assert root.call.fixed == {"colour": Colour.BLUE, "note": "n", "count": 3,
                               "when": dt.date(2020, 1, 2), "filter": None}
    assert root.call.varying is not None
    assert list(root.call.varying.args) == ["id", "tags"]  # a list: fresh for each request
    literal_list = compile_plan(schema._schema, know(
        '{ echo(id: "1", colour: RED, tags: ["a"], filter: {names: []}) }', None), {}).roots[0]
    assert literal_list.call is not None
    assert literal_list.call.varying is not None
    assert list(literal_list.call.varying.args) == ["tags", "filter"]
    plain = compile_plan(schema._schema, know("query Q($n: Int) { plain(n: $n) }", None),
                         {}).roots[0]
    assert plain.call is not None
    assert not plain.call.needs_info  # no `Info` parameter, and an Int's conversion reads none


async def test_the_gateways_child_field_is_called_directly():
    """`Query.child` as the bench sends it: if strawberry renames its wrapper or the schema
    gains something the direct call does not reproduce, this fails (the plans would
    still answer, through the wrapper, only slower)."""
    document = ('query Child($id: ID!) { child(id: $id, purpose: SAFEGUARDING, '
                'caseReference: "BENCH-1") { id } }')
    schema = build_schema(LimitSettings(), development=False)
    [root] = compile_plan(schema._schema, know(document, None), {}).roots
    assert root.call is not None
    assert root.call.fixed == {"purpose": Purpose.SAFEGUARDING, "case_reference": "BENCH-1"}
    assert root.call.varying is not None
    assert list(root.call.varying.args) == ["id"]
    assert root.call.info_name == "info"


@strawberry.type
class Oops:
    message: str


class OopsHandler(strawberry.ExceptionHandler[KeyError, Oops]):
    def handle(self, exception: KeyError, *, field: Any, info: Any) -> Oops:
        return Oops(message="oops")


@strawberry.type
class HandledQuery:
    @strawberry.field
    async def echo(self, word: str) -> str:
        return word

    @strawberry.field
    async def risky(self) -> Oops:
        raise KeyError("x")


def test_a_schema_with_exception_handlers_keeps_strawberrys_wrapper():
    schema = strawberry.Schema(query=HandledQuery, exception_handlers=[OopsHandler()])
    [root] = compile_plan(schema._schema, know('{ echo(word: "a") }', None), {}).roots
    assert root.call is None


def test_an_enum_leaf_names_the_members_resolvers_return_without_asking_the_type():
    # strawberry's enum type holds the members' values; the resolvers return members.
    schema = build_schema(LimitSettings(), development=False)
    source_state = schema._schema.type_map["SourceState"]
    leaf = _Leaf.of(source_state)
    assert leaf.names is not None
    for member in SourceState:
        assert leaf.names[member] == source_state.coerce_output_value(member)
        assert leaf.complete(member) == source_state.coerce_output_value(member)
        assert leaf.complete(member.value) == source_state.coerce_output_value(member)
