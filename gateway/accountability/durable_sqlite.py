"""SQLite files that must not lose a committed row: the audit log's and the outbox's."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from typing import TYPE_CHECKING, Any, TypeVar

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

    The thread takes operations from a queue and hands each result to the caller's
    loop with one `call_soon_threadsafe`: no executor, no `concurrent.futures` future
    chained to the asyncio one (the audit log commits through here once per request
    at low load, and that machinery cost the event loop more than the handoff itself).
    An operation whose caller stopped waiting still runs; its result is dropped.
    """

    def __init__(self, opener: Callable[[], sqlite3.Connection],
                 error: Callable[[BaseException], Exception], name: str) -> None:
        self._opener = opener
        self._error = error
        self._conn: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._started = False
        self._closed = False

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

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            operation, future, loop = job
            settle: Callable[[asyncio.Future[Any], Any], None]
            try:
                value: Any = self._run(operation)
                settle = _succeed
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller, as an executor would
                value, settle = exc, _fail
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits
                loop.call_soon_threadsafe(settle, future, value)
        self._drop()

    async def call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """`operation(connection)` on the thread."""
        if self._closed:
            raise self._error(RuntimeError("closed"))
        if not self._started:
            self._started = True
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((operation, future, loop))
        return await future

    async def close(self) -> None:
        """Close the connection (on its thread, after what is queued), then let the thread go."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)


_Job = tuple["Callable[[sqlite3.Connection], Any]", "asyncio.Future[Any]",
             "asyncio.AbstractEventLoop"]


def _succeed(future: asyncio.Future[Any], result: Any) -> None:  # noqa: ANN401
    if not future.done():  # its caller may have stopped waiting
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
