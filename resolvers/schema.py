"""Building the strawberry schema with the request-shape limits and caches."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import BREAK, GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from gateway.core.errors import GatewayError, QueryTooComplexError
from gateway.logs import exception_summary
from gateway.telemetry.requests import ExecutionSpan, operation_label, operation_observed
from resolvers.cost import max_cost_rule
from resolvers.mutation import Mutation
from resolvers.plans import Plans
from resolvers.query import Query
from resolvers.repeats import max_repeats_rule

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from graphql import DirectiveNode, VisitorAction
    from graphql.validation import ASTValidationContext
    from strawberry.types import ExecutionContext, ExecutionResult
    from strawberry.types.graphql import OperationType

    from gateway.settings import LimitSettings

__all__ = ["build_schema", "public_schema"]

log = logging.getLogger(__name__)


def _mask(error: GraphQLError) -> bool:
    """Mask (and log, without its message) anything that is not a deliberate gateway error."""
    original = error.original_error
    if original is None or error.path is None or isinstance(original, GatewayError):
        return False
    log.error("unexpected error at %s: %s", error.path, exception_summary(original))
    return True


class _MaskErrors(MaskErrors):
    """strawberry's MaskErrors, with the masked error keeping a stable code."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked

    def mask(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """The errors as this extension leaves them (for the execution plans' results)."""
        return self._process_errors(errors)


def _directive_limit(limit: int) -> type[ASTValidationRule]:
    """A validation rule refusing documents with more than `limit` directives.

    Every directive in the document counts, in operations and fragments alike
    (GraphQL Armor's max-directives, per document): repeated `@include`/`@skip`
    are cheap to send and each costs work in validation and execution. The
    error carries its code, so nothing has to recognise its message.
    """

    class MaxDirectivesRule(ASTValidationRule):
        def __init__(self, context: ASTValidationContext) -> None:
            super().__init__(context)
            self.seen = 0

        def enter_directive(self, node: DirectiveNode, *_args: object) -> VisitorAction:
            self.seen += 1
            if self.seen <= limit:
                return None
            self.report_error(GraphQLError(
                f"The document holds more than {limit} directives.", node,
                extensions={"code": QueryTooComplexError.code}))
            return BREAK

    return MaxDirectivesRule


class _QuietSchema(strawberry.Schema):
    """A schema that does not log errors itself, and runs known documents from plans.

    strawberry logs every error with its message and traceback, and messages
    can quote data. Deliberate errors need no log; unexpected ones are logged
    by `_mask`, without their message.

    A query document that has passed validation once is run from its execution
    plan afterwards (`resolvers.plans`), with its errors masked as `_MaskErrors`
    masks them and its operation observed as `ExecutionSpan` observes it.
    """

    plans: Plans | None = None

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        return

    async def execute(self, query: str | None, variable_values: dict[str, Any] | None = None,
                      context_value: Any | None = None,  # noqa: ANN401 -- strawberry's signature
                      root_value: Any | None = None,  # noqa: ANN401
                      operation_name: str | None = None,
                      allowed_operation_types: Iterable[OperationType] | None = None,
                      operation_extensions: dict[str, Any] | None = None) -> ExecutionResult:
        plans = self.plans
        planned = (plans is not None and query is not None and root_value is None
                   and allowed_operation_types is None and operation_extensions is None)
        if planned and (known := plans.known(query, operation_name)) is not None:  # type: ignore[union-attr, arg-type]
            result = await plans.run(known, variable_values, context_value)  # type: ignore[union-attr]
            if result is not None:
                return result
        result = await super().execute(query, variable_values, context_value, root_value,
                                       operation_name, allowed_operation_types,
                                       operation_extensions)
        if planned:
            plans.learn(query, operation_name, result)  # type: ignore[union-attr, arg-type]
        return result


def build_schema(limits: LimitSettings, *, development: bool) -> strawberry.Schema:
    """The executable schema: parse/validation cached, shape limited, errors masked.

    The limiters' validation rules are created once: `ValidationCache` keys
    on the rule classes, and strawberry's limiters make new classes on every
    construction, so building them per request would make every request miss.
    Extensions themselves are built per request (strawberry keeps per-request
    state on them).
    """
    rules = [*QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
             *MaxAliasesLimiter(limits.max_aliases).validation_rules,
             _directive_limit(limits.max_directives), max_cost_rule(limits.max_cost),
             max_repeats_rule(limits.max_repeats)]
    if not development:
        rules.append(NoSchemaIntrospectionCustomRule)
    size = limits.parser_cache_size
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(limits.max_tokens),
        lambda: ParserCache(maxsize=size),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=size),
        lambda: _MaskErrors(should_mask_error=_mask, error_message="Internal error."),
        ExecutionSpan,  # a span and the metrics' operation label; never arguments or variables
    ]
    config = StrawberryConfig(disable_field_suggestions=not development)
    schema = _QuietSchema(query=Query, mutation=Mutation, extensions=extensions, config=config)
    if limits.execution_plans and size:
        masking = _MaskErrors(should_mask_error=_mask, error_message="Internal error.")
        schema.plans = Plans(schema._schema, size, operation_label, operation_observed,
                             masking.mask)
    return schema


def public_schema() -> str:
    """The SDL of the public contract, as `schema.graphql` holds it."""
    return strawberry.Schema(query=Query, mutation=Mutation).as_str() + "\n"
