"""A durable outbox: messages to other systems, committed first and retried until acknowledged.

Why: a request must never wait on (or fail because of) a system that is down, and a
message accepted by the gateway must survive a restart. `put` commits the message to a
SQLite file (WAL, fsynced) and returns; a dispatcher task delivers due messages through
the sender registered for their kind, with exponential back-off and jitter, and never
gives up.

Several worker processes may share one file: a dispatcher claims due rows atomically
(one `UPDATE ... RETURNING` sets a lease), so two dispatchers never send one message
at the same time. Delivery is at least once: if a process dies between the send and the
commit of its result, the lease expires and the message is sent again, so senders pass
the message id to the destination as an idempotency key.

The payload is personal data in transit: it is stored encrypted (AES-256-GCM, the row id
as associated data, so a ciphertext cannot be moved to another row) and set to NULL
once delivered; only kind, destination, state, reference and timestamps remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.accountability.durable_sqlite import SqliteThread, open_durable
from gateway.crypto.keys import derive_key

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Awaitable, Callable

__all__ = ["Delivery", "Message", "Outbox", "OutboxError", "OutboxRetryError"]


_log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    destination     TEXT NOT NULL,
    dedup_key       TEXT UNIQUE,
    payload         BLOB,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    reference       TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    last_error      TEXT,
    next_attempt_at REAL NOT NULL,
    claimed_until   REAL NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
"""

_INSERT = """INSERT INTO outbox (id, kind, destination, dedup_key, payload, state,
             created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
             ON CONFLICT (dedup_key) DO NOTHING"""
# One statement, so two processes cannot claim the same row: the write lock serialises them.
_CLAIM = """UPDATE outbox SET claimed_until = ?
            WHERE id IN (SELECT id FROM outbox
                         WHERE state = 'pending' AND next_attempt_at <= ? AND claimed_until < ?
                           AND kind IN (SELECT value FROM json_each(?))
                         ORDER BY next_attempt_at LIMIT ?)
            RETURNING id, kind, destination, payload, attempts"""
_DELIVERED = """UPDATE outbox SET state = 'delivered', payload = NULL, reference = ?,
                delivered_at = ?, attempts = attempts + 1, last_error = NULL, claimed_until = 0
                WHERE id = ? AND claimed_until = ?"""
_FAILED = """UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
             claimed_until = 0 WHERE id = ? AND claimed_until = ?"""
_RELEASE = "UPDATE outbox SET claimed_until = 0 WHERE id = ? AND claimed_until = ?"
_STATE = """SELECT id, kind, destination, state, attempts, reference, created_at,
            delivered_at, last_error FROM outbox WHERE id = ?"""

_BATCH = 32
_LEASE_SECONDS = 60.0
"""How long a claim holds; longer than any send (connector timeouts are seconds)."""
_CLOSE_SECONDS = 2.0
"""How long `close` keeps delivering; whatever is left stays in the file for next time."""


class OutboxError(Exception):
    """The outbox file could not be read or written."""

    code = "OUTBOX_UNAVAILABLE"


class OutboxRetryError(Exception):
    """Raised by a sender: the destination did not take the message; try again later.

    Any other exception from a sender is also retried (the outbox never gives up); this
    one says the failure was expected, so it is not logged as a fault.
    """

    code = "RETRY"


@dataclass(frozen=True, slots=True)
class Message:
    """One message handed to its sender; `attempts` counts the earlier tries."""

    id: str
    kind: str
    destination: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the outbox knows of one message (never its payload)."""

    id: str
    kind: str
    destination: str
    state: str
    """"pending" or "delivered"."""
    attempts: int
    reference: str | None
    """The destination's acknowledgement reference."""
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    last_error: str | None
    """The kind of the last failure (an error code or class name), never its message."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _error_kind(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else type(exc).__name__


def _outbox_error(exc: BaseException) -> Exception:
    return OutboxError(f"outbox: {type(exc).__name__}")


def _claim(kinds: list[str], lease: float, now: float, limit: int,
           conn: sqlite3.Connection) -> list[tuple[str, str, str, bytes, int]]:
    rows = conn.execute(_CLAIM, (lease, now, now, json.dumps(kinds), limit)).fetchall()
    return [(i, k, d, bytes(p), a) for i, k, d, p, a in rows]


def _execute(sql: str, params: tuple[Any, ...], conn: sqlite3.Connection) -> int:
    return conn.execute(sql, params).rowcount


def _state(message_id: str, conn: sqlite3.Connection) -> Delivery | None:
    row = conn.execute(_STATE, (message_id,)).fetchone()
    if row is None:
        return None
    mid, kind, destination, state, attempts, reference, created, delivered, error = row
    return Delivery(mid, kind, destination, state, attempts, reference,
                    dt.datetime.fromisoformat(created),
                    None if delivered is None else dt.datetime.fromisoformat(delivered), error)


class Outbox:
    """Durable, encrypted, at-least-once delivery of messages (see the module docstring)."""

    def __init__(self, path: str, secret: str, *, poll_seconds: float = 1.0,
                 max_backoff_seconds: float = 300.0) -> None:
        self._aead = AESGCM(derive_key(secret, "outbox-payload"))
        self._db = SqliteThread(lambda: open_durable(path, 5.0, SCHEMA), _outbox_error,
                                "outbox-sqlite")
        self._call = self._db.call
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._senders: dict[str, Callable[[Message], Awaitable[str | None]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def put(self, kind: str, destination: str, payload: dict[str, Any], *,
                  dedup_key: str | None = None) -> str | None:
        """Commit a message; its id, or None if one with `dedup_key` already exists."""
        message_id = secrets.token_hex(16)
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, json.dumps(payload).encode(),
                                            message_id.encode())
        inserted = await self._call(functools.partial(
            _execute, _INSERT, (message_id, kind, destination, dedup_key, sealed,
                                _now().isoformat(), time.time())))
        if not inserted:
            return None
        self._wake.set()
        return message_id

    def handle(self, kind: str, send: Callable[[Message], Awaitable[str | None]]) -> None:
        """`send` delivers messages of `kind` and returns the destination's reference.

        It raises `OutboxRetryError` (or any other exception) to be tried again later.
        """
        self._senders[kind] = send
        self._wake.set()

    async def state(self, message_id: str) -> Delivery | None:
        """The message's delivery record, or None if there is no such message."""
        return await self._call(functools.partial(_state, message_id))

    async def drain(self) -> int:
        """Deliver every message due now, once each; how many were delivered."""
        delivered = 0
        now = time.time()
        while self._senders:
            lease = time.time() + _LEASE_SECONDS
            rows = await self._claim(lease, now)
            if not rows:
                return delivered
            results = await asyncio.gather(*(self._deliver(row, lease) for row in rows))
            delivered += sum(results)
        return delivered

    async def _claim(self, lease: float, now: float) -> list[tuple[str, str, str, bytes, int]]:
        """Claim due rows; cancelled meanwhile, they are given back rather than held a lease."""
        claim = asyncio.ensure_future(self._call(functools.partial(
            _claim, sorted(self._senders), lease, now, _BATCH)))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with contextlib.suppress(OutboxError):
                for row in await claim:
                    await self._call(functools.partial(_execute, _RELEASE, (row[0], lease)))
            raise

    async def _deliver(self, row: tuple[str, str, str, bytes, int], lease: float) -> bool:
        message_id, kind, destination, sealed, attempts = row
        try:
            payload = json.loads(self._aead.decrypt(sealed[:12], sealed[12:],
                                                    message_id.encode()))
            reference = await self._senders[kind](
                Message(message_id, kind, destination, payload, attempts))
        except asyncio.CancelledError:
            # Give the message back at once rather than when the lease runs out.
            with contextlib.suppress(OutboxError):
                await asyncio.shield(self._call(functools.partial(
                    _execute, _RELEASE, (message_id, lease))))
            raise
        except Exception as exc:  # noqa: BLE001 -- any sender failure is retried, never lost
            if not isinstance(exc, OutboxRetryError):
                _log.info("outbox: %s to %s failed (%s); will retry", kind, destination,
                          _error_kind(exc))
            due = time.time() + self._backoff(attempts)
            await self._call(functools.partial(
                _execute, _FAILED, (_error_kind(exc), due, message_id, lease)))
            return False
        await self._call(functools.partial(
            _execute, _DELIVERED, (reference, _now().isoformat(), message_id, lease)))
        return True

    def _backoff(self, attempts: int) -> float:
        """Exponential from one poll interval, capped, with jitter (half to all of it)."""
        ceiling = min(self._max_backoff, max(self._poll, 0.05) * 2.0 ** min(attempts, 30))
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 -- jitter, not a secret

    def start(self) -> None:
        """Start the dispatcher: due messages every `poll_seconds`, or as soon as one is put."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            try:
                await self.drain()
            except OutboxError:
                _log.warning("outbox: the file is unavailable; will retry")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    async def close(self) -> None:
        """Stop the dispatcher, deliver what can be within a short time, close the file.

        Anything not delivered stays in the file, for the next process to send.
        """
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._wake.set()  # let the current round finish; cancel it only if it hangs
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_SECONDS):
                    await asyncio.shield(self._task)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(TimeoutError, OutboxError):
            async with asyncio.timeout(_CLOSE_SECONDS):
                await self.drain()
        await self._db.close()
