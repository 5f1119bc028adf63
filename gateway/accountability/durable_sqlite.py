"""SQLite files that must not lose a committed row: the audit log's and the outbox's."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SqliteThread", "open_durable"]

T = TypeVar("T")


def open_durable(path: str, timeout: float, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL journal, fsync at every commit, `schema` applied.

    Raises `sqlite3.Error` (or `OSError`) if the file cannot be opened so; the
    connection is closed first.
    """
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
    if mode != "wal":
        raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")


class SqliteThread:
    """One SQLite connection used only on its own thread, reopened after any failure.

    `opener` makes the connection (lazily, on that thread); a `sqlite3.Error` or
    `OSError` from an operation drops it and is raised as `error(exc)`.
    """

    def __init__(self, opener: Callable[[], sqlite3.Connection],
                 error: Callable[[BaseException], Exception], name: str) -> None:
        self._opener = opener
        self._error = error
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._conn is None:
                self._conn = self._opener()
            return operation(self._conn)
        except (sqlite3.Error, OSError) as exc:
            self._drop()
            raise self._error(exc) from exc

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    async def call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """`operation(connection)` on the thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run,
                                                                 operation)

    async def close(self) -> None:
        """Close the connection (on its thread), then let the thread go."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._drop)
        self._thread.shutdown(wait=False)
