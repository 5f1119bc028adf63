"""Fetching one child's facts from every source: cache first, the rest live and in parallel.

This is the gateway's only path to the source systems. It reads all of a
child's cache entries in one round trip, fetches the misses concurrently,
and writes back what the policy allows (`may_cache`); learning that a child
is shielded purges its cached entries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from connectors.errors import ConnectorError
from connectors.facts import SourceFacts, facts_from_json, facts_to_json
from gateway.logs import exception_summary

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from connectors.base import Connector
    from connectors.facts import DemographicSearch
    from gateway.cache import CacheSealer, CacheStore

__all__ = ["SearchOutcome", "SourceBundle", "SourceOutcome", "Sources"]

log = logging.getLogger(__name__)

Status = Literal["ok", "unavailable"]


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """One system's answer about one child: facts, "does not know", or no answer."""

    connector: str
    status: Status
    facts: SourceFacts | None = None
    from_cache: bool = False


@dataclass(frozen=True, slots=True)
class SourceBundle:
    """Every configured system's outcome for one NHS number, in configuration order."""

    nhs_number: str
    outcomes: tuple[SourceOutcome, ...]

    @property
    def says_shielded(self) -> bool:
        return any(o.facts is not None and o.facts.shielded for o in self.outcomes)


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
                 sealer: CacheSealer, may_cache: Callable[[SourceBundle], bool]) -> None:
        """`may_cache` says whether a bundle's answers may be kept (the policy's call)."""
        self.connectors = dict(connectors)
        self._store = store
        self._sealer = sealer
        self._may_cache = may_cache

    async def _live(self, connector: Connector, nhs_number: str) -> SourceOutcome:
        try:
            facts = await connector.fetch(nhs_number)
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

    async def load(self, nhs_numbers: Sequence[str]) -> list[SourceBundle]:
        """One bundle per NHS number, same order; never raises for a source's failure."""
        pairs = [(nhs, c) for nhs in nhs_numbers for c in self.connectors.values()]
        keys = [self._sealer.key(c.name, nhs) for nhs, c in pairs]
        cached = await self._store.get_many(keys)
        outcomes = [self._cached(c.name, k, s) for (_, c), k, s in zip(pairs, keys, cached,
                                                                      strict=True)]
        misses = [i for i, outcome in enumerate(outcomes) if outcome is None]
        fetched = await asyncio.gather(*(self._live(pairs[i][1], pairs[i][0]) for i in misses))
        for index, outcome in zip(misses, fetched, strict=True):
            outcomes[index] = outcome
        width = len(self.connectors)
        bundles = []
        for n, nhs in enumerate(nhs_numbers):
            row = tuple(o for o in outcomes[n * width:(n + 1) * width] if o is not None)
            bundles.append(SourceBundle(nhs, row))
        await self._write_back(bundles, keys)
        return bundles

    async def _write_back(self, bundles: Sequence[SourceBundle], keys: Sequence[str]) -> None:
        width = len(self.connectors)
        writes: list[tuple[str, bytes, float]] = []
        purges: list[str] = []
        for n, bundle in enumerate(bundles):
            row_keys = keys[n * width:(n + 1) * width]
            if bundle.says_shielded:
                purges.extend(row_keys)
                continue
            if not self._may_cache(bundle):
                continue
            for key, outcome in zip(row_keys, bundle.outcomes, strict=True):
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
            *(self.connectors[name].search(criteria) for name in names), return_exceptions=True)
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
