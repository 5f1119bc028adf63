"""The resources one gateway process owns for its lifetime, opened and closed together."""

from __future__ import annotations

import datetime as dt
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from connectors.registry import build_connectors, close_all
from gateway.auth.jwks import JwksCache
from gateway.auth.tokens import TokenValidator
from gateway.cache import CacheSealer, open_store
from gateway.ids import ChildIdCodec
from gateway.policy import DEFAULT_PURPOSES, Scope
from gateway.pseudonyms import Pseudonymiser
from gateway.sources import Sources
from resolvers.assembly import SourceTraits, cacheable
from resolvers.context import GatewayServices
from resolvers.schema import build_schema

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import strawberry

    from connectors.base import Connector
    from gateway.audit import AuditEvent
    from gateway.auth.caller import Caller
    from gateway.cache import CacheStore
    from gateway.settings import Settings

__all__ = ["Runtime", "london_today", "open_runtime", "purpose_table"]

_LONDON = ZoneInfo("Europe/London")


def london_today() -> dt.date:
    """Today's date in England, which decides birthdays (the 18+ rule)."""
    return dt.datetime.now(_LONDON).date()


def purpose_table(settings: Settings) -> dict[str, frozenset[Scope]]:
    """The configured purpose table, or the policy file's default."""
    if settings.purposes is None:
        return dict(DEFAULT_PURPOSES)
    return {p: frozenset(Scope(s) for s in scopes) for p, scopes in settings.purposes.items()}


async def _no_budget(caller: Caller, nhs_number: str, request_id: str) -> None:
    """Placeholder charger until budgets are wired: counts nothing."""


async def _no_history(nhs_number: str, limit: int) -> list[AuditEvent]:
    """Placeholder history until the audit log is wired: nothing recorded."""
    return []


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a request handler needs that outlives the request."""

    settings: Settings
    schema: strawberry.Schema
    validator: TokenValidator
    jwks: JwksCache
    store: CacheStore
    connectors: dict[str, Connector]
    services: GatewayServices
    pseudonym: Pseudonymiser


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Open connectors, cache store and JWKS cache; close them all on exit."""
    connectors = build_connectors(settings)
    store = open_store(settings.cache)
    jwks = JwksCache(settings.auth)
    try:
        traits = {name: SourceTraits(c.provides, c.can_shield) for name, c in connectors.items()}
        sealer = CacheSealer(settings.cache.secret.get_secret_value(), settings.cache.key_prefix)
        sources = Sources(connectors, store, sealer,
                          may_cache=lambda bundle: cacheable(bundle, traits, london_today()))
        services = GatewayServices(
            sources=sources, traits=traits,
            ids=ChildIdCodec(settings.ids.secret.get_secret_value(),
                             settings.ids.lifetime_seconds),
            today=london_today,
            max_children_per_request=settings.limits.max_children_per_request,
            purposes=purpose_table(settings), charge=_no_budget, access_history=_no_history)
        yield Runtime(
            settings=settings,
            schema=build_schema(settings.limits, development=settings.development),
            validator=TokenValidator(settings.auth, jwks,
                                     allow_development_key=settings.development),
            jwks=jwks, store=store,
            connectors=connectors, services=services,
            pseudonym=Pseudonymiser(settings.ids.secret.get_secret_value()))
    finally:
        await close_all(connectors)
        await store.close()
        await jwks.close()
