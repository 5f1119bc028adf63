"""Execution plans: a validated query document run without a resolver call per field.

graphql-core executes a document field by field, and strawberry wraps every
field that has a resolver (an `Info`, argument conversion, its extension
chain): for the `child` record that is some seventy field executions per
request. Yet once a document has been parsed and validated, everything the
executor works out per field -- which fields, under which response keys, of
which types, read how -- depends on the document alone. A `Plan` works it out
once; running it calls the root resolvers exactly as graphql-core does and then
reads each object's fields with plain functions: the same attributes and the
same resolver methods (so each `Child` field still records its own release or
withholding in the audit note, exactly as before), completed by the same rules
(the schema's scalars and enums, non-null checks, error paths and locations,
null propagation to the nearest nullable field, one error per nulled position).

What a plan does not cover, the schema executes as before: a document is only
planned after strawberry has run it once and validation passed (so parse and
validation errors, limits and refusals always come from the standard path),
and a plan is made only for a query whose every selected field is covered:
object types (no interfaces or unions, none in this schema), `@skip` and
`@include` with literal conditions (a condition naming a variable depends on
the request), no introspection field but `__typename`, and below the root only
fields without arguments whose resolvers take nothing but the object itself.
Mutations always take the standard path. Variables that do not coerce fall
back to it too, so their errors are the executor's own.

A root field's resolver is called without strawberry's wrapper where that
wrapper would only convert arguments and build an `Info` (`_Call`): the
arguments the document writes out as leaf values are converted once, the
others per request by strawberry's own `convert_arguments`. A root field with
extensions or permission classes, or a schema with exception handlers, keeps
the wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
from collections import OrderedDict
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar, cast

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    VariableNode,
    is_leaf_type,
    located_error,
    parse,
)
from graphql.execution.executor import Executor
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path, is_iterable
from strawberry.types import ExecutionResult

from gateway.logs import exception_summary
from resolvers.rootcalls import DEFINITION, RootCall, names_variable, root_call

if TYPE_CHECKING:
    import builtins
    from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager

    from graphql import (
        DocumentNode,
        FragmentSpreadNode,
        GraphQLLeafType,
        GraphQLOutputType,
        GraphQLSchema,
        SelectionNode,
    )
    from graphql import SelectionSetNode as SelectionSet
    from graphql.execution.values import VariableValues

__all__ = ["Known", "Plan", "Plans", "Uncompilable", "compile_plan", "know"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_complete_leaf = Executor.complete_leaf_value


class Uncompilable(Exception):  # noqa: N818 -- a reason, not a failure: the standard path runs
    """The document uses something a plan does not cover."""


class _Bubble(Exception):  # noqa: N818 -- control flow: a null on its way to a nullable field
    """A non-null field failed: its error travels to the nearest nullable field."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__()
        self.error = error


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True, slots=True)
class _Leaf:
    type: GraphQLLeafType
    same: builtins.type | None = None
    """Values of this exact Python type the scalar returns unchanged (str for String and
    ID, bool for Boolean), so completing them needs no call."""
    names: dict[object, str] | None = None
    """An enum's names by value, as its `coerce_output_value` answers for them."""

    @classmethod
    def of(cls, type_: GraphQLLeafType) -> _Leaf:
        if type_ is GraphQLString or type_ is GraphQLID:
            return cls(type_, str)
        if type_ is GraphQLBoolean:
            return cls(type_, bool)
        if isinstance(type_, GraphQLEnumType):
            names = {}
            for name, value in type_.values.items():
                with contextlib.suppress(TypeError):  # an unhashable value: asked each time
                    if type_.coerce_output_value(value.value) == name:
                        names[value.value] = name
            # strawberry's enum types hold the members' values, but resolvers return the
            # members (of `wrapped_cls`): those too, or each would take the slow path.
            wrapped = getattr(type_, "wrapped_cls", None)
            if isinstance(wrapped, type) and issubclass(wrapped, enum.Enum):
                for member in wrapped:
                    with contextlib.suppress(TypeError, ValueError, GraphQLError):
                        names[member] = type_.coerce_output_value(member)
            return cls(type_, None, names)
        return cls(type_)

    def complete(self, value: object) -> object:
        if self.same is not None and type(value) is self.same:
            return value
        if self.names is not None:
            with contextlib.suppress(TypeError):
                name = self.names.get(value)
                if name is not None:
                    return name
        return _complete_leaf(self.type, value)


@dataclass(frozen=True, slots=True)
class _List:
    item: _Node
    item_non_null: bool


@dataclass(frozen=True, slots=True)
class _Object:
    fields: tuple[_Field, ...]


_Node = _Leaf | _List | _Object


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    """The response key (the alias, else the field name)."""
    read: Callable[[Any], Any]
    node: _Node
    non_null: bool
    nodes: list[FieldNode]
    """Every field node merged under the key: an error's locations."""
    owner: str
    name: str


@dataclass(frozen=True, slots=True)
class _Root:
    key: str
    definition: GraphQLField | None
    """None for `__typename`."""
    node: _Node
    non_null: bool
    nodes: list[FieldNode]
    arguments: dict[str, Any] | None = None
    """The coerced arguments, when the document writes them all out (no variables)."""
    call: RootCall | None = None
    """The resolver called directly; None where `definition.resolve` (strawberry's
    wrapper) is called with `arguments`."""


@dataclass(frozen=True, slots=True)
class Plan:
    """One operation of one validated document, worked out once."""

    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    roots: tuple[_Root, ...]
    root_type: GraphQLObjectType
    label_document: DocumentNode
    """The parsed document, for the telemetry's operation label."""


class _Errors:
    """Field errors in the order they arose, one per nulled position (as graphql-core)."""

    __slots__ = ("_nulled", "errors")

    def __init__(self) -> None:
        self.errors: list[GraphQLError] = []
        self._nulled: set[tuple[str | int, ...]] = set()

    def add(self, error: GraphQLError, position: tuple[str | int, ...]) -> None:
        nulled = self._nulled
        if any(position[:depth] in nulled for depth in range(len(position) + 1)):
            return
        nulled.add(position)
        self.errors.append(error)


# ------------------------------------------------------------------------------ compiling


def _condition(node: SelectionNode, conditions: Mapping[str, object]) -> bool:
    """Whether `@skip`/`@include` keep the selection, given the condition variables' values."""
    keep = True
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            raise Uncompilable(f"directive @{name}")
        value = directive.arguments[0].value if directive.arguments else None
        if isinstance(value, BooleanValueNode):
            condition = value.value
        elif isinstance(value, VariableNode) and value.name.value in conditions:
            condition = conditions[value.name.value] is True
        else:
            raise Uncompilable(f"@{name} without a condition")
        keep = keep and (condition if name == "include" else not condition)
    return keep


def condition_variables(operation: OperationDefinitionNode,
                        fragments: Iterable[FragmentDefinitionNode]) -> tuple[str, ...]:
    """The variables that `@skip`/`@include` conditions name, in a fixed order."""
    names: set[str] = set()

    def visit(selection_set: SelectionSet | None) -> None:
        for selection in selection_set.selections if selection_set else ():
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)
            visit(getattr(selection, "selection_set", None))

    visit(operation.selection_set)
    for fragment in fragments:
        visit(fragment.selection_set)
    return tuple(sorted(names))


def _collect(type_name: str, selection_sets: Sequence[SelectionSet],
             fragments: dict[str, FragmentDefinitionNode],
             conditions: Mapping[str, object]) -> dict[str, list[FieldNode]]:
    """The fields selected on an object type, grouped by response key in document order."""
    fields: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()

    def visit(selection_set: SelectionSet) -> None:
        for selection in selection_set.selections:
            if not _condition(selection, conditions):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition, body = selection.type_condition, selection.selection_set
            else:
                name = cast("FragmentSpreadNode", selection).name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = fragments[name]
                condition, body = fragment.type_condition, fragment.selection_set
            if condition is not None and condition.name.value != type_name:
                raise Uncompilable("a type condition naming another type")
            visit(body)

    for selection_set in selection_sets:
        visit(selection_set)
    return fields


def _typename(type_name: str) -> Callable[[Any], str]:
    return lambda _source: type_name


def _reader(owner: GraphQLObjectType, name: str, definition: GraphQLField) -> Callable[[Any], Any]:
    """A plain function reading field `name` of an `owner` object, as strawberry would."""
    if name.startswith("__") or definition.args:
        raise Uncompilable(f"{owner.name}.{name}")
    field = (definition.extensions or {}).get(DEFINITION)
    if field is None or field.extensions or getattr(field, "permission_classes", None):
        raise Uncompilable(f"{owner.name}.{name} has extensions")
    resolver = field.base_resolver
    if resolver is None:
        return attrgetter(field.python_name)
    function = resolver.wrapped_func
    parameters = list(inspect.signature(function).parameters)
    if field.is_async or parameters != ["self"]:
        raise Uncompilable(f"{owner.name}.{name} needs more than its object")
    return function  # type: ignore[no-any-return]


class _Compiler:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode],
                 conditions: Mapping[str, object]) -> None:
        self._fragments = fragments
        self._conditions = conditions

    def node(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> tuple[_Node, bool]:
        """The completion of a value of `type_`, and whether it is non-null."""
        if isinstance(type_, GraphQLNonNull):
            return self.node(type_.of_type, nodes)[0], True
        if isinstance(type_, GraphQLList):
            item, item_non_null = self.node(type_.of_type, nodes)
            return _List(item, item_non_null), False
        if is_leaf_type(type_):
            return _Leaf.of(type_), False
        if isinstance(type_, GraphQLObjectType):
            sets = [n.selection_set for n in nodes if n.selection_set is not None]
            return self.object(type_, sets), False
        raise Uncompilable(f"type {type_}")

    def object(self, type_: GraphQLObjectType, sets: Sequence[SelectionSet]) -> _Object:
        steps = []
        for key, nodes in _collect(type_.name, sets, self._fragments,
                                   self._conditions).items():
            name = nodes[0].name.value
            if name == "__typename":
                steps.append(_Field(key, _typename(type_.name), _Leaf.of(GraphQLString), True,
                                    nodes, type_.name, name))
                continue
            field = type_.fields.get(name)
            if field is None:
                raise Uncompilable(f"{type_.name}.{name}")
            node, non_null = self.node(field.type, nodes)
            steps.append(_Field(key, _reader(type_, name, field), node, non_null, nodes,
                                type_.name, name))
        return _Object(tuple(steps))


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) != 1:
            raise Uncompilable("no single operation")
        return operations[0]
    for operation in operations:
        if operation.name is not None and operation.name.value == name:
            return operation
    raise Uncompilable("no such operation")


@dataclass(slots=True)
class Known:
    """A validated query document's operation: its plans by the values of its conditions."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    conditions: tuple[str, ...]
    plans: dict[tuple[object, ...], Plan | None]
    label: str | None = None
    """The operation's telemetry label, once worked out."""


MAX_PLANS_PER_DOCUMENT = 16
"""Plans kept for one document (one per combination of its condition variables' values)."""


def know(query: str, operation_name: str | None) -> Known:
    """A document that has already passed validation, ready to plan; raises `Uncompilable`."""
    document = parse(query)
    operation = _operation(document, operation_name)
    if operation.operation is not OperationType.QUERY:
        raise Uncompilable(f"a {operation.operation.value}")
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    if any(getattr(d, "variable_definitions", None) for d in fragments.values()):
        raise Uncompilable("fragment variables")
    return Known(document, operation, fragments,
                 condition_variables(operation, fragments.values()), {})


def _literal_arguments(field: GraphQLField, node: FieldNode) -> dict[str, Any] | None:
    """The field's coerced arguments if no variable is among them (else None: per request)."""
    if not field.args and not node.arguments:
        return {}
    if any(names_variable(argument.value) for argument in node.arguments or ()):
        return None
    return get_argument_values(field, node)




def compile_plan(schema: GraphQLSchema, known: Known, conditions: Mapping[str, object]) -> Plan:
    """The plan of `known` for these condition values; raises `Uncompilable`."""
    root_type = schema.query_type
    assert root_type is not None  # noqa: S101 -- strawberry schemas always have one
    compiler = _Compiler(known.fragments, conditions)
    roots = []
    for key, nodes in _collect(root_type.name, [known.operation.selection_set], known.fragments,
                               conditions).items():
        name = nodes[0].name.value
        if name == "__typename":
            roots.append(_Root(key, None, _Leaf.of(GraphQLString), True, nodes))
            continue
        field = root_type.fields.get(name)
        if field is None or field.resolve is None:
            raise Uncompilable(f"root field {name}")
        node, non_null = compiler.node(field.type, nodes)
        call = root_call(field, nodes[0], schema)
        arguments = None if call is not None else _literal_arguments(field, nodes[0])
        roots.append(_Root(key, field, node, non_null, nodes, arguments, call))
    return Plan(known.operation, known.fragments, tuple(roots), root_type, known.document)


# ------------------------------------------------------------------------------ running


def _is_awaitable(value: object) -> TypeGuard[Awaitable[Any]]:
    return inspect.isawaitable(value)


def _checked(value: object, non_null: bool, owner: str, name: str) -> object:
    """`value`, unless it is a null where the type allows none (graphql-core's wording)."""
    if value is None and non_null:
        raise TypeError(f"Cannot return null for non-nullable field {owner}.{name}.")
    return value


def _complete(node: _Node, value: object, step: _Field | _Root, owner: str,
              path: tuple[str | int, ...], errors: _Errors) -> object:
    """A resolved value completed as its type says; raises what the executor would."""
    if isinstance(value, Exception):
        raise value
    if value is None or value is Undefined:
        return None
    if isinstance(node, _Leaf):
        return node.complete(value)
    if isinstance(node, _Object):
        return _run_object(node, value, path, errors)
    if value.__class__ is not list and not is_iterable(value):
        raise GraphQLError(  # graphql-core's wording
            f"Expected Iterable, but did not find one for field '{owner}.{_name(step)}'.")
    items = []
    item_node, item_non_null = node.item, node.item_non_null
    for index, item in enumerate(value):
        try:
            # As `_run_object` does for a field: a null or a leaf without another call.
            if item is None or item is Undefined:
                completed = None
            elif item_node.__class__ is _Leaf and not isinstance(item, Exception):
                completed = item_node.complete(item)
            else:
                completed = _complete(item_node, item, step, owner, (*path, index), errors)
            if completed is None and item_non_null:
                _checked(completed, True, owner, _name(step))
        except _Bubble as bubble:
            if item_non_null:
                raise
            errors.add(bubble.error, (*path, index))
            completed = None
        except Exception as exc:  # noqa: BLE001 -- every error becomes the field's, located
            error = located_error(exc, step.nodes, [*path, index])
            if item_non_null:
                raise _Bubble(error) from None
            errors.add(error, (*path, index))
            completed = None
        items.append(completed)
    return items


def _name(step: _Field | _Root) -> str:
    return step.name if isinstance(step, _Field) else step.nodes[0].name.value


def _run_object(plan: _Object, source: object, path: tuple[str | int, ...],
                errors: _Errors) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for step in plan.fields:
        try:
            value = step.read(source)
            node = step.node
            if value is None or value is Undefined:
                value = None
            elif node.__class__ is _Leaf and not isinstance(value, Exception):
                value = node.complete(value)
            else:
                value = _complete(node, value, step, step.owner, (*path, step.key), errors)
            if value is None and step.non_null:
                _checked(value, True, step.owner, step.name)
        except _Bubble as bubble:
            if step.non_null:
                raise
            errors.add(bubble.error, (*path, step.key))
            value = None
        except Exception as exc:  # noqa: BLE001 -- every error becomes the field's, located
            error = located_error(exc, step.nodes, [*path, step.key])
            if step.non_null:
                raise _Bubble(error) from None
            errors.add(error, (*path, step.key))
            value = None
        out[step.key] = value
    return out


_NULLED = object()
"""A non-null root field failed: `data` is null."""


def _resolve_info(plan: Plan, root: _Root, definition: GraphQLField, variables: VariableValues,
                  context: object, schema: GraphQLSchema) -> GraphQLResolveInfo[Any]:
    return GraphQLResolveInfo(
        root.nodes[0].name.value, root.nodes, definition.type, plan.root_type,
        Path(None, root.key, plan.root_type.name), schema, plan.fragments, None,
        plan.operation, variables, context, _is_awaitable, None,
        None)  # type: ignore[arg-type]  # our resolvers use neither helper


async def _run_root(plan: Plan, root: _Root, variables: VariableValues, context: object,
                    schema: GraphQLSchema, errors: _Errors) -> object:
    at = (root.key,)
    if root.definition is None:  # __typename
        return plan.root_type.name
    try:
        first = root.nodes[0]
        call = root.call
        if call is not None:
            value = call(_resolve_info(plan, root, root.definition, variables, context, schema)
                         if call.needs_info else None, variables)
        else:
            arguments = (dict(root.arguments) if root.arguments is not None
                         else get_argument_values(root.definition, first, variables))
            info = _resolve_info(plan, root, root.definition, variables, context, schema)
            value = root.definition.resolve(None, info, **arguments)  # type: ignore[misc]
        if inspect.isawaitable(value):
            value = await value
        completed = _checked(_complete(root.node, value, root, plan.root_type.name, at, errors),
                             root.non_null, plan.root_type.name, first.name.value)
    except _Bubble as bubble:
        if root.non_null:
            errors.add(bubble.error, ())
            return _NULLED
        errors.add(bubble.error, at)
        return None
    except Exception as exc:  # noqa: BLE001 -- every error becomes the field's, located
        error = located_error(exc, root.nodes, list(at))
        if root.non_null:
            errors.add(error, ())
            return _NULLED
        errors.add(error, at)
        return None
    return completed


async def run_plan(plan: Plan, schema: GraphQLSchema, variables: VariableValues,
                   context: object) -> ExecutionResult:
    """The plan's result for these (coerced) variables."""
    errors = _Errors()
    if len(plan.roots) == 1:  # no task to make: the one root runs in this one
        values = [await _run_root(plan, plan.roots[0], variables, context, schema, errors)]
    else:
        values = await asyncio.gather(*(_run_root(plan, root, variables, context, schema, errors)
                                        for root in plan.roots))
    data = (None if any(v is _NULLED for v in values)
            else {root.key: value for root, value in zip(plan.roots, values, strict=True)})
    return ExecutionResult(data=data, errors=errors.errors or None)


# ------------------------------------------------------------------------------ the cache


class Plans:
    """Documents known to pass validation, by (text, operation name), and their plans.

    A document becomes known the first time the standard path ran it past
    validation; one that cannot be planned is remembered as such (None), so it
    is tried once. At most `size` documents, least recently used dropped first;
    for each, at most `MAX_PLANS_PER_DOCUMENT` plans (one per combination of the
    values of the variables its `@skip`/`@include` conditions name).
    """

    def __init__(self, schema: GraphQLSchema, size: int,
                 label: Callable[[DocumentNode, str | None], str],
                 observe: Callable[[str], AbstractContextManager[object]],
                 mask: Callable[[list[GraphQLError]], list[GraphQLError]]) -> None:
        self._schema = schema
        self._size = size
        self._label = label
        self._known: OrderedDict[tuple[str, str | None], Known | None] = OrderedDict()
        self._observe = observe
        self._mask = mask

    def known(self, query: str, operation_name: str | None) -> Known | None:
        key = (query, operation_name)
        known = self._known.get(key)
        if known is not None:
            self._known.move_to_end(key)
        return known

    def learn(self, query: str, operation_name: str | None, result: ExecutionResult) -> None:
        """After the standard path ran `query`: know it if validation passed."""
        key = (query, operation_name)
        if key in self._known or _is_request_error(result):
            return
        self._known[key] = _attempt(lambda: know(query, operation_name))
        if len(self._known) > self._size:
            self._known.popitem(last=False)

    def plan(self, known: Known, variables: VariableValues) -> Plan | None:
        """The plan for these variables' condition values (made once); None if none can be."""
        values = variables.coerced
        if any(name not in values for name in known.conditions):
            return None
        key = tuple(values[name] for name in known.conditions)
        if key in known.plans:
            return known.plans[key]
        if len(known.plans) >= MAX_PLANS_PER_DOCUMENT:
            return None
        plan = known.plans[key] = _attempt(lambda: compile_plan(self._schema, known, values))
        return plan

    async def run(self, known: Known, variables: dict[str, Any] | None,
                  context: object) -> ExecutionResult | None:
        """The planned result; None where there is no plan (the standard path runs)."""
        coerced = get_variable_values(self._schema, known.operation.variable_definitions or (),
                                      variables or {})
        if isinstance(coerced, list):  # the standard path reports the variables' errors
            return None
        plan = self.plan(known, coerced)
        if plan is None:
            return None
        if known.label is None:
            name = known.operation.name
            known.label = self._label(known.document, None if name is None else name.value)
        with self._observe(known.label):
            result = await run_plan(plan, self._schema, coerced, context)
        if result.errors:
            result.errors = self._mask(result.errors)
        return result

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(list(self._known))


def _attempt(make: Callable[[], _T]) -> _T | None:
    """`make()`, or None where there can be no plan: never a failed request, as the
    standard path then runs."""
    try:
        return make()
    except Uncompilable:
        return None
    except Exception as exc:  # noqa: BLE001 -- a bug here must not fail the request
        log.warning("no execution plan: %s", exception_summary(exc))
        return None


def _is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable errors: execution never started."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)
