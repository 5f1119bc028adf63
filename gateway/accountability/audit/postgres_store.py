"""The production audit store: PostgreSQL through asyncpg, shared by every gateway process.

Each batch is one transaction that first takes a transaction-scoped advisory
lock, then reads the head and inserts the sealed rows, so processes extend one
chain in turn and never fork it. The gateway's role may only INSERT and SELECT
(see `gateway.accountability.audit.pgsetup`); triggers refuse UPDATE, DELETE and TRUNCATE too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg

from gateway.accountability.audit.chain import Head, Sealed, StoredEvent, encoded
from gateway.accountability.audit.checkpoints import Checkpoint
from gateway.accountability.audit.events import decode, format_at, parse_at
from gateway.accountability.audit.store import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gateway.accountability.audit.chain import Sealer
    from gateway.accountability.audit.events import AuditEvent

__all__ = ["ADVISORY_LOCK", "SCHEMA", "PostgresStore"]

SCHEMA = "contactpoint_audit"
ADVISORY_LOCK = 0x63705F6175646974
"""The advisory lock key ("cp_audit") that serialises chain extension across processes."""

# Read committed (the default) matters: the head is read by a statement that
# starts after the lock is granted, so it sees the previous holder's commit.
_HEAD = f"""SELECT (SELECT seq FROM {SCHEMA}.event ORDER BY seq DESC LIMIT 1),
                   (SELECT chain_hash FROM {SCHEMA}.event ORDER BY seq DESC LIMIT 1),
                   (SELECT max(seq) FROM {SCHEMA}.checkpoint)"""  # noqa: S608 - a constant
_INSERT_EVENTS = f"""INSERT INTO {SCHEMA}.event
    (seq, at, child, body, prev_hash, leaf_hash, chain_hash)
    SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[],
                         $5::bytea[], $6::bytea[], $7::bytea[])"""  # noqa: S608 - a constant
_FOR_CHILD = f"""SELECT body FROM {SCHEMA}.event WHERE child = $1
    ORDER BY seq DESC LIMIT $2"""  # noqa: S608 - a constant
_PING = f"SELECT 1 FROM {SCHEMA}.event LIMIT 1"  # noqa: S608 - a constant
_READ_EVENTS = f"""SELECT seq, at, child, body, prev_hash, leaf_hash, chain_hash
    FROM {SCHEMA}.event WHERE seq > $1 ORDER BY seq LIMIT $2"""  # noqa: S608 - a constant
_LAST_SEQ = f"SELECT coalesce(max(seq), 0) FROM {SCHEMA}.event"  # noqa: S608 - a constant
_READ_CHECKPOINTS = f"""SELECT seq, prev_seq, every, chain_hash, key_id, algorithm, signature
    FROM {SCHEMA}.checkpoint ORDER BY seq"""  # noqa: S608 - a constant
_INSERT_CHECKPOINT = f"""INSERT INTO {SCHEMA}.checkpoint
    (seq, prev_seq, every, chain_hash, key_id, algorithm, signature)
    VALUES ($1, $2, $3, $4, $5, $6, $7)"""  # noqa: S608 - a constant

DRIVER_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What asyncpg raises when the server is down, unreachable or refuses."""


def _store_error(exc: BaseException) -> StoreError:
    hint = ""
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.InvalidSchemaNameError):
        hint = " (run `contactpoint audit init-db` first)"
    return StoreError(f"PostgreSQL audit store: {type(exc).__name__}: {exc}{hint}")


def _head(row: asyncpg.Record | None) -> Head:
    if row is None or row[0] is None:
        return Head()
    return Head(row[0], row[1], row[2] or 0)


class PostgresStore:
    """The audit log in PostgreSQL (see the module docstring)."""

    def __init__(self, dsn: str, sealer: Sealer, timeout: float, *, pool_size: int = 4) -> None:
        self._dsn = dsn
        self._sealer = sealer
        self._timeout = timeout
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self.transactions = 0

    async def _connection_pool(self) -> asyncpg.Pool:
        # min_size=0: creating the pool connects nothing, so it succeeds while the
        # server is down; each acquire connects on demand and so recovers by itself.
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=0, max_size=self._pool_size,
                    timeout=self._timeout * 0.9, command_timeout=self._timeout)
        return self._pool

    async def _locked(self, seal: Callable[[Head], Sealed]) -> Sealed:
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK)
                sealed = seal(_head(await conn.fetchrow(_HEAD)))
                if rows := sealed.events:
                    await conn.execute(
                        _INSERT_EVENTS, [e.seq for e in rows], [parse_at(e.at) for e in rows],
                        [e.child for e in rows], [e.body.decode() for e in rows],
                        [e.prev_hash for e in rows], [e.leaf_hash for e in rows],
                        [e.chain_hash for e in rows])
                if sealed.checkpoints:
                    await conn.executemany(_INSERT_CHECKPOINT, [
                        (c.seq, c.prev_seq, c.every, c.chain_hash, c.key_id, c.algorithm,
                         c.signature) for c in sealed.checkpoints])
        except DRIVER_ERRORS as exc:
            raise _store_error(exc) from exc
        return sealed

    async def append(self, events: Sequence[AuditEvent]) -> list[Checkpoint]:
        batch = encoded(events)
        sealed = await self._locked(lambda head: self._sealer.seal(head, batch))
        self.transactions += 1
        return sealed.checkpoints

    async def checkpoint(self) -> list[Checkpoint]:
        def seal(head: Head) -> Sealed:
            checkpoint = self._sealer.checkpoint(head)
            return Sealed(checkpoints=[] if checkpoint is None else [checkpoint])
        return (await self._locked(seal)).checkpoints

    async def _fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                return await conn.fetch(query, *args)
        except DRIVER_ERRORS as exc:
            raise _store_error(exc) from exc

    async def for_child(self, child: str, limit: int) -> list[AuditEvent]:
        rows = await self._fetch(_FOR_CHILD, child, limit)
        return [decode(row[0]) for row in rows]

    async def ping(self) -> None:
        await self._fetch(_PING)

    async def read_events(self, after: int, limit: int) -> list[StoredEvent]:
        rows = await self._fetch(_READ_EVENTS, after, limit)
        return [StoredEvent(r[0], format_at(r[1]), r[2], r[3].encode(), r[4], r[5], r[6])
                for r in rows]

    async def last_seq(self) -> int:
        rows = await self._fetch(_LAST_SEQ)
        return int(rows[0][0])

    async def read_checkpoints(self) -> list[Checkpoint]:
        rows = await self._fetch(_READ_CHECKPOINTS)
        return [Checkpoint(*row) for row in rows]

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except TimeoutError:
                pool.terminate()
