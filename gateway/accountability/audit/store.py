"""The one interface both audit stores (SQLite, PostgreSQL) implement.

A store does I/O only: it appends a batch in one transaction (sealing it with the
head it reads under its write lock), and reads rows back. Group commit, timeouts
and the client-facing error live in `gateway.accountability.audit.log`, once for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.accountability.audit.chain import StoredEvent
    from gateway.accountability.audit.checkpoints import Checkpoint
    from gateway.accountability.audit.events import AuditEvent

__all__ = ["AuditStore", "StoreError"]


class StoreError(Exception):
    """The store is unreachable or refused the operation (a driver error, translated once).

    The message is the driver's description of the failure, never event data.
    """


class AuditStore(Protocol):
    """Append-only storage of the chained log."""

    transactions: int
    """Write transactions committed so far (each `append` is exactly one)."""

    async def append(self, events: Sequence[AuditEvent]) -> list[Checkpoint]:
        """Chain `events` onto the log and commit them, durably, in one transaction;
        returns the checkpoints committed with them (to be published)."""

    async def checkpoint(self) -> list[Checkpoint]:
        """Sign and commit a checkpoint at the head if events after the last one are
        uncovered; returns it (or nothing)."""

    async def for_child(self, child: str, limit: int) -> list[AuditEvent]:
        """The child's events, newest first."""

    async def ping(self) -> None:
        """Raise `StoreError` unless the store answers."""

    async def read_events(self, after: int, limit: int) -> list[StoredEvent]:
        """Up to `limit` rows with seq greater than `after`, in seq order."""

    async def last_seq(self) -> int:
        """The highest seq committed (0 for an empty log)."""

    async def read_checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, in seq order."""

    async def close(self) -> None:
        """Release connections; the store may not be used afterwards."""
