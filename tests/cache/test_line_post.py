"""`post`: commands sent with the line's next send, or alone after a short wait, unawaited.

Against the real Redis: a posted write rides on the next command's send and is seen by
it; alone it leaves within `POST_DELAY_SECONDS`; an error reply or a lost connection is
reported to the poster once; a line not yet connected, or closed, still answers through
the callback. The cache store's `set_later` is built on it.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.cache import MemoryStore, RedisStore
from gateway.cache.line import POST_DELAY_SECONDS, ClientLine, RedisLine, line_for_url
from tests.cache.conftest import REDIS_URL


def round_trips() -> float:
    return REGISTRY.get_sample_value("contactpoint_redis_round_trips_total") or 0.0


async def eventually(check, *, every: float = POST_DELAY_SECONDS, tries: int = 100) -> None:
    """Wait until `check()` (awaited) is true, or give up after `tries` pauses."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(every)


class Failures(list[BaseException]):
    def __call__(self, exc: BaseException) -> None:
        self.append(exc)

    async def reported(self) -> bool:
        return bool(self)


async def _has(client, key: str) -> bool:
    return await client.get(key) == b"x"


async def test_a_posted_write_leaves_with_the_next_send_and_that_command_sees_it(line, prefix):
    failures = Failures()
    before = round_trips()
    line.post([("SET", f"{prefix}a", "1", "PX", 5000), ("SET", f"{prefix}b", "2")], failures)
    assert round_trips() == before  # not sent yet
    assert await line.execute_command("MGET", f"{prefix}a", f"{prefix}b") == [b"1", b"2"]
    assert round_trips() - before == 1
    await asyncio.sleep(POST_DELAY_SECONDS * 4)
    assert round_trips() - before == 1  # the fallback timer did not send again
    assert failures == []


async def test_a_posted_write_alone_leaves_within_the_delay(line, client, prefix):
    failures = Failures()
    line.post([("SET", f"{prefix}alone", "x", "PX", 5000)], failures)
    await asyncio.sleep(0)
    assert await client.get(f"{prefix}alone") is None  # still waiting for company
    await eventually(lambda: _has(client, f"{prefix}alone"))
    assert await client.get(f"{prefix}alone") == b"x"
    assert failures == []


async def test_error_replies_are_reported_once_and_do_not_shift_other_replies(line, prefix):
    failures = Failures()
    await line.execute_command("SET", f"{prefix}s", "text")
    line.post([("LPUSH", f"{prefix}s", "x"), ("INCR", f"{prefix}s")], failures)
    assert await line.execute_command("ECHO", "after") == b"after"
    await asyncio.sleep(0)
    assert len(failures) == 1
    assert isinstance(failures[0], ResponseError)
    assert "WRONGTYPE" in str(failures[0])


async def test_a_lost_connection_reports_the_waiting_post_and_the_line_reconnects(line, client,
                                                                                   prefix):
    failures = Failures()
    line_id = await line.execute_command("CLIENT", "ID")
    blocked = asyncio.ensure_future(line.execute_command("BLPOP", f"{prefix}nothing", 5))
    await asyncio.sleep(0.02)
    line.post([("SET", f"{prefix}lost", "x")], failures)
    await asyncio.sleep(POST_DELAY_SECONDS * 4)  # sent behind the BLPOP, unanswered
    await client.execute_command("CLIENT", "KILL", "ID", line_id)
    with pytest.raises(RedisConnectionError):
        await blocked
    await asyncio.sleep(0)
    assert len(failures) == 1
    assert isinstance(failures[0], RedisConnectionError)
    assert await line.execute_command("ECHO", "again") == b"again"


async def test_an_abort_before_the_send_reports_the_post_and_sends_nothing(line, client, prefix):
    failures = Failures()
    line.post([("SET", f"{prefix}never", "x")], failures)
    line.abort(RedisConnectionError("given up"))
    await asyncio.sleep(POST_DELAY_SECONDS * 4)
    assert [type(f) for f in failures] == [RedisConnectionError]
    assert await client.get(f"{prefix}never") is None
    assert await line.execute_command("ECHO", "again") == b"again"


async def test_a_line_not_yet_connected_connects_for_a_post(client, prefix):
    fresh = line_for_url(REDIS_URL, 1.0)
    assert fresh is not None
    failures = Failures()
    try:
        fresh.post([("SET", f"{prefix}first", "x", "PX", 5000)], failures)
        await eventually(lambda: _has(client, f"{prefix}first"))
        assert await client.get(f"{prefix}first") == b"x"
        assert failures == []
    finally:
        await fresh.aclose()


async def test_a_post_on_a_closed_line_is_reported(prefix):
    closed = RedisLine(host="127.0.0.1", port=1, timeout_seconds=0.5)
    await closed.aclose()
    failures = Failures()
    closed.post([("SET", f"{prefix}x", "x")], failures)
    await eventually(failures.reported, every=0.01)
    assert [type(f) for f in failures] == [RedisConnectionError]


async def test_the_redis_py_line_posts_at_once_and_reports_errors(client, prefix):
    failures = Failures()
    plain = ClientLine(client)
    await client.set(f"{prefix}s", "text")
    plain.post([("SET", f"{prefix}p", "1"), ("LPUSH", f"{prefix}s", "x")], failures)
    await eventually(failures.reported, every=0.01)
    assert await client.get(f"{prefix}p") == b"1"
    assert [type(f) for f in failures] == [ResponseError]


async def test_the_stores_later_write_is_read_by_its_next_call_in_one_round_trip(client, line,
                                                                                 prefix):
    store = RedisStore(client, retry_seconds=5.0, line=line)
    before = round_trips()
    store.set_later([(f"{prefix}k", b"sealed", 30.0)])
    assert await store.get_many([f"{prefix}k"]) == [b"sealed"]
    assert round_trips() - before == 1
    assert 0 < await client.pttl(f"{prefix}k") <= 30_000
    assert store.status == "ok"


async def test_a_failed_later_write_puts_the_store_in_its_back_off(client, line, prefix):
    store = RedisStore(client, retry_seconds=5.0, line=line)
    store.set_later([(f"{prefix}k", b"sealed", 30.0)])
    line.abort(RedisConnectionError("given up"))  # before its send
    await asyncio.sleep(0)
    assert store.status == "unavailable"
    assert store.shared is False
    store.set_later([(f"{prefix}k2", b"sealed", 30.0)])  # in the back-off: not even posted
    await asyncio.sleep(POST_DELAY_SECONDS * 4)
    assert await client.exists(f"{prefix}k", f"{prefix}k2") == 0


async def test_the_memory_stores_later_write_is_there_at_once():
    store = MemoryStore(10)
    store.set_later([("a", b"1", 30.0)])
    assert await store.get_many(["a"]) == [b"1"]


async def test_closing_the_line_sends_and_answers_what_was_posted_first(client, prefix):
    closing = line_for_url(REDIS_URL, 1.0)
    assert closing is not None
    await closing.execute_command("PING")
    failures = Failures()
    closing.post([("SET", f"{prefix}last", "x", "PX", 5000)], failures)
    await closing.aclose()
    assert await client.get(f"{prefix}last") == b"x"
    assert failures == []


async def test_settling_the_store_waits_for_its_later_writes(client, line, prefix):
    store = RedisStore(client, retry_seconds=5.0, line=line)
    store.set_later([(f"{prefix}k", b"sealed", 30.0)])
    await store.settle()
    assert await client.get(f"{prefix}k") == b"sealed"
    await store.settle()  # nothing waiting: returns at once


class _HeldServer:
    """A Redis stand-in on loopback that answers +OK to each command only once released."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.release = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError), contextlib.closing(writer):
            while data := await reader.read(65536):
                self.received += data
                await self.release.wait()
                writer.write(b"+OK\r\n" * data.count(b"*"))  # one array (`*n`) per command
                await writer.drain()

    def commands(self) -> int:
        return self.received.count(b"*")


@pytest.fixture
async def held():
    """A `_HeldServer` and a `RedisLine` to it with one SET sent and not yet answered."""
    server_side = _HeldServer()
    server = await asyncio.start_server(server_side.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    held_line = RedisLine(host="127.0.0.1", port=port, timeout_seconds=5.0)
    sent = asyncio.ensure_future(held_line.execute_command("SET", "k", "v"))

    async def received() -> bool:
        return server_side.commands() > 0

    await eventually(received)
    yield server_side, held_line, sent
    server_side.release.set()
    await held_line.aclose()
    for writer in server_side.writers:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_draining_waits_for_the_last_reply_and_sends_nothing_of_its_own(held):
    server_side, held_line, sent = held
    draining = asyncio.ensure_future(held_line.drain())
    await asyncio.sleep(0.05)
    assert not draining.done()  # the SET's reply is still to come
    assert server_side.commands() == 1  # no PING or other command of the drain's own
    server_side.release.set()
    await asyncio.wait_for(draining, 2.0)
    assert sent.done()
    assert not held_line.waiting
    assert server_side.commands() == 1


async def test_draining_returns_when_the_connection_fails_instead_of_answering(held):
    server_side, held_line, sent = held
    draining = asyncio.ensure_future(held_line.drain())
    await asyncio.sleep(0.01)
    server_side.writers[0].close()  # the server goes away without an answer
    await asyncio.wait_for(draining, 2.0)
    with pytest.raises(RedisConnectionError):
        await sent
