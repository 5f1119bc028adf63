"""SQLite files that must not lose a committed row: the audit log's and the outbox's."""

from __future__ import annotations

import sqlite3

__all__ = ["open_durable"]


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
