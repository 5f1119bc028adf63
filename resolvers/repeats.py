"""A limit on the same field repeated in one selection set (graphql-cop's "field duplication").

Repeats are merged by execution, so they return nothing new, but each one is
work for validation (overlapping-field checks grow with the square of the
repeats) and a way to pad a document up to the token limit. More than
`limit` occurrences of one response key in one selection set is refused with
`QUERY_TOO_COMPLEX` before anything runs.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from graphql import FieldNode, GraphQLError
from graphql.validation import ASTValidationRule

from gateway.core.errors import QueryTooComplexError

if TYPE_CHECKING:
    from graphql import SelectionSetNode, VisitorAction
    from graphql.validation import ASTValidationContext

__all__ = ["max_repeats_rule"]


def max_repeats_rule(limit: int) -> type[ASTValidationRule]:
    """A validation rule refusing a field (by response key) repeated more than `limit` times
    in one selection set."""

    class MaxRepeatsRule(ASTValidationRule):
        def __init__(self, context: ASTValidationContext) -> None:
            super().__init__(context)
            self.reported = False

        def enter_selection_set(self, node: SelectionSetNode, *_args: object) -> VisitorAction:
            keys = Counter((s.alias or s.name).value for s in node.selections
                           if isinstance(s, FieldNode))
            worst = max(keys.values(), default=0)
            if worst > limit and not self.reported:
                self.reported = True
                self.report_error(GraphQLError(
                    f"A field is repeated {worst} times in one selection; at most {limit}.",
                    node, extensions={"code": QueryTooComplexError.code}))
            return None

    return MaxRepeatsRule
