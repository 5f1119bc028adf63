"""`SqliteThread`: one thread, results to the caller, errors mapped, a clean close.

A real SQLite file in a temporary folder; the thread is the real one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from gateway.accountability.durable_sqlite import SqliteThread, open_durable

SCHEMA = "CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY);"


class FailedError(Exception):
    """What the thread raises for a SQLite or OS error (its `error` factory)."""


@pytest.fixture
async def db(tmp_path):
    opened: list[sqlite3.Connection] = []

    def opener() -> sqlite3.Connection:
        conn = open_durable(str(tmp_path / "t.db"), 1.0, SCHEMA)
        opened.append(conn)
        return conn

    thread = SqliteThread(opener, FailedError, "test-sqlite")
    yield thread, opened
    await thread.close()


def insert(n: int):
    def run(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (n,))
        return threading.get_ident()
    return run


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


async def test_operations_run_in_order_on_one_thread_not_the_loops(db):
    thread, _ = db
    idents = await asyncio.gather(*(thread.call(insert(n)) for n in range(50)))
    assert len(set(idents)) == 1
    assert idents[0] != threading.get_ident()
    assert await thread.call(count) == 50


async def test_a_sqlite_error_is_mapped_and_the_connection_reopened(db):
    thread, opened = db
    await thread.call(insert(1))
    with pytest.raises(FailedError) as caught:
        await thread.call(insert(1))  # the same primary key
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert await thread.call(count) == 1
    assert len(opened) == 2  # dropped after the error, opened again


async def test_any_other_exception_reaches_the_caller_as_it_is(db):
    thread, _ = db

    def broken(_conn: sqlite3.Connection) -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await thread.call(broken)
    assert await thread.call(count) == 0


async def test_a_caller_that_stops_waiting_leaves_the_thread_working(db):
    thread, _ = db
    started, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> int:
        started.set()
        release.wait(5)
        return insert(7)(conn)

    waiting = asyncio.ensure_future(thread.call(slow))
    await asyncio.to_thread(started.wait, 5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    assert await thread.call(count) == 1  # it still ran; its result went nowhere


async def test_close_finishes_what_is_queued_then_closes_the_connection(db):
    thread, opened = db
    pending = [asyncio.ensure_future(thread.call(insert(n))) for n in range(5)]
    await asyncio.sleep(0)
    await thread.close()
    await asyncio.gather(*pending)
    with pytest.raises(sqlite3.ProgrammingError):
        opened[0].execute("SELECT 1")  # closed
    with pytest.raises(FailedError):
        await thread.call(count)
    await thread.close()  # twice is fine


async def test_a_thread_never_used_closes_without_starting(tmp_path):
    path = str(tmp_path / "u.db")
    thread = SqliteThread(lambda: open_durable(path, 1.0, SCHEMA), FailedError, "x")
    await thread.close()
    assert not (tmp_path / "u.db").exists()
