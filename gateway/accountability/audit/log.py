"""The audit log the gateway calls: group commit over a store, fail closed, bounded waits.

`record` returns only once its events are committed. Events from concurrent
requests wait together for at most `flush_interval_ms` (or until `max_batch`
events are waiting) and are committed in one transaction; with the default 0
the writer commits as soon as it is free, and the events that arrive while a
commit is in flight form the next batch. A caller waits at
most `timeout_seconds`; then, or when the store fails, it gets
`AuditUnavailableError` and must release nothing. The writer keeps trying
with the next batch, so it recovers as soon as the store is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

from gateway.accountability.audit.store import StoreError
from gateway.core.errors import AuditUnavailableError
from gateway.logs import exception_summary

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.accountability.audit.events import AuditEvent
    from gateway.accountability.audit.store import AuditStore

__all__ = ["AuditLog", "GroupCommitLog", "NullAuditLog"]

logger = logging.getLogger("contactpoint.audit")


class AuditLog(Protocol):
    """What the gateway needs from the audit log."""

    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Return once `events` are durable; raise `AuditUnavailableError` otherwise."""

    async def for_child(self, child: str, limit: int = 500) -> list[AuditEvent]:
        """The child's events (by pseudonym), newest first; raises `AuditUnavailableError`."""

    async def check(self) -> bool:
        """Readiness: whether the store answers now."""

    @property
    def status(self) -> str:
        """One of "ok", "unavailable" (the last attempt failed) or "disabled"."""

    async def close(self) -> None:
        """Commit what is waiting, then release the store."""


class NullAuditLog:
    """`store = "none"`: records nothing (development only; nothing is accountable)."""

    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Accept and drop `events`."""

    async def for_child(self, child: str, limit: int = 500) -> list[AuditEvent]:
        return []

    async def check(self) -> bool:
        return True

    @property
    def status(self) -> str:
        return "disabled"

    async def close(self) -> None:
        """Nothing to release."""


class _Waiting:
    __slots__ = ("events", "future")

    def __init__(self, events: tuple[AuditEvent, ...], future: asyncio.Future[None]) -> None:
        self.events = events
        self.future = future


class GroupCommitLog:
    """`AuditLog` over an `AuditStore` (see the module docstring)."""

    def __init__(self, store: AuditStore, *, flush_interval_ms: float, max_batch: int,
                 timeout_seconds: float) -> None:
        self._store = store
        self._interval = flush_interval_ms / 1000
        self._max_batch = max_batch
        self._timeout = timeout_seconds
        self._queue: deque[_Waiting] = deque()
        self._queued = 0
        self._work = asyncio.Event()
        self._full = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._status = "ok"

    @property
    def status(self) -> str:
        return self._status

    @property
    def transactions(self) -> int:
        """Write transactions committed (one per batch); tests read it to see batching."""
        return self._store.transactions

    async def record(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        if self._closed:
            raise AuditUnavailableError
        waiting = _Waiting(tuple(events), asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._queued += len(waiting.events)
        if self._queued >= self._max_batch:
            self._full.set()
        self._work.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="audit-writer")
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(waiting.future)
        except TimeoutError:
            self._withdraw(waiting)
            self._status = "unavailable"
            raise AuditUnavailableError from None
        except asyncio.CancelledError:
            self._withdraw(waiting)
            raise

    def _withdraw(self, waiting: _Waiting) -> None:
        # Still queued: it will not be written. Already in a transaction: it may
        # still commit, which over-reports an access that was not released.
        waiting.future.cancel()
        with contextlib.suppress(ValueError):
            self._queue.remove(waiting)
            self._queued -= len(waiting.events)

    async def _write(self) -> None:
        while True:
            await self._work.wait()
            if not self._queue:
                self._work.clear()
                if self._closed:
                    return
                continue
            if self._interval > 0 and self._queued < self._max_batch and not self._closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._full.wait()
            if batch := self._take():  # empty if every waiting caller gave up meanwhile
                await self._commit(batch)

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].events) <= self._max_batch):
            waiting = self._queue.popleft()
            batch.append(waiting)
            size += len(waiting.events)
        self._queued -= size
        if self._queued < self._max_batch:
            self._full.clear()
        return batch

    async def _commit(self, batch: list[_Waiting]) -> None:
        events = [event for waiting in batch for event in waiting.events]
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.append(events)
        except (StoreError, TimeoutError) as exc:
            failure = exc
            logger.warning("audit store unavailable: %s", exc if isinstance(exc, StoreError)
                           else "timed out")
        except Exception as exc:  # noqa: BLE001 - the writer must outlive a bug; callers fail closed
            failure = exc
            # Not logger.exception: a message or traceback may quote event data.
            logger.error("audit writer failed: %s", exception_summary(exc))  # noqa: TRY400
        self._status = "ok" if failure is None else "unavailable"
        for waiting in batch:
            if waiting.future.done():
                continue
            if failure is None:
                waiting.future.set_result(None)
            else:
                waiting.future.set_exception(AuditUnavailableError())

    async def for_child(self, child: str, limit: int = 500) -> list[AuditEvent]:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._store.for_child(child, limit)
        except (StoreError, TimeoutError):
            self._status = "unavailable"
            raise AuditUnavailableError from None

    async def check(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.ping()
        except (StoreError, TimeoutError):
            self._status = "unavailable"
            return False
        self._status = "ok"
        return True

    async def close(self) -> None:
        """Commit what is waiting (each batch bounded by the timeout), then close the store."""
        if self._closed:
            return
        self._closed = True
        self._work.set()
        self._full.set()
        if self._writer is not None:
            await self._writer
        await self._store.close()
