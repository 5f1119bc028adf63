"""The resources one gateway process owns for its lifetime, opened and closed together."""

from __future__ import annotations

import datetime as dt
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from connectors.registry import resolve_manifests
from gateway.accountability.audit import open_audit_log, open_store
from gateway.accountability.digest import Digester, DigestSchedule, DigestTally
from gateway.accountability.disclosure import SubjectAccess
from gateway.accountability.notifications import OUTBOX_KIND, Notifications, NotificationSender
from gateway.accountability.outbox import Outbox
from gateway.accountability.recorder import Accountability
from gateway.accountability.refusals import Refusals
from gateway.alerts import open_alert_sink
from gateway.auth.dpop import ProofReplayCache
from gateway.auth.jwks import JwksCache
from gateway.auth.tokens import TokenValidator
from gateway.cache import CacheSealer, MemoryStore, RedisStore
from gateway.cache.client import open_redis
from gateway.cache.line import ClientLine, line_for_url
from gateway.core.case_reference import CaseReferenceRule
from gateway.core.merge import MergeRules, SourceTraits
from gateway.core.policy import DEFAULT_PURPOSES, Scope
from gateway.crypto.ids import ChildIdCodec
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.limits.budgets import Budgets
from gateway.limits.charger import ChildCharger
from gateway.limits.ratelimit import RateLimiter
from gateway.lookup.admission import Gate
from gateway.lookup.challenges import CHALLENGE_KIND, Challenges
from gateway.lookup.endpoints import RegistryEndpoints
from gateway.lookup.pipeline import LookupServices
from gateway.lookup.registry import Registry
from gateway.lookup.sources import SourceProvider
from gateway.settings import check_production
from gateway.web.documents import load_documents
from gateway.web.registrations import Registrations, initial_set
from resolvers.schema import build_schema

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    import redis.asyncio as aioredis
    import strawberry

    from connectors.base import Connector
    from connectors.manifest import Manifest
    from gateway.cache import CacheStore
    from gateway.cache.line import Line
    from gateway.settings import CacheSettings, Settings
    from gateway.web.documents import Documents

__all__ = ["Runtime", "london_today", "merge_rules", "open_runtime", "purpose_table"]

_LONDON = ZoneInfo("Europe/London")


def london_today() -> dt.date:
    """Today's date in England, which decides birthdays (the 18+ rule)."""
    return dt.datetime.now(_LONDON).date()


def purpose_table(settings: Settings) -> dict[str, frozenset[Scope]]:
    """The configured purpose table, or the policy file's default."""
    if settings.purposes is None:
        return dict(DEFAULT_PURPOSES)
    return {p: frozenset(Scope(s) for s in scopes) for p, scopes in settings.purposes.items()}


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a request handler needs that outlives the request."""

    settings: Settings
    schema: strawberry.Schema
    validator: TokenValidator
    jwks: JwksCache
    store: CacheStore
    registrations: Registrations
    """The systems in service (`registry`) and the one path that changes them."""
    services: LookupServices
    pseudonym: Pseudonymiser
    accountability: Accountability
    budgets: Budgets
    rate_limiter: RateLimiter
    refusals: Refusals
    documents: Documents
    """Which documents run: the trusted manifest (parsed and validated at start), APQ."""
    outbox: Outbox
    """Messages to other systems, committed before the request answers, retried until
    acknowledged (senders register with `outbox.handle`)."""
    digester: Digester | None = None
    """Builds and sends the organisations' daily digests (None: `alerts.digest` is off
    or there is no audit log to count)."""

    @property
    def registry(self) -> Registry:
        return self.registrations.registry

    @property
    def connectors(self) -> Mapping[str, Connector]:
        """The connectors in service now (they change with registrations)."""
        return self.registry.current.connectors

    @property
    def manifests(self) -> tuple[Manifest, ...]:
        """The manifests in service now, in order."""
        return tuple(s.manifest for s in self.registry.current.systems)


def _redis(settings: CacheSettings) -> aioredis.Redis | None:
    if settings.redis_url is None:
        return None
    return open_redis(settings.redis_url, settings.redis_timeout_seconds)


def _line(settings: CacheSettings, client: aioredis.Redis) -> Line:
    """The hot path's pipelined connection, or the client for a URL it does not take."""
    line = line_for_url(settings.redis_url or "", settings.redis_timeout_seconds)
    return ClientLine(client) if line is None else line


def merge_rules(settings: Settings, manifests: Sequence[Manifest]) -> MergeRules:
    """How the configured systems' answers are merged (traits from their manifests)."""
    traits = {m.name: SourceTraits(m.facts, m.records_shielding, m.membership_sensitive)
              for m in manifests}
    return MergeRules(traits, dict(settings.merge.authority))


def _services(settings: Settings, registry: Registry, store: CacheStore,
              accountability: Accountability, gate: Gate,
              challenges: Challenges | None = None) -> LookupServices:
    sealer = CacheSealer(settings.cache.secret.get_secret_value(), settings.cache.key_prefix)
    sources = SourceProvider(registry, store, sealer, london_today)
    return LookupServices(
        sources=sources,
        ids=ChildIdCodec(settings.ids.secret.get_secret_value(), settings.ids.lifetime_seconds),
        today=london_today, max_children_per_request=settings.limits.max_children_per_request,
        purposes=purpose_table(settings), gate=gate,
        access_history=accountability.history,
        case_references=CaseReferenceRule(settings.case_references.pattern,
                                          settings.case_references.description),
        subject_access=SubjectAccess(settings.subject_access), challenges=challenges)


def _outbox(settings: Settings) -> Outbox:
    config = settings.outbox
    secret = (config.secret or settings.audit.pseudonym_secret).get_secret_value()
    return Outbox(config.sqlite_path, secret, poll_seconds=config.poll_seconds,
                  max_backoff_seconds=config.max_backoff_seconds)


def _notify_councils(settings: Settings, outbox: Outbox, accountability: Accountability,
                     registry: Registry, pseudonym: Pseudonymiser) -> None:
    """Releases of protected children tell their responsible authority (CP-IS style)."""
    endpoints = RegistryEndpoints(registry)
    outbox.handle(OUTBOX_KIND, NotificationSender(endpoints))
    accountability.notifications = Notifications(
        outbox, settings.notifications, settings.audit.pseudonym_secret.get_secret_value(),
        accountability.child, accountability.alerts, endpoints, pseudonym)


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Open connectors, Redis, audit log, alert sink and JWKS cache; close them all on exit."""
    check_production(settings)  # however the app is started, production is safe or it stops
    schema = build_schema(settings.limits, development=settings.development)
    documents = load_documents(settings, schema)  # a bad manifest stops start-up, like a bad file
    async with AsyncExitStack() as stack:
        manifests = tuple(resolve_manifests(settings))
        ttl = settings.cache.default_ttl_seconds
        systems, applied = initial_set(manifests, dict(settings.merge.authority),
                                       settings.registry, ttl)
        registry = Registry(systems, drain_seconds=settings.registry.drain_seconds)
        stack.push_async_callback(registry.close)
        registrations = Registrations(registry, settings.registry, ttl, manifests, applied)
        registrations.start()
        stack.push_async_callback(registrations.close)
        client = _redis(settings.cache)
        cache = settings.cache
        line = None if client is None else _line(cache, client)
        store: CacheStore = (MemoryStore(cache.memory_max_entries) if client is None
                             else RedisStore(client, cache.redis_retry_seconds, line=line))
        stack.push_async_callback(store.close)  # and the line
        jwks = JwksCache(settings.auth)
        stack.push_async_callback(jwks.close)
        pseudonym = Pseudonymiser(settings.ids.secret.get_secret_value())
        alerts = DigestTally(open_alert_sink(settings.alerts, pseudonym), client,
                             cache.key_prefix, cache.secret.get_secret_value())
        stack.push_async_callback(alerts.close)  # flushes the digest's counts
        audit = await open_audit_log(settings.audit)
        stack.push_async_callback(audit.close)
        digester = None
        if settings.alerts.digest and settings.audit.store != "none":
            digest_store = open_store(settings.audit, read_only=True)
            stack.push_async_callback(digest_store.close)
            digester = Digester(digest_store, alerts, client)
            digests = DigestSchedule(digester, alerts, settings.alerts.digest_at)
            digests.start()
            stack.push_async_callback(digests.close)
        secret = cache.secret.get_secret_value()
        budgets = Budgets(settings.budgets, client, cache.key_prefix, secret, alerts,
                          pseudonym=pseudonym, retry_seconds=cache.redis_retry_seconds)
        accountability = Accountability(audit, alerts,
                                        settings.audit.pseudonym_secret.get_secret_value(),
                                        pseudonym)
        refusals = Refusals(audit, pseudonym, per_source=settings.audit.refusals_per_source_minute,
                            overall=settings.audit.refusals_per_minute)
        refusals.start()
        stack.push_async_callback(refusals.close)  # before the audit log closes
        outbox = _outbox(settings)
        challenges = Challenges(outbox, registry, settings.ids.secret.get_secret_value(),
                                accountability.history, accountability.record)
        outbox.handle(CHALLENGE_KIND, challenges.deliver)
        outbox.start()  # after the connectors exist; closed (and drained briefly) before them
        stack.push_async_callback(outbox.close)
        _notify_councils(settings, outbox, accountability, registry, pseudonym)
        rate_limiter = RateLimiter(settings.budgets, client, cache.key_prefix, secret,
                                   retry_seconds=cache.redis_retry_seconds)
        gate = Gate(line, rate_limiter, ChildCharger(budgets, accountability.child), store)
        yield Runtime(
            settings=settings,
            schema=schema,
            validator=TokenValidator(
                settings.auth, jwks, allow_development_key=settings.development,
                replay=ProofReplayCache(client, cache.key_prefix,
                                        retry_seconds=cache.redis_retry_seconds)),
            jwks=jwks, store=store, registrations=registrations,
            services=_services(settings, registry, store, accountability, gate, challenges),
            pseudonym=pseudonym, accountability=accountability, budgets=budgets,
            rate_limiter=rate_limiter,
            refusals=refusals, documents=documents, outbox=outbox, digester=digester)
