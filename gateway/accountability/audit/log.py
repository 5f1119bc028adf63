"""The audit log the gateway calls: group commit over a store, fail closed, bounded waits.

`record` returns only once its events are committed. Events from concurrent
requests wait together for at most `flush_interval_ms` (or until `max_batch`
events are waiting) and are committed in one transaction; with the default 0
the writer commits as soon as it is free, and the events that arrive while a
commit is in flight form the next batch. Under load (the batch just committed
held more than one caller's events) the next batch also waits, for at most
`load_wait_ms`: a commit costs the process far more CPU than its size suggests
(the store's thread, woken for it and for its fsync, preempts the event loop's),
so fewer, larger commits are cheaper; a lone caller never waits, nor does the first
caller after `LOAD_MEMORY_SECONDS` with no commit (the busy spell is over). A caller waits at
most `timeout_seconds`; then, or when the store fails, it gets
`AuditUnavailableError` and must release nothing. The writer keeps trying
with the next batch, so it recovers as soon as the store is back.

Checkpoints: besides the store's every-N-events checkpoints, a timer asks the
store every `checkpoint_interval_seconds` for a checkpoint at the head while
events are uncovered (and once more on close), so the newest events are signed
within seconds. Every checkpoint is then published to the `CheckpointFile`,
outside the store; a failure to publish is logged, never fails a caller (the
events are already durable).
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
from gateway.telemetry.audit import audit_commit
from gateway.telemetry.metrics import AUDIT_QUEUE_DEPTH

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.accountability.audit.checkpoints import Checkpoint
    from gateway.accountability.audit.events import AuditEvent
    from gateway.accountability.audit.published import CheckpointFile
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


class _Expired(Exception):  # noqa: N818 -- not an error of the caller's: the wait ended
    """A caller's wait reached `timeout_seconds` (set on its future by `_expire`)."""


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class _Waiting:
    __slots__ = ("events", "future")

    def __init__(self, events: tuple[AuditEvent, ...], future: asyncio.Future[None]) -> None:
        self.events = events
        self.future = future


LOAD_MEMORY_SECONDS = 0.1
"""How long after a batch of several callers the log still counts as under load: after a
longer quiet spell, the next caller is taken to be alone and commits at once."""


class GroupCommitLog:
    """`AuditLog` over an `AuditStore` (see the module docstring)."""

    def __init__(self, store: AuditStore, *, flush_interval_ms: float, max_batch: int,
                 timeout_seconds: float, load_wait_ms: float = 0.0,
                 checkpoint_interval_seconds: float = 0.0,
                 publisher: CheckpointFile | None = None) -> None:
        self._store = store
        self._checkpoint_interval = checkpoint_interval_seconds
        self._publisher = publisher
        self._publishing = asyncio.Lock()
        self._uncovered = False
        self._stopping = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._interval = flush_interval_ms / 1000
        self._load_wait = load_wait_ms / 1000
        self._loaded_until = 0.0
        """Until when (the loop's clock) the log counts as under load: `LOAD_MEMORY_SECONDS`
        after a commit of several callers' events ended, 0 after one of a lone caller's."""
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
        loop = asyncio.get_running_loop()
        waiting = _Waiting(tuple(events), loop.create_future())
        self._queue.append(waiting)
        self._queued += len(waiting.events)
        AUDIT_QUEUE_DEPTH.set(self._queued)
        if self._queued >= self._max_batch:
            self._full.set()
        self._work.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="audit-writer")
        if self._checkpoint_interval > 0 and self._timer is None:
            self._timer = asyncio.create_task(self._tick(), name="audit-checkpoint-timer")
        # The deadline ends the future itself (`_expire`), not the caller's task: the
        # future is this call's own, so `asyncio.timeout`'s task bookkeeping (and its
        # loop lookups, a getpid each on 3.11) is not needed on every request.
        deadline = loop.call_later(self._timeout, _expire, waiting.future)
        try:
            await waiting.future
        except _Expired:
            self._withdraw(waiting)
            self._status = "unavailable"
            raise AuditUnavailableError from None
        except asyncio.CancelledError:  # the caller's: the writer skips a future that is done
            self._withdraw(waiting)
            raise
        finally:
            deadline.cancel()

    def _withdraw(self, waiting: _Waiting) -> None:
        # Still queued: it will not be written. Already in a transaction: it may
        # still commit, which over-reports an access that was not released.
        waiting.future.cancel()
        with contextlib.suppress(ValueError):
            self._queue.remove(waiting)
            self._queued -= len(waiting.events)
            AUDIT_QUEUE_DEPTH.set(self._queued)

    async def _write(self) -> None:
        while True:
            await self._work.wait()
            if not self._queue:
                self._work.clear()
                if self._closed:
                    return
                continue
            under_load = asyncio.get_running_loop().time() < self._loaded_until
            wait = self._interval or (self._load_wait if under_load else 0.0)
            if wait > 0 and self._queued < self._max_batch and not self._closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._full.wait()
            if batch := self._take():  # empty if every waiting caller gave up meanwhile
                await self._commit(batch)
                self._loaded_until = (asyncio.get_running_loop().time() + LOAD_MEMORY_SECONDS
                                      if len(batch) > 1 else 0.0)

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].events) <= self._max_batch):
            waiting = self._queue.popleft()
            batch.append(waiting)
            size += len(waiting.events)
        self._queued -= size
        AUDIT_QUEUE_DEPTH.set(self._queued)
        if self._queued < self._max_batch:
            self._full.clear()
        return batch

    async def _commit(self, batch: list[_Waiting]) -> None:
        events = [event for waiting in batch for event in waiting.events]
        failure: BaseException | None = None
        checkpoints: list[Checkpoint] = []
        try:
            with audit_commit(len(events)):
                async with asyncio.timeout(self._timeout):
                    checkpoints = await self._store.append(events)
            self._uncovered = True
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
        await self._publish(checkpoints)

    async def _tick(self) -> None:
        # Stopped by an event, not cancelled: a checkpoint in flight is committed
        # *and* published, never committed and then dropped.
        while True:
            try:
                async with asyncio.timeout(self._checkpoint_interval):
                    await self._stopping.wait()
            except TimeoutError:
                await self._checkpoint()
            else:
                return

    async def _checkpoint(self) -> None:
        """A checkpoint at the head if a commit since the last one left events uncovered."""
        if not self._uncovered:
            return
        # Cleared first: a commit that lands meanwhile sets it again for the next tick.
        self._uncovered = False
        try:
            async with asyncio.timeout(self._timeout):
                checkpoints = await self._store.checkpoint()
        except (StoreError, TimeoutError) as exc:
            self._uncovered = True
            logger.warning("audit checkpoint not written: %s",
                           exc if isinstance(exc, StoreError) else "timed out")
            return
        await self._publish(checkpoints)

    async def _publish(self, checkpoints: list[Checkpoint]) -> None:
        if self._publisher is None or not checkpoints:
            return
        async with self._publishing:
            try:
                await asyncio.to_thread(self._publisher.publish, checkpoints)
            except OSError as exc:
                logger.error("audit checkpoints %s not published to %s: %s",  # noqa: TRY400 - no traceback needed
                             ", ".join(str(c.seq) for c in checkpoints), self._publisher.path,
                             exc.strerror or exc)

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
        """Commit what is waiting (each batch bounded by the timeout), sign a last checkpoint
        over it, then close the store."""
        if self._closed:
            return
        self._closed = True
        self._work.set()
        self._full.set()
        self._stopping.set()
        if self._timer is not None:
            await self._timer
        if self._writer is not None:
            await self._writer
        if self._checkpoint_interval > 0:
            await self._checkpoint()
        await self._store.close()
