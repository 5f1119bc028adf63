"""Building the strawberry schema with the request-shape limits and caches."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from gateway.errors import GatewayError
from gateway.logs import exception_summary
from resolvers.query import Query

if TYPE_CHECKING:
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


def build_schema(limits: LimitSettings, *, development: bool) -> strawberry.Schema:
    """The executable schema: parse/validation cached, shape limited, errors masked."""
    extensions: list[SchemaExtension] = [
        MaxTokensLimiter(limits.max_tokens),
        ParserCache(maxsize=limits.parser_cache_size),
        QueryDepthLimiter(max_depth=limits.max_depth),
        MaxAliasesLimiter(limits.max_aliases),
        ValidationCache(maxsize=limits.parser_cache_size),
        _MaskErrors(should_mask_error=_mask, error_message="Internal error."),
    ]
    if not development:
        extensions.insert(0, DisableIntrospection())
    config = StrawberryConfig(disable_field_suggestions=not development)
    return strawberry.Schema(query=Query, extensions=extensions, config=config)


def public_schema() -> str:
    """The SDL of the public contract, as `schema.graphql` holds it."""
    return strawberry.Schema(query=Query).as_str() + "\n"
