"""The embedded audit store: one SQLite file in WAL mode, fsynced on every commit.

sqlite3 blocks, so every call runs on one dedicated thread that owns the
connection; the event loop only awaits it. Triggers refuse UPDATE and DELETE.
The connection opens lazily and is dropped after any error, so the store
recovers by itself once the file can be written again.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.accountability.audit.chain import Head, Sealed, StoredEvent, encoded
from gateway.accountability.audit.checkpoints import Checkpoint
from gateway.accountability.audit.events import decode
from gateway.accountability.audit.store import StoreError
from gateway.accountability.durable_sqlite import SqliteThread, open_durable

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gateway.accountability.audit.chain import Sealer
    from gateway.accountability.audit.events import AuditEvent

__all__ = ["SCHEMA", "SqliteStore"]


SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_event (
    seq        INTEGER PRIMARY KEY CHECK (seq > 0),
    at         TEXT NOT NULL,
    child      TEXT,
    body       TEXT NOT NULL,
    prev_hash  BLOB NOT NULL CHECK (length(prev_hash) = 32),
    leaf_hash  BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    chain_hash BLOB NOT NULL CHECK (length(chain_hash) = 32)
) STRICT;
CREATE INDEX IF NOT EXISTS audit_event_child ON audit_event (child, seq);
CREATE TABLE IF NOT EXISTS audit_checkpoint (
    seq        INTEGER PRIMARY KEY,
    prev_seq   INTEGER NOT NULL,
    every      INTEGER NOT NULL,
    chain_hash BLOB NOT NULL,
    key_id     TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    signature  BLOB NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

_HEAD = """SELECT (SELECT seq FROM audit_event ORDER BY seq DESC LIMIT 1),
                  (SELECT chain_hash FROM audit_event ORDER BY seq DESC LIMIT 1),
                  (SELECT max(seq) FROM audit_checkpoint)"""
_INSERT_EVENT = "INSERT INTO audit_event VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_CHECKPOINT = "INSERT INTO audit_checkpoint VALUES (?, ?, ?, ?, ?, ?, ?)"


def _opener(path: str, timeout: float, read_only: bool) -> Callable[[], sqlite3.Connection]:
    if read_only:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        return lambda: sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    return lambda: open_durable(path, timeout, SCHEMA)


def _store_error(exc: BaseException) -> Exception:
    return StoreError(f"SQLite audit store: {exc}")


def _locked(conn: sqlite3.Connection, seal: Callable[[Head], Sealed]) -> Sealed:
    # BEGIN IMMEDIATE takes the write lock before the head is read, so another
    # process writing the same file cannot fork the chain.
    conn.execute("BEGIN IMMEDIATE")
    try:
        seq, chain, checkpoint = conn.execute(_HEAD).fetchone()
        sealed = seal(Head() if seq is None else Head(seq, chain, checkpoint or 0))
        conn.executemany(_INSERT_EVENT, [
            (e.seq, e.at, e.child, e.body.decode(), e.prev_hash, e.leaf_hash,
             e.chain_hash) for e in sealed.events])
        conn.executemany(_INSERT_CHECKPOINT, [
            (c.seq, c.prev_seq, c.every, c.chain_hash, c.key_id, c.algorithm, c.signature)
            for c in sealed.checkpoints])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return sealed


def _append(sealer: Sealer, batch: list[tuple[AuditEvent, bytes]],
            conn: sqlite3.Connection) -> list[Checkpoint]:
    return _locked(conn, lambda head: sealer.seal(head, batch)).checkpoints


def _checkpoint(sealer: Sealer, conn: sqlite3.Connection) -> list[Checkpoint]:
    def seal(head: Head) -> Sealed:
        checkpoint = sealer.checkpoint(head)
        return Sealed(checkpoints=[] if checkpoint is None else [checkpoint])
    return _locked(conn, seal).checkpoints


def _for_child(child: str, limit: int, conn: sqlite3.Connection) -> list[AuditEvent]:
    rows = conn.execute("SELECT body FROM audit_event WHERE child = ? ORDER BY seq DESC LIMIT ?",
                        (child, limit)).fetchall()
    return [decode(body) for (body,) in rows]


def _read_events(after: int, limit: int, conn: sqlite3.Connection) -> list[StoredEvent]:
    # The body as bytes: a tampered row that is not UTF-8 must reach the verifier, not fail here.
    rows = conn.execute("SELECT seq, at, child, CAST(body AS BLOB), prev_hash, leaf_hash,"
                        " chain_hash"
                        " FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?",
                        (after, limit)).fetchall()
    return [StoredEvent(seq, at, child, bytes(body), bytes(prev), bytes(leaf),
                        bytes(chain)) for seq, at, child, body, prev, leaf, chain in rows]


def _last_seq(conn: sqlite3.Connection) -> int:
    (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_event").fetchone()
    return int(seq)


def _read_checkpoints(conn: sqlite3.Connection) -> list[Checkpoint]:
    rows = conn.execute("SELECT seq, prev_seq, every, chain_hash, key_id, algorithm, signature"
                        " FROM audit_checkpoint ORDER BY seq").fetchall()
    return [Checkpoint(*row) for row in rows]


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1 FROM audit_event LIMIT 1").fetchall()


class SqliteStore:
    """The audit log in one SQLite file (see the module docstring)."""

    def __init__(self, path: str, sealer: Sealer, timeout: float, *,
                 read_only: bool = False) -> None:
        self._sealer = sealer
        self._db = SqliteThread(_opener(path, timeout, read_only), _store_error, "audit-sqlite")
        self._call = self._db.call
        self.transactions = 0

    async def append(self, events: Sequence[AuditEvent]) -> list[Checkpoint]:
        checkpoints = await self._call(functools.partial(_append, self._sealer,
                                                         encoded(events)))
        self.transactions += 1
        return checkpoints

    async def checkpoint(self) -> list[Checkpoint]:
        return await self._call(functools.partial(_checkpoint, self._sealer))

    async def for_child(self, child: str, limit: int) -> list[AuditEvent]:
        return await self._call(functools.partial(_for_child, child, limit))

    async def ping(self) -> None:
        await self._call(_ping)

    async def read_events(self, after: int, limit: int) -> list[StoredEvent]:
        return await self._call(functools.partial(_read_events, after, limit))

    async def last_seq(self) -> int:
        return await self._call(_last_seq)

    async def read_checkpoints(self) -> list[Checkpoint]:
        return await self._call(_read_checkpoints)

    async def close(self) -> None:
        await self._db.close()
