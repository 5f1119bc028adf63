"""The hot path's pipelined Redis connection, against the real Redis (and a server that stalls).

Replies in order to concurrent callers, one send per turn of the event loop,
error replies as redis-py's exceptions, the deadline, a lost connection failing
only what waited on it and the next command connecting again, the URL's
database and credentials, and the URLs it leaves to the redis-py client.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.cache import RedisStore
from gateway.cache.line import RedisLine, line_for_url
from gateway.limits.counters import REDIS_FAILURES
from tests.cache.conftest import REDIS_URL


def round_trips() -> float:
    return REGISTRY.get_sample_value("contactpoint_redis_round_trips_total") or 0.0


def with_database(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


async def test_concurrent_callers_get_their_own_replies_in_one_send(line, prefix):
    before = round_trips()
    replies = await asyncio.gather(*(line.execute_command("SET", f"{prefix}{n}", str(n), "GET")
                                     for n in range(200)))
    assert replies == [None] * 200
    assert round_trips() - before == 1
    values = await asyncio.gather(*(line.execute_command("GET", f"{prefix}{n}")
                                    for n in range(200)))
    assert values == [str(n).encode() for n in range(200)]
    assert round_trips() - before == 2


async def test_error_replies_are_redis_py_exceptions_and_do_not_shift_the_others(line, prefix):
    await line.execute_command("SET", f"{prefix}s", "text")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await line.execute_command("LPUSH", f"{prefix}s", "x")
    with pytest.raises(NoScriptError):
        await line.execute_command("EVALSHA", "0" * 40, 0)
    replies = await line.execute_many([("GET", f"{prefix}s"), ("INCR", f"{prefix}s"),
                                       ("ECHO", "after")])
    assert replies[0] == b"text"
    assert isinstance(replies[1], ResponseError)
    assert replies[2] == b"after"


async def test_a_caller_that_stops_waiting_does_not_shift_the_replies(line, prefix):
    slow = asyncio.ensure_future(line.execute_command("ECHO", "first"))
    others = [asyncio.ensure_future(line.execute_command("ECHO", f"n{n}")) for n in range(5)]
    slow.cancel()
    assert await asyncio.gather(*others) == [f"n{n}".encode() for n in range(5)]
    assert await line.execute_command("ECHO", "next") == b"next"


async def test_a_server_that_does_not_answer_fails_the_waiting_commands_at_the_deadline():
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stalled = RedisLine(host="127.0.0.1", port=port, timeout_seconds=0.3)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(stalled.execute_command("PING") for _ in range(3)),
                                       return_exceptions=True)
        elapsed = loop.time() - started
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert all(isinstance(r, REDIS_FAILURES) for r in results)
        assert 0.25 <= elapsed < 1.5
    finally:
        await stalled.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_nothing_listening_is_a_connection_error():
    with pytest.raises(RedisConnectionError):
        await RedisLine(host="127.0.0.1", port=1, timeout_seconds=0.5).execute_command("PING")


async def test_a_killed_connection_fails_what_waited_and_the_next_command_reconnects(line, client):
    first_id = await line.execute_command("CLIENT", "ID")
    blocked = asyncio.ensure_future(line.execute_command("BLPOP", f"nothing-{uuid.uuid4()}", 5))
    await asyncio.sleep(0.05)
    await client.execute_command("CLIENT", "KILL", "ID", first_id)
    with pytest.raises(RedisConnectionError):
        await blocked
    second_id = await line.execute_command("CLIENT", "ID")
    assert second_id != first_id


async def test_the_urls_database_is_selected(prefix):
    other = line_for_url(with_database(REDIS_URL, 7), 1.0)
    assert other is not None
    reader = aioredis.Redis.from_url(with_database(REDIS_URL, 7))
    try:
        await other.execute_command("SET", f"{prefix}db", "seven", "PX", 5000)
        assert await reader.get(f"{prefix}db") == b"seven"
    finally:
        await reader.delete(f"{prefix}db")
        await reader.aclose()
        await other.aclose()


async def test_a_refused_password_is_a_redis_error_and_nothing_runs_unauthenticated(prefix,
                                                                                    client):
    parts = urlsplit(REDIS_URL)
    host = parts.hostname or "127.0.0.1"
    wrong = RedisLine(host=host, port=parts.port or 6379, password=f"wrong-{uuid.uuid4()}",
                      timeout_seconds=1.0)
    try:
        with pytest.raises(RedisError):
            await wrong.execute_command("SET", f"{prefix}unauth", "x")
        assert await client.exists(f"{prefix}unauth") == 0
    finally:
        await wrong.aclose()


def test_urls_with_options_it_does_not_honour_are_left_to_the_client():
    assert line_for_url("redis://127.0.0.1:6379/0?socket_keepalive=true", 1.0) is None
    assert line_for_url("rediss://user:secret@cache.example/2", 1.0) is not None
    assert line_for_url("unix:///run/redis.sock?db=3", 1.0) is not None


async def test_the_store_on_the_line_writes_and_reads_in_one_round_trip_each(client, line,
                                                                             prefix):
    store = RedisStore(client, retry_seconds=5.0, line=line)
    await client.set(f"{prefix}old", b"stale")
    before = round_trips()
    await store.write([f"{prefix}old"], [(f"{prefix}new", b"sealed", 30.0)])
    assert round_trips() - before == 1
    assert await store.get_many([f"{prefix}old", f"{prefix}new"]) == [None, b"sealed"]
    assert round_trips() - before == 2
    assert 0 < await client.pttl(f"{prefix}new") <= 30_000


async def test_a_closed_line_refuses_commands(line):
    await line.aclose()
    with pytest.raises(RedisConnectionError):
        await line.execute_command("PING")


async def test_a_group_cut_off_by_a_lost_connection_fails_whole(line, client):
    line_id = await line.execute_command("CLIENT", "ID")
    group = asyncio.ensure_future(line.execute_many(
        [("BLPOP", f"nothing-{uuid.uuid4()}", 5), ("ECHO", "a"), ("ECHO", "b")]))
    await asyncio.sleep(0.05)
    await client.execute_command("CLIENT", "KILL", "ID", line_id)
    with pytest.raises(RedisConnectionError):
        await group
    assert await line.execute_command("ECHO", "again") == b"again"


async def test_a_given_up_connections_late_loss_does_not_touch_its_successor(line):
    await line.execute_command("PING")
    old = line.protocol
    line.abort(RedisTimeoutError("given up"))
    assert await line.execute_command("ECHO", "new") == b"new"  # a new connection
    pending = asyncio.ensure_future(line.execute_command("ECHO", "still"))
    old.data_received(b"+stray\r\n")  # late bytes and loss of the old connection
    old.connection_lost(None)
    assert await pending == b"still"
    assert line.protocol is not old
