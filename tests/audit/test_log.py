"""The writer: group commit, durable before `record` returns, fail closed, recovery."""

import asyncio
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from gateway.accountability.audit import NullAuditLog, child_pseudonym, open_audit_log
from gateway.accountability.audit.log import LOAD_MEMORY_SECONDS
from gateway.core.errors import AuditUnavailableError
from tests.audit.helpers import CHILDREN, SECRET, TcpProxy, event, settings


async def committed_reader(backend):
    """Counts committed rows for a request id through a separate connection."""
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.options["sqlite_path"], isolation_level=None)

        async def count(request_id):
            return conn.execute("SELECT count(*) FROM audit_event WHERE body LIKE ?",
                                (f'%"request_id":"{request_id}"%',)).fetchone()[0]

        async def close():
            conn.close()
        return count, close

    pool = await asyncpg.create_pool(backend.tamper.admin_dsn, min_size=1, max_size=8)

    async def count(request_id):
        return await pool.fetchval(
            "SELECT count(*) FROM contactpoint_audit.event WHERE body LIKE $1",
            f'%"request_id":"{request_id}"%')
    return count, pool.close


async def test_group_commit_batches_and_returns_only_after_commit(backend):
    log = await open_audit_log(backend.settings(flush_interval_ms=5))
    count, close = await committed_reader(backend)
    seen: list[int] = []

    async def one(i):
        await log.record([event(i)])
        seen.append(await count(f"req-{i}"))

    try:
        await asyncio.gather(*(one(i) for i in range(200)))
        assert seen == [1] * 200
        assert log.transactions <= 20, log.transactions
        assert log.status == "ok"
    finally:
        await log.close()
        await close()


async def test_max_batch_bounds_a_transaction(sqlite_backend):
    log = await open_audit_log(sqlite_backend.settings(max_batch=8, flush_interval_ms=50))
    try:
        await asyncio.gather(*(log.record([event(i)]) for i in range(40)))
        assert 5 <= log.transactions <= 10
        await log.record([event(i) for i in range(100, 120)])  # one call larger than max_batch
    finally:
        await log.close()
    rows = await sqlite_backend.tamper.fetch("SELECT count(*) FROM audit_event")
    assert rows == [(60,)]


async def test_under_load_a_batch_waits_for_more_but_a_lone_caller_never_does(backend):
    log = await open_audit_log(backend.settings(flush_interval_ms=0, load_wait_ms=400))
    try:
        started = time.monotonic()
        for i in range(3):  # one caller at a time: each commits at once
            await log.record([event(i)])
        assert time.monotonic() - started < 0.35
        await asyncio.gather(log.record([event(10)]), log.record([event(11)]))
        assert log.transactions == 4  # one batch of two callers: under load now

        started = time.monotonic()
        first = asyncio.create_task(log.record([event(20)]))
        await asyncio.sleep(0.1)
        late = asyncio.create_task(log.record([event(21)]))  # joins the batch still waiting
        await asyncio.gather(first, late)
        assert time.monotonic() - started >= 0.35
        assert log.transactions == 5

        await log.record([event(30)])  # still under load: waits, then commits alone
        started = time.monotonic()
        await log.record([event(31)])  # the last batch held one caller: no wait
        assert time.monotonic() - started < 0.35
        assert log.transactions == 7

        await asyncio.gather(log.record([event(40)]), log.record([event(41)]))  # loaded again
        await asyncio.sleep(LOAD_MEMORY_SECONDS + 0.05)  # the busy spell is over
        started = time.monotonic()
        await log.record([event(50)])
        assert time.monotonic() - started < 0.35
        assert log.transactions == 9
    finally:
        await log.close()


async def test_for_child_newest_first(backend):
    log = await open_audit_log(backend.settings())
    try:
        await log.record([event(i) for i in range(9)])
        child = child_pseudonym(SECRET, "9990000018")
        found = await log.for_child(child)
        assert [e.request_id for e in found] == ["req-6", "req-3", "req-0"]
        assert [e.request_id for e in await log.for_child(child, limit=1)] == ["req-6"]
        assert await log.for_child("0" * 64) == []
        assert await log.check()
    finally:
        await log.close()


async def test_close_flushes_what_is_waiting(sqlite_backend):
    log = await open_audit_log(sqlite_backend.settings(flush_interval_ms=500))
    pending = [asyncio.create_task(log.record([event(i)])) for i in range(5)]
    await asyncio.sleep(0)
    started = time.monotonic()
    await log.close()
    await asyncio.gather(*pending)
    assert time.monotonic() - started < 0.4  # closing does not wait out the flush interval
    assert await sqlite_backend.tamper.fetch("SELECT count(*) FROM audit_event") == [(5,)]
    with pytest.raises(AuditUnavailableError):
        await log.record([event(9)])


async def test_log_holds_no_nhs_number_or_name(backend):
    log = await open_audit_log(backend.settings())
    try:
        await log.record([event(i, nhs=nhs) for i, nhs in enumerate(CHILDREN)])
    finally:
        await log.close()
    stored = await backend.tamper.storage_text()
    assert child_pseudonym(SECRET, "9990000018") in stored  # the check can see what is there
    for nhs, name in CHILDREN.items():
        assert nhs not in stored
        for part in name.split():
            assert part not in stored


async def test_sqlite_unwritable_fails_closed_then_recovers(sqlite_backend, tmp_path):
    path = tmp_path / "audit.db"
    path.mkdir()  # a directory where the file should be: SQLite cannot open it
    log = await open_audit_log(sqlite_backend.settings(timeout_seconds=0.5))
    try:
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError) as info:
            await log.record([event(1)])
        assert time.monotonic() - started < 0.5 + 1.5  # the timeout plus slack for a loaded machine
        assert info.value.code == "AUDIT_UNAVAILABLE"
        assert info.value.http_status == 503
        assert log.status == "unavailable"
        assert not await log.check()
        with pytest.raises(AuditUnavailableError):
            await log.for_child("0" * 64)
        path.rmdir()
        await log.record([event(2)])
        assert log.status == "ok"
    finally:
        await log.close()


async def test_sqlite_locked_times_out_within_the_bound(sqlite_backend):
    log = await open_audit_log(sqlite_backend.settings(timeout_seconds=0.3))
    blocker = None
    try:
        await log.record([event(1)])
        blocker = sqlite3.connect(sqlite_backend.options["sqlite_path"], isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError):
            await log.record([event(2)])
        assert time.monotonic() - started < 0.3 + 1.5  # the timeout plus slack for a loaded machine
        blocker.execute("ROLLBACK")
        await asyncio.sleep(0.35)  # the stuck attempt gives up on its own
        await log.record([event(3)])
        assert log.status == "ok"
    finally:
        if blocker is not None:
            blocker.close()
        await log.close()


async def test_postgresql_down_fails_closed(pg):
    dead = "postgresql://postgres@127.0.0.1:1/nothing"
    log = await open_audit_log(settings(store="postgresql", postgresql_dsn=dead,
                                        timeout_seconds=0.5))
    try:
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError):
            await log.record([event(1)])
        assert time.monotonic() - started < 0.5 + 1.5  # the timeout plus slack for a loaded machine
        assert not await log.check()
        assert log.status == "unavailable"
    finally:
        await log.close()


async def test_postgresql_recovers_when_the_server_is_back(pg_backend, pg):
    proxy = TcpProxy(5432)
    await proxy.start()
    dsn = f"postgresql://{pg.role}@127.0.0.1:{proxy.port}/{pg.name}"
    log = await open_audit_log(pg_backend.settings(postgresql_dsn=dsn, timeout_seconds=0.5))
    try:
        await log.record([event(1)])
        await proxy.stop()  # the server "goes away": connections cut, port refuses
        with pytest.raises(AuditUnavailableError):
            await log.record([event(2)])
        assert log.status == "unavailable"
        await proxy.start()
        await log.record([event(3)])
        assert log.status == "ok"
        assert await log.check()
    finally:
        await log.close()
        await proxy.stop()
    rows = await pg_backend.tamper.fetch("SELECT seq FROM contactpoint_audit.event ORDER BY seq")
    assert rows == [(1,), (2,)]


async def test_null_log():
    log = await open_audit_log(settings(store="none"))
    assert isinstance(log, NullAuditLog)
    await log.record([event(1)])
    assert await log.for_child("0" * 64) == []
    assert await log.check()
    assert log.status == "disabled"
    await log.close()


async def test_empty_record_is_a_no_op(sqlite_backend):
    log = await open_audit_log(sqlite_backend.settings())
    await log.record([])
    assert log.transactions == 0
    await log.close()


async def test_postgresql_that_hangs_fails_closed_within_the_bound(pg):
    proxy = TcpProxy(5432, hang=True)
    await proxy.start()
    dsn = f"postgresql://{pg.role}@127.0.0.1:{proxy.port}/{pg.name}"
    log = await open_audit_log(settings(store="postgresql", postgresql_dsn=dsn,
                                        timeout_seconds=0.3))
    try:
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError):
            await log.record([event(1)])
        assert time.monotonic() - started < 0.3 + 1.5  # the timeout plus slack for a loaded machine
        assert not await log.check()
    finally:
        await log.close()
        await proxy.stop()


async def test_postgresql_lock_held_elsewhere_fails_closed_then_recovers(pg_backend, pg):
    from gateway.accountability.audit.postgres_store import ADVISORY_LOCK

    log = await open_audit_log(pg_backend.settings(timeout_seconds=0.3))
    other = await asyncpg.connect(pg.admin_dsn)  # a stuck writer in another process
    try:
        await log.record([event(1)])
        await other.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK)
        started = time.monotonic()
        with pytest.raises(AuditUnavailableError):
            await log.record([event(2)])
        assert time.monotonic() - started < 0.3 + 1.5  # the timeout plus slack for a loaded machine
        await other.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK)
        await log.record([event(3)])
        assert log.status == "ok"
    finally:
        await other.close()
        await log.close()
    assert (await pg_backend.tamper.fetch("SELECT count(*) FROM {events}")) == [(2,)]


async def _one_timed_out_then_one_cancelled(log) -> None:
    """A caller that waits out its timeout, then one cancelled while its event still waits
    (the log's flush interval must be longer than its timeout)."""
    with pytest.raises(AuditUnavailableError):
        await log.record([event(1)])
    waiting = asyncio.create_task(log.record([event(2)]))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_timed_out_event_that_was_still_waiting_is_never_written(sqlite_backend):
    log = await open_audit_log(sqlite_backend.settings(flush_interval_ms=400,
                                                       timeout_seconds=0.1))
    try:
        await _one_timed_out_then_one_cancelled(log)
    finally:
        await log.close()
    assert log.transactions == 0
    assert not Path(sqlite_backend.options["sqlite_path"]).exists()


async def test_a_cancelled_caller_leaves_the_rest_of_its_batch_to_commit(sqlite_backend):
    log = await open_audit_log(sqlite_backend.settings(flush_interval_ms=300,
                                                       timeout_seconds=5))
    count, close = await committed_reader(sqlite_backend)
    try:
        gone = asyncio.create_task(log.record([event(1)]))
        kept = asyncio.create_task(log.record([event(2)]))
        await asyncio.sleep(0)  # both queued, the writer waiting out the interval
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        await kept
        assert (await count("req-1"), await count("req-2")) == (0, 1)
        await log.record([event(3)])  # and the next caller is not disturbed
        assert await count("req-3") == 1
    finally:
        await log.close()
        await close()


async def test_every_wait_leaves_no_deadline_behind(sqlite_backend, monkeypatch):
    # Each caller's deadline is a timer on the loop: answered, timed out or cancelled,
    # the call must take it down, or every request would leave one for `timeout_seconds`.
    loop = asyncio.get_running_loop()
    deadlines = []
    call_later = loop.call_later

    def noting(delay, callback, *args, **kwargs):
        handle = call_later(delay, callback, *args, **kwargs)
        if callback.__name__ == "_expire":
            deadlines.append(handle)
        return handle

    monkeypatch.setattr(loop, "call_later", noting)
    log = await open_audit_log(sqlite_backend.settings(flush_interval_ms=200,
                                                       timeout_seconds=0.1))
    try:
        await _one_timed_out_then_one_cancelled(log)
    finally:
        await log.close()
    answered = await open_audit_log(sqlite_backend.settings(timeout_seconds=5))
    try:
        await answered.record([event(3)])
    finally:
        await answered.close()
    assert len(deadlines) == 3
    assert all(handle.cancelled() for handle in deadlines)


class BrokenStore:
    """A store with a bug: the writer must survive it and fail its callers closed."""

    transactions = 0

    async def append(self, events):
        raise RuntimeError("a bug, with data: 9990000018")

    async def close(self):
        pass


async def test_a_writer_bug_fails_callers_closed_and_logs_no_data(caplog):
    from gateway.accountability.audit import GroupCommitLog

    log = GroupCommitLog(BrokenStore(), flush_interval_ms=1, max_batch=10, timeout_seconds=1)
    try:
        for _ in range(2):  # the writer survives the first failure
            with pytest.raises(AuditUnavailableError):
                await log.record([event(1)])
    finally:
        await log.close()
    assert "RuntimeError" in caplog.text
    assert "9990000018" not in caplog.text


async def test_sqlite_file_is_wal_and_append_only(sqlite_backend):
    log = await open_audit_log(sqlite_backend.settings())
    await log.record([event(i) for i in range(5)])
    await log.close()
    conn = sqlite3.connect(sqlite_backend.options["sqlite_path"], isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        for statement in ("UPDATE audit_event SET child = NULL", "DELETE FROM audit_event",
                          "UPDATE audit_checkpoint SET seq = 9", "DELETE FROM audit_checkpoint"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT body FROM audit_event WHERE child = ?"
                            " ORDER BY seq DESC LIMIT 5", ("x",)).fetchall()
        assert "audit_event_child" in str(plan)
    finally:
        conn.close()
