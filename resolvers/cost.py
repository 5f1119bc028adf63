"""A static cost limit per document: what a query may ask of the source systems, before it runs.

Each selected field costs 1 for every object it is asked of. A field returning
a list multiplies what is selected under it by the list's bound (`LIST_BOUNDS`:
`findChildren` at most 5 matches, a child's `carers` and `services` counted as
10 each); each root field that looks children up adds `LOOKUP_COST` per child,
for its fan-out to every source system. Fragments count wherever they are
spread. So `child { name { family } }` costs 1 + 10 + 2 = 13, and every field of
`child` about 250; the default limit, 1,500, admits several full records per
request and refuses a document built to multiply work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphql import (
    BREAK,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_list_type,
    is_non_null_type,
)
from graphql.validation import ValidationRule

from gateway.core.errors import QueryTooComplexError

if TYPE_CHECKING:
    from graphql import (
        DocumentNode,
        GraphQLOutputType,
        GraphQLSchema,
        SelectionSetNode,
        ValidationContext,
        VisitorAction,
    )

__all__ = ["LIST_BOUNDS", "LOOKUP_COST", "document_cost", "max_cost_rule"]

LOOKUP_COST = 10
"""Per child looked up: one call to every source system (or their cache entries)."""
LIST_BOUNDS = {"Query.findChildren": 5, "Child.carers": 10, "Child.services": 10,
               "Query.accessReport": 50, "Child.provenance": 8, "Child.sources": 8}
"""How many items a list field is counted as holding; other lists count as 10."""
_DEFAULT_LIST_BOUND = 10
_LOOKUPS = frozenset({"Query.child", "Query.findChildren", "Mutation.challenge"})


def _list_bound(key: str, field_type: GraphQLOutputType) -> int:
    inner = field_type.of_type if is_non_null_type(field_type) else field_type
    if not is_list_type(inner):
        return 1
    return LIST_BOUNDS.get(key, _DEFAULT_LIST_BOUND)


class _Costing:
    """Walks one operation, spreading fragments where they are used (each once per path)."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.fragments = fragments

    def selection_set(self, node: SelectionSetNode | None, parent: GraphQLObjectType,
                      times: int, spreading: frozenset[str]) -> int:
        if node is None:
            return 0
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, times, spreading)
            elif isinstance(selection, InlineFragmentNode):
                total += self.selection_set(selection.selection_set,
                                            self._condition(selection, parent), times, spreading)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in spreading:
                    total += self.selection_set(fragment.selection_set,
                                                self._condition(fragment, parent), times,
                                                spreading | {name})
        return total

    def field(self, node: FieldNode, parent: GraphQLObjectType, times: int,
              spreading: frozenset[str]) -> int:
        name = node.name.value
        definition = parent.fields.get(name)
        if definition is None:  # __typename, or an unknown field other rules report
            return times
        key = f"{parent.name}.{name}"
        bound = _list_bound(key, definition.type)
        cost = times + (times * bound * LOOKUP_COST if key in _LOOKUPS else 0)
        named = get_named_type(definition.type)
        if isinstance(named, GraphQLObjectType):
            cost += self.selection_set(node.selection_set, named, times * bound, spreading)
        return cost

    def _condition(self, node: InlineFragmentNode | FragmentDefinitionNode,
                   parent: GraphQLObjectType) -> GraphQLObjectType:
        if node.type_condition is None:
            return parent
        named = self.schema.get_type(node.type_condition.name.value)
        return named if isinstance(named, GraphQLObjectType) else parent


def document_cost(schema: GraphQLSchema, document: DocumentNode) -> int:
    """The cost of the most expensive operation in `document` (0 if it has none)."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    costing = _Costing(schema, fragments)
    roots = {OperationType.QUERY: schema.query_type,
             OperationType.MUTATION: schema.mutation_type}
    return max((costing.selection_set(d.selection_set, root, 1, frozenset())
                for d in document.definitions if isinstance(d, OperationDefinitionNode)
                and (root := roots.get(d.operation)) is not None),
               default=0)


def max_cost_rule(limit: int) -> type[ValidationRule]:
    """A validation rule refusing a document whose cost is over `limit` (QUERY_TOO_COMPLEX)."""

    class MaxCostRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.cost_context = context

        def enter_document(self, node: DocumentNode, *_args: object) -> VisitorAction:
            cost = document_cost(self.cost_context.schema, node)
            if cost > limit:
                self.report_error(GraphQLError(
                    f"The document costs {cost}, over the limit of {limit} (each field counts "
                    "for every object it is asked of; lists and child lookups multiply).",
                    node, extensions={"code": QueryTooComplexError.code}))
            return BREAK

    return MaxCostRule
