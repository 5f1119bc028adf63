"""Fetching one child's facts from every source: cache first, the rest live and in parallel.

This is the gateway's only path to the source systems. It reads all of a
child's cache entries in one round trip, fetches the misses concurrently,
merges each child's answers once (the pure `merge`, under the configured
rules) and writes back only what the merged state allows: nothing about a
child who counts as shielded or may not be served; learning that a child is
shielded purges its cached entries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.errors import ConnectorError
from gateway.core.facts import SourceFacts, facts_from_json, facts_to_json
from gateway.core.merge import Merged, SourceBundle, SourceOutcome, merge
from gateway.logs import exception_summary
from gateway.telemetry.upstream import cache_span, count_cache, upstream_call

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping, Sequence

    from connectors.base import Connector
    from gateway.cache import CacheSealer, CacheStore
    from gateway.core.facts import DemographicSearch
    from gateway.core.merge import MergeRules

__all__ = ["ChildSources", "SearchOutcome", "Sources"]

log = logging.getLogger(__name__)


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


def _encode(facts: SourceFacts | None) -> bytes:
    body = None if facts is None else facts_to_json(facts)
    return json.dumps({"v": 1, "facts": body}, separators=(",", ":")).encode()


def _decode(payload: bytes) -> SourceFacts | None:
    body = json.loads(payload)["facts"]
    return None if body is None else facts_from_json(body)


class Sources:
    """Loads `SourceBundle`s for NHS numbers through the cache and the connectors."""

    def __init__(self, connectors: Mapping[str, Connector], store: CacheStore,
                 sealer: CacheSealer, rules: MergeRules, today: Callable[[], dt.date]) -> None:
        """`rules` merge each child's answers; `today` decides the 18+ rule for write-back."""
        self.connectors = dict(connectors)
        self.rules = rules
        self._store = store
        self._sealer = sealer
        self._today = today

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

    def _cached(self, name: str, key: str, sealed: bytes | None) -> SourceOutcome | None:
        if sealed is None:
            return None
        payload = self._sealer.open(key, sealed)
        if payload is None:
            return None
        try:
            return SourceOutcome(name, "ok", _decode(payload), from_cache=True)
        except (ValueError, KeyError, TypeError):
            return None

    async def load(self, nhs_numbers: Sequence[str]) -> list[ChildSources]:
        """One child's sources per NHS number, same order; never raises for a source's failure."""
        pairs = [(nhs, c) for nhs in nhs_numbers for c in self.connectors.values()]
        keys = [self._sealer.key(c.name, nhs) for nhs, c in pairs]
        with cache_span(len(keys)):
            cached = await self._store.get_many(keys)
        outcomes = [self._cached(c.name, k, s) for (_, c), k, s in zip(pairs, keys, cached,
                                                                      strict=True)]
        count_cache((c.name for _, c in pairs), outcomes)
        misses = [i for i, outcome in enumerate(outcomes) if outcome is None]
        fetched = await asyncio.gather(*(self._live(pairs[i][1], pairs[i][0]) for i in misses))
        for index, outcome in zip(misses, fetched, strict=True):
            outcomes[index] = outcome
        width = len(self.connectors)
        children = []
        for n, nhs in enumerate(nhs_numbers):
            row = tuple(o for o in outcomes[n * width:(n + 1) * width] if o is not None)
            bundle = SourceBundle(nhs, row)
            children.append(ChildSources(bundle, merge(bundle, self.rules)))
        await self._write_back(children, keys)
        return children

    async def _write_back(self, children: Sequence[ChildSources], keys: Sequence[str]) -> None:
        width = len(self.connectors)
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
                ttl = self.connectors[outcome.connector].cache_ttl
                if outcome.status == "ok" and not outcome.from_cache and ttl > 0:
                    writes.append((key, self._sealer.seal(key, _encode(outcome.facts)), ttl))
        await self._store.delete_many(purges)
        await self._store.set_many(writes)

    async def forget(self, nhs_numbers: Sequence[str]) -> None:
        """Drop every cached answer about these children (one round trip), e.g. on a notice."""
        await self._store.delete_many([self._sealer.key(name, nhs) for nhs in nhs_numbers
                                       for name in self.connectors])

    async def search(self, criteria: DemographicSearch) -> SearchOutcome:
        """Ask every system for exact demographic matches, in parallel."""
        names = list(self.connectors)
        results = await asyncio.gather(
            *(upstream_call(name, "search", self.connectors[name].search(criteria))
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
