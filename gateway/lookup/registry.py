"""The systems in service: immutable snapshots, swapped atomically, old connectors drained.

A `ConnectorSet` is everything a lookup needs to know about the systems in
service — their connectors in order, manifests, manifest versions and merge
rules — and never changes. The `Registry` holds the current one. A request
takes the current set at its start and holds it (`Registry.hold`, a `Lease`)
while it calls the connectors, so a change made meanwhile never reaches a
call halfway.

A change builds a new set and swaps it in (`Registry.swap`, one assignment);
requests starting afterwards take the new one. A connector that is in no set
still held is closed when the last call holding an older set releases it,
or after `drain_seconds` at the latest (a call still running by then has
outlived every connector timeout many times over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectors.registry import close_all, manifest_version
from gateway.core.merge import MergeRules, SourceTraits
from gateway.logs import exception_summary
from gateway.telemetry.metrics import UPSTREAM_CIRCUIT_STATE

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from connectors.base import Connector
    from connectors.manifest import Manifest

__all__ = ["ConnectorSet", "Lease", "Registry", "System"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class System:
    """One system in service: its resolved manifest, version and connector."""

    manifest: Manifest
    connector: Connector
    configured: bool = False
    """Listed in the configuration's `[[connectors]]` (only the operator removes it)."""
    version: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", manifest_version(self.manifest))

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def authority(self) -> str:
        return self.manifest.authority


@dataclass(frozen=True, slots=True, eq=False)
class ConnectorSet:
    """The systems in service at one moment, in order (configuration, then registration)."""

    systems: tuple[System, ...]
    authority: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The configured precedence of single-valued facts (`[merge] authority`)."""
    generation: int = 0
    connectors: Mapping[str, Connector] = field(init=False)
    versions: Mapping[str, str] = field(init=False)
    rules: MergeRules = field(init=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.systems]
        if len(set(names)) != len(names):
            raise ValueError("a connector set names each system once")
        object.__setattr__(self, "connectors", {s.name: s.connector for s in self.systems})
        object.__setattr__(self, "versions", {s.name: s.version for s in self.systems})
        traits = {s.name: SourceTraits(s.manifest.facts, s.manifest.records_shielding,
                                       s.manifest.membership_sensitive) for s in self.systems}
        object.__setattr__(self, "rules", MergeRules(traits, dict(self.authority)))

    def get(self, name: str) -> System | None:
        return next((s for s in self.systems if s.name == name), None)

    def with_system(self, system: System) -> ConnectorSet:
        """This set with `system` added at the end, or in the place of its namesake."""
        if self.get(system.name) is None:
            systems = (*self.systems, system)
        else:
            systems = tuple(system if s.name == system.name else s for s in self.systems)
        return ConnectorSet(systems, self.authority, self.generation + 1)

    def without(self, name: str) -> ConnectorSet:
        """This set without the system `name`."""
        systems = tuple(s for s in self.systems if s.name != name)
        return ConnectorSet(systems, self.authority, self.generation + 1)


_RELEASING = threading.Lock()
"""Makes `Lease.release` idempotent from any thread (held for a check and a set only)."""


class Lease:
    """A request's hold on one `ConnectorSet`; `release` (idempotent, any thread) ends it.

    As a context manager it gives the set and releases it on leaving.
    """

    __slots__ = ("__weakref__", "_registry", "_released", "connector_set")

    def __init__(self, registry: Registry, connector_set: ConnectorSet) -> None:
        self._registry = registry
        self._released = False
        self.connector_set = connector_set

    def release(self) -> None:
        with _RELEASING:
            if self._released:
                return
            self._released = True
        self._registry.released(self.connector_set.generation)

    def __enter__(self) -> ConnectorSet:
        return self.connector_set

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@dataclass(slots=True)
class _Retired:
    connector_set: ConnectorSet
    holders: int
    drained: asyncio.Event = field(default_factory=asyncio.Event)


class Registry:
    """Holds the current `ConnectorSet`; swaps it; closes what no request can still use.

    Changes are serialised by `lock` (hold it from reading `current` to `swap`,
    so two changes cannot both start from the same set). `drain_seconds` bounds
    how long a retired connector waits for the requests that took it.
    """

    def __init__(self, initial: ConnectorSet, *, drain_seconds: float) -> None:
        self._current = initial
        self._drain_seconds = drain_seconds
        self._holders: dict[int, int] = {}
        self._retired: dict[int, _Retired] = {}
        self._open: dict[int, Connector] = {id(c): c for c in initial.connectors.values()}
        self._reapers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()

    @property
    def current(self) -> ConnectorSet:
        return self._current

    def take(self) -> Lease:
        """The current set, held until the lease is released."""
        lease = self.hold(self._current)
        assert lease is not None  # noqa: S101 -- the current set is always open
        return lease

    def hold(self, connector_set: ConnectorSet) -> Lease | None:
        """Hold `connector_set` until the lease is released; None if it is already closed.

        A request holds its set while it calls connectors; a set replaced meanwhile
        is closed only once nobody holds it (or after `drain_seconds`).
        """
        generation = connector_set.generation
        if connector_set is not self._current and generation not in self._retired:
            return None
        self._holders[generation] = self._holders.get(generation, 0) + 1
        return Lease(self, connector_set)

    def released(self, generation: int) -> None:
        """A lease on `generation` ended (thread-safe: counted on the event loop)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._count_down(generation)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to drain
            self._loop.call_soon_threadsafe(self._count_down, generation)

    def _count_down(self, generation: int) -> None:
        left = self._holders.get(generation, 0) - 1
        if left > 0:
            self._holders[generation] = left
            return
        self._holders.pop(generation, None)
        retired = self._retired.get(generation)
        if retired is not None:
            retired.drained.set()

    def swap(self, new: ConnectorSet) -> ConnectorSet:
        """Put `new` in service (for requests starting from now); returns the set it replaced.

        The replaced set's connectors that `new` does not keep are closed once
        the requests holding it have finished (or after `drain_seconds`).
        """
        old, self._current = self._current, new
        self._open.update((id(c), c) for c in new.connectors.values())
        retired = _Retired(old, self._holders.get(old.generation, 0))
        self._retired[old.generation] = retired
        if retired.holders == 0:
            retired.drained.set()
        task = asyncio.create_task(self._reap(retired), name=f"drain-connectors-{old.generation}")
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)
        return old

    async def _reap(self, retired: _Retired) -> None:
        generation = retired.connector_set.generation
        try:
            async with asyncio.timeout(self._drain_seconds):
                while self._holders.get(generation, 0) > 0:  # held again since it drained
                    retired.drained.clear()
                    await retired.drained.wait()
        except TimeoutError:
            log.warning("connector set %d: %d requests still running after %.0f s; closing "
                        "its connectors anyway", retired.connector_set.generation,
                        self._holders.get(retired.connector_set.generation, 0),
                        self._drain_seconds)
        self._retired.pop(retired.connector_set.generation, None)
        closed = self._unreferenced()
        await self._close(closed)
        _unreport(c.name for c in closed if c.name not in self._current.connectors)

    def _unreferenced(self) -> list[Connector]:
        sets = [self._current, *(r.connector_set for r in self._retired.values())]
        kept = {id(c) for s in sets for c in s.connectors.values()}
        gone = [key for key in self._open if key not in kept]
        return [self._open.pop(key) for key in gone]

    @staticmethod
    async def _close(connectors: Iterable[Connector]) -> None:
        closing = list(connectors)
        if not closing:
            return
        try:
            await close_all(closing)
        except ExceptionGroup as group:
            log.warning("closing %d retired connectors: %d failed (%s)", len(closing),
                        len(group.exceptions), exception_summary(group.exceptions[0]))
        log.info("closed retired connectors: %s", ", ".join(c.name for c in closing))

    @property
    def draining(self) -> int:
        """How many replaced sets are still waiting for their requests to finish."""
        return len(self._retired)

    async def close(self) -> None:
        """Stop waiting for drains and close every connector still open (at shutdown)."""
        for task in list(self._reapers):
            task.cancel()
        await asyncio.gather(*self._reapers, return_exceptions=True)
        self._retired.clear()
        connectors, self._open = list(self._open.values()), {}
        _unreport(s.name for s in self._current.systems if not s.configured)
        await close_all(connectors)


def _unreport(names: Iterable[str]) -> None:
    """A system out of service has no circuit to report (a new one starts closed)."""
    for name in names:
        with contextlib.suppress(KeyError):
            UPSTREAM_CIRCUIT_STATE.remove(name)
