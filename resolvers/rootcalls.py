"""A root field's resolver called without strawberry's wrapper, for execution plans.

strawberry's wrapper (`GraphQLCoreConverter.from_resolver`) builds an `Info`
and converts every argument into its Python value (`convert_arguments`) on
every call, even those the document writes out. Where that is all it would do,
a plan (`resolvers.plans`) calls the resolver itself (`RootCall`): the
arguments the document writes out as leaf values are converted once, the
others per request by strawberry's own `convert_arguments`. A root field with
extensions or permission classes, or a schema with exception handlers, keeps
the wrapper (`root_call` returns None).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from graphql import (
    GraphQLField,
    ListValueNode,
    ObjectValueNode,
    VariableNode,
    get_nullable_type,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from graphql import FieldNode, GraphQLResolveInfo, GraphQLSchema, ValueNode
    from graphql.execution.values import VariableValues
    from strawberry.schema.config import StrawberryConfig
    from strawberry.types import Info
    from strawberry.types.arguments import StrawberryArgument

__all__ = ["DEFINITION", "RootCall", "names_variable", "root_call"]

DEFINITION = "strawberry-definition"
"""The key of a graphql-core field's extensions under which strawberry keeps its field."""

_WRAPPERS = frozenset({"GraphQLCoreConverter.from_resolver.<locals>._async_resolver",
                       "GraphQLCoreConverter.from_resolver.<locals>._resolver"})
"""strawberry's resolver wrappers: a root field resolved by anything else keeps its resolve."""

_IMMUTABLE = frozenset({str, int, float, bool, Decimal, UUID, dt.date, dt.datetime, dt.time,
                        type(None)})
"""The exact types of converted values a plan shares between requests (and enum members):
none a resolver could change under the next request."""


@dataclass(frozen=True, slots=True)
class RootCall:
    """A root field's resolver, called with the arguments strawberry's wrapper would pass.

    The wrapper (`GraphQLCoreConverter.from_resolver`) builds an `Info` and
    converts every argument into its Python value (`convert_arguments`) on
    every call, even those the document writes out. Here those are converted
    once (`fixed`); the others -- a variable among them, or a value a resolver
    could change under the next request -- are coerced by graphql-core and
    converted by strawberry per request. An `Info` is built only for a resolver
    that takes one or for a list or input object converted per request (an
    input type's `from_input` may read it).
    """

    function: Callable[..., Any]
    positional: tuple[None, ...]
    """The root value (None) for a `self` parameter; else nothing."""
    fixed: dict[str, Any]
    """The arguments the document fixes, converted, and the root value (None) for a
    `root` or `parent` parameter."""
    info_name: str | None
    """The resolver's `Info` parameter, if it has one."""
    needs_info: bool
    field: StrawberryField
    info_class: type[Info[Any, Any]]
    varying: GraphQLField | None
    """The field cut down to the arguments converted per request; None if none are."""
    varying_node: FieldNode
    """The field node cut down to those arguments: their coercion's errors locate as the
    executor's do."""
    varying_arguments: list[StrawberryArgument]
    scalar_registry: Mapping[object, Any]
    config: StrawberryConfig

    def __call__(self, raw_info: GraphQLResolveInfo[Any] | None,
                 variables: VariableValues) -> object:
        info = None if raw_info is None else self.info_class(_raw_info=raw_info, _field=self.field)
        arguments: dict[str, Any] = {}
        if self.varying is not None:
            arguments = convert_arguments(
                get_argument_values(self.varying, self.varying_node, variables),
                self.varying_arguments, self.scalar_registry, self.config, info)
        if self.info_name is not None:
            arguments[self.info_name] = info
        return self.function(*self.positional, **self.fixed, **arguments)


def root_call(definition: GraphQLField, node: FieldNode, schema: GraphQLSchema) -> RootCall | None:
    """A root field's direct call; None where strawberry's wrapper must run.

    The wrapper stays wherever it does more than convert arguments and build an
    `Info`: a field with extensions (permission classes are one), a schema with
    exception handlers, a field or resolver class of its own, a field resolved
    by something else.
    """
    strawberry_schema = getattr(schema, "_strawberry_schema", None)  # as `Info.schema` reads it
    field = (definition.extensions or {}).get(DEFINITION)
    if (strawberry_schema is None or getattr(strawberry_schema, "exception_handlers", None)
            or not isinstance(field, StrawberryField) or field.extensions
            or type(field).get_result is not StrawberryField.get_result
            or getattr(definition.resolve, "__qualname__", None) not in _WRAPPERS):
        return None
    resolver = field.base_resolver
    if (resolver is None or type(resolver).__call__ is not StrawberryResolver.__call__
            or not callable(resolver.wrapped_func)):
        return None
    config: StrawberryConfig = strawberry_schema.config
    registry = strawberry_schema.schema_converter.scalar_registry
    by_name = {config.name_converter.from_argument(a): a for a in field.arguments}
    if by_name.keys() != definition.args.keys():
        return None
    fixed: dict[str, Any] = {p.name: None for p in (resolver.parent_parameter,
                                                    resolver.root_parameter) if p is not None}
    varying = []
    for name, argument in by_name.items():
        converted = _fixed(definition, node, name, argument, registry, config)
        if converted is None:
            varying.append(name)
        else:
            fixed.update(converted)
    info = resolver.info_parameter
    return RootCall(
        function=resolver.wrapped_func, positional=(None,) if resolver.self_parameter else (),
        fixed=fixed, info_name=None if info is None else info.name,
        needs_info=info is not None or not all(_is_leaf(definition, n) for n in varying),
        field=field, info_class=config.info_class,
        varying=_cut(definition, varying) if varying else None,
        varying_node=replace(node, arguments=tuple(a for a in node.arguments or ()
                                                   if a.name.value in varying)),
        varying_arguments=[by_name[name] for name in varying], scalar_registry=registry,
        config=config)


def _is_leaf(definition: GraphQLField, name: str) -> bool:
    """Whether argument `name` takes a scalar or an enum (whose conversion reads no `Info`)."""
    return is_leaf_type(get_nullable_type(definition.args[name].type))


def _cut(definition: GraphQLField, names: Iterable[str]) -> GraphQLField:
    """The field with only these arguments, for graphql-core to coerce just those."""
    return GraphQLField(definition.type, {name: definition.args[name] for name in names})


def _fixed(definition: GraphQLField, node: FieldNode, name: str, argument: StrawberryArgument,
           registry: Mapping[object, Any], config: StrawberryConfig) -> dict[str, Any] | None:
    """Argument `name` converted (empty if it has no value) where the document fixes it for
    every request: a leaf value or a null, written out or the default; else None.

    A list or an input object is converted per request: each gets its own (as
    strawberry copies even a list of leaves), and an input type's `from_input`
    may read the request's `Info`.
    """
    written = tuple(a for a in node.arguments or () if a.name.value == name)
    if any(names_variable(a.value) for a in written):
        return None
    try:
        coerced = get_argument_values(_cut(definition, [name]), replace(node, arguments=written))
        if not _is_leaf(definition, name) and any(v is not None for v in coerced.values()):
            return None
        converted = convert_arguments(coerced, [argument], registry, config, None)
    except Exception:  # noqa: BLE001 -- each request raises it, located, as the executor does
        return None
    immutable = all(type(v) in _IMMUTABLE or isinstance(v, Enum) for v in converted.values())
    return converted if immutable else None

def names_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(names_variable(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(names_variable(f.value) for f in value.fields)
    return False
