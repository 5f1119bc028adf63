"""Fetching one child's facts from every source: cache first, the rest live and in parallel.

This is the gateway's only path to the source systems. A request takes the
systems in service once (`SourceProvider.take`: a `Sources` on one
`ConnectorSet`) and asks those, however the systems change meanwhile. It reads all of a
child's cache entries in one round trip, fetches the misses concurrently,
merges each child's answers once (the pure `merge`, under the configured
rules) and writes back only what the merged state allows: nothing about a
child who counts as shielded or may not be served; learning that a child is
shielded purges its cached entries.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from connectors.errors import ConnectorError
from gateway.core.facts import SourceFacts, facts_from_json, facts_to_json
from gateway.core.merge import Merged, SourceBundle, SourceOutcome, merge
from gateway.core.records import fast_init
from gateway.logs import exception_summary
from gateway.telemetry.upstream import cache_span, count_cache, upstream_call

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping, Sequence

    from connectors.base import Connector
    from gateway.cache import CacheSealer, CacheStore
    from gateway.core.facts import DemographicSearch
    from gateway.core.merge import MergeRules
    from gateway.lookup.registry import ConnectorSet, Lease, Registry

__all__ = ["ChildSources", "SearchOutcome", "SourceProvider", "Sources"]

log = logging.getLogger(__name__)


@fast_init
@dataclass(frozen=True, slots=True)
class ChildSources:
    """One child's answers from every system, and their merge (made once)."""

    bundle: SourceBundle
    merged: Merged

    @property
    def says_shielded(self) -> bool:
        return any(o.facts is not None and o.facts.shielded for o in self.bundle.outcomes)


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """NHS numbers any system matched, and the systems that did not answer."""

    nhs_numbers: tuple[str, ...]
    unavailable: tuple[str, ...]


def _encode(facts: SourceFacts | None, version: str) -> bytes:
    # The manifest version travels with the answer: a system replaced under the same
    # name must not be served its predecessor's cached answers (`_decode`).
    body = None if facts is None else facts_to_json(facts)
    return orjson.dumps({"v": 1, "m": version, "facts": body})


def _decode(payload: bytes, version: str) -> SourceFacts | None:
    entry = orjson.loads(payload)  # orjson.JSONDecodeError is a ValueError
    if entry["m"] != version:
        raise ValueError("cached by another version of the system")
    body = entry["facts"]
    return None if body is None else facts_from_json(body)


class SourceProvider:
    """The long-lived half: the cache, and the registry of the systems in service."""

    def __init__(self, registry: Registry, store: CacheStore, sealer: CacheSealer,
                 today: Callable[[], dt.date]) -> None:
        """`today` decides the 18+ rule for write-back."""
        self.registry = registry
        self._store = store
        self._sealer = sealer
        self._today = today

    @property
    def connectors(self) -> Mapping[str, Connector]:
        """The connectors in service now (a request uses the set it took, `take`)."""
        return self.registry.current.connectors

    def take(self) -> Sources:
        """The systems in service now, for one request (see `Sources`)."""
        return Sources(self.registry, self._store, self._sealer, self._today)

    async def forget(self, nhs_numbers: Sequence[str]) -> None:
        """Drop every cached answer about these children (one round trip), e.g. on a notice."""
        await self._store.delete_many([self._sealer.key(name, nhs) for nhs in nhs_numbers
                                       for name in self.connectors])


class Sources:
    """Loads `SourceBundle`s for NHS numbers through the cache and one set's connectors.

    The set is the one in service when the request began. Each `load` and
    `search` holds it while it runs, so its connectors are not closed under
    the call; a set whose requests have all left their calls may be closed,
    and a later call of a request that outlived it then uses the set in
    service (a request that looks children up does so in one call).
    """

    def __init__(self, registry: Registry, store: CacheStore, sealer: CacheSealer,
                 today: Callable[[], dt.date]) -> None:
        self._registry = registry
        self._set = registry.current
        self._store = store
        self._sealer = sealer
        self._today = today
        self._primed: dict[str, bytes | None] = {}
        self._keys: dict[tuple[str, str], str] = {}
        """Cache keys worked out in this request (`cache_keys`, then `load`): one HMAC each."""

    def _key(self, name: str, nhs_number: str) -> str:
        key = self._keys.get((name, nhs_number))
        if key is None:
            key = self._keys[name, nhs_number] = self._sealer.key(name, nhs_number)
        return key

    @property
    def connectors(self) -> Mapping[str, Connector]:
        return self._set.connectors

    def cache_keys(self, nhs_numbers: Sequence[str]) -> list[str]:
        """The cache keys `load` will read for these children (the set in service now)."""
        return [self._key(name, nhs) for nhs in nhs_numbers for name in self.connectors]

    def prime(self, keys: Sequence[str], values: Sequence[bytes | None]) -> None:
        """Values of `cache_keys` read already (with the request's first round trip).

        `load` takes them instead of reading the store again; each is used once.
        """
        self._primed.update(zip(keys, values, strict=True))

    @property
    def rules(self) -> MergeRules:
        return self._set.rules

    def _held(self) -> Lease:
        """The request's set, held while the `with` block runs (a `Lease`)."""
        lease = self._registry.hold(self._set)
        if lease is None:  # this request outlived its set: the one in service now
            lease = self._registry.take()
            self._set = lease.connector_set
        return lease

    async def _live(self, connector: Connector, nhs_number: str) -> SourceOutcome:
        try:
            facts = await upstream_call(connector.name, "fetch", connector.fetch(nhs_number))
        except ConnectorError as exc:
            log.warning("source %s unavailable: %s", connector.name, type(exc).__name__)
            return SourceOutcome(connector.name, "unavailable")
        except Exception as exc:  # noqa: BLE001 -- a broken connector costs its own fields only
            log.error(  # noqa: TRY400 -- a traceback would print the message, which may hold data
                "source %s failed unexpectedly: %s", connector.name, exception_summary(exc))
            return SourceOutcome(connector.name, "unavailable")
        return SourceOutcome(connector.name, "ok", facts)

    def _cached(self, version: str, name: str, key: str,
                sealed: bytes | None) -> SourceOutcome | None:
        if sealed is None:
            return None
        payload = self._sealer.open(key, sealed)
        if payload is None:
            return None
        try:
            return SourceOutcome(name, "ok", _decode(payload, version), from_cache=True)
        except (ValueError, KeyError, TypeError):
            return None

    async def load(self, nhs_numbers: Sequence[str]) -> list[ChildSources]:
        """One child's sources per NHS number, same order; never raises for a source's failure."""
        with self._held() as in_service:
            return await self._load(in_service, nhs_numbers)

    async def _load(self, in_service: ConnectorSet,
                    nhs_numbers: Sequence[str]) -> list[ChildSources]:
        connectors, versions = in_service.connectors, in_service.versions
        pairs = [(nhs, c) for nhs in nhs_numbers for c in connectors.values()]
        keys = [self._key(c.name, nhs) for nhs, c in pairs]
        cached = await self._read(keys)
        outcomes = [self._cached(versions[c.name], c.name, k, s)
                    for (_, c), k, s in zip(pairs, keys, cached, strict=True)]
        count_cache((c.name for _, c in pairs), outcomes)
        misses = [i for i, outcome in enumerate(outcomes) if outcome is None]
        fetched = await asyncio.gather(*(self._live(pairs[i][1], pairs[i][0]) for i in misses)
                                       ) if misses else ()
        for index, outcome in zip(misses, fetched, strict=True):
            outcomes[index] = outcome
        width = len(connectors)
        children = []
        for n, nhs in enumerate(nhs_numbers):
            row = tuple(o for o in outcomes[n * width:(n + 1) * width] if o is not None)
            bundle = SourceBundle(nhs, row)
            children.append(ChildSources(bundle, merge(bundle, in_service.rules)))
        await self._write_back(in_service, children, keys)
        return children

    async def _read(self, keys: Sequence[str]) -> list[bytes | None]:
        """The sealed entries under `keys`: primed ones as read, the rest in one round trip."""
        primed, unread = self._primed, [k for k in keys if k not in self._primed]
        values = [primed.pop(k, None) for k in keys]
        if unread:
            with cache_span(len(unread)):
                read = dict(zip(unread, await self._store.get_many(unread), strict=True))
            values = [read.get(k, v) for k, v in zip(keys, values, strict=True)]
        return values

    async def _write_back(self, in_service: ConnectorSet, children: Sequence[ChildSources],
                          keys: Sequence[str]) -> None:
        width = len(in_service.connectors)
        writes: list[tuple[str, bytes, float]] = []
        purges: list[str] = []
        today = self._today()
        for n, child in enumerate(children):
            row_keys = keys[n * width:(n + 1) * width]
            if child.says_shielded:
                purges.extend(row_keys)
                continue
            if not child.merged.cacheable(today):
                continue
            for key, outcome in zip(row_keys, child.bundle.outcomes, strict=True):
                ttl = in_service.connectors[outcome.connector].cache_ttl
                if outcome.status == "ok" and not outcome.from_cache and ttl > 0:
                    payload = _encode(outcome.facts, in_service.versions[outcome.connector])
                    writes.append((key, self._sealer.seal(key, payload), ttl))
        if purges:  # a shielded child's answers are forgotten before it is answered
            await self._store.write(purges, writes)
        elif writes:  # nothing waits on a cache write: it leaves with the next send
            self._store.set_later(writes)

    async def search(self, criteria: DemographicSearch) -> SearchOutcome:
        """Ask every system for exact demographic matches, in parallel."""
        with self._held() as in_service:
            connectors = in_service.connectors
            names = list(connectors)
            results = await asyncio.gather(
                *(upstream_call(name, "search", connectors[name].search(criteria))
                  for name in names), return_exceptions=True)
        found: dict[str, None] = {}
        unavailable = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.warning("source %s search unavailable: %s", name, type(result).__name__)
                unavailable.append(name)
                continue
            found.update((facts.nhs_number, None) for facts in result)
        return SearchOutcome(tuple(sorted(found)), tuple(unavailable))
