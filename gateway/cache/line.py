"""The hot path's Redis connection: one pipelined socket, one send per turn of the event loop.

A request's Redis work (its first script call, its cache write-back) goes
over a `RedisLine`: commands from every request in one turn of the event loop
leave in one send, and the replies come back in order on the same socket
(Redis answers a connection's commands in the order they came). redis-py's
asyncio client spends ~55 µs of CPU per command here (each argument encoded
in Python, a pooled connection taken and given back, a timeout scope per
read); hiredis's own packer and reader on one connection spend ~10 µs
(`python -m bench.redis_line`). The rest of the gateway, off the hot path,
keeps the redis-py client.

Deadline: every command is answered within `timeout_seconds` of its send, or
the connection is closed and every command waiting on it fails with
`redis.exceptions.TimeoutError`; the next command connects again. A lost
connection fails its waiting commands with `redis.exceptions.ConnectionError`.
Both are what callers already catch for a Redis failure (`REDIS_FAILURES`).

Posted commands (`post`, the cache's write-back) are not awaited: they wait in the
line for the next send, which the next request's first trip makes, or for at most
`POST_DELAY_SECONDS`, and a failure is reported to a callback. Under steady load a
cache miss then costs one send, not two; the order of commands is kept, so a later
command of this process (a read, a purge) sees the posted write.

Only what the URL says is honoured: host and port or a Unix socket, TLS
(`rediss://`, the system's default certificate checks), username, password and
database. A URL with any other option is not taken (`line_for_url` returns
None) and the caller keeps the redis-py client (`ClientLine`), which knows them all.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, cast

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.telemetry.metrics import REDIS_ROUND_TRIPS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis.asyncio as aioredis

__all__ = ["POST_DELAY_SECONDS", "ClientLine", "Line", "RedisLine", "line_for_url"]

POST_DELAY_SECONDS = 0.005
"""The longest a posted command waits for another command's send before it is sent alone."""

_pack = cast("Callable[[tuple[str | bytes | int, ...]], bytes]", hiredis.pack_command)
"""hiredis's packer (its stub types the command as a one-element tuple)."""

_URL_OPTIONS = frozenset({"host", "port", "db", "username", "password", "path",
                          "connection_class"})


class Line(Protocol):
    """Sends Redis commands; a failure of Redis raises what `REDIS_FAILURES` holds."""

    async def execute_command(self, *args: str | bytes | int) -> Any:  # noqa: ANN401
        """One command's reply; an error reply is raised (`ResponseError`, `NoScriptError`)."""
        ...

    async def execute_many(self, commands: Sequence[Sequence[str | bytes | int]]) -> list[Any]:
        """Each command's reply in order, sent together; an error reply is returned, not raised."""
        ...

    def post(self, commands: Sequence[Sequence[str | bytes | int]],
             failed: Callable[[BaseException], None]) -> None:
        """Send `commands` soon, in order, without waiting for them.

        An error reply or a failure of Redis calls `failed` once with it.
        """
        ...

    async def drain(self) -> None:
        """Return once every command sent or posted so far is answered or has failed."""
        ...

    async def aclose(self) -> None: ...


class _Posted:
    """The replies of one `post`: the first failure among them is reported, once."""

    __slots__ = ("_failed", "_reported")

    def __init__(self, failed: Callable[[BaseException], None]) -> None:
        self._failed = failed
        self._reported = False

    def done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()  # retrieved, so never logged as unretrieved
        if exc is not None and not self._reported:
            self._reported = True
            self._failed(exc)


class ClientLine:
    """A `Line` over redis-py's client (for URLs `RedisLine` does not take, and for tests)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._posting: set[asyncio.Task[None]] = set()

    async def execute_command(self, *args: str | bytes | int) -> Any:  # noqa: ANN401
        return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def execute_many(self, commands: Sequence[Sequence[str | bytes | int]]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)  # queued, not sent
            return list(await pipe.execute(raise_on_error=False))

    def post(self, commands: Sequence[Sequence[str | bytes | int]],
             failed: Callable[[BaseException], None]) -> None:
        """Sent at once, from a task of its own (redis-py has no shared send to join)."""
        _post_from_task(self, self._posting, commands, failed)

    async def drain(self) -> None:
        await asyncio.gather(*self._posting, return_exceptions=True)

    async def aclose(self) -> None:
        """The client is closed by its owner."""


def _post_from_task(line: Line, posting: set[asyncio.Task[None]],
                    commands: Sequence[Sequence[str | bytes | int]],
                    failed: Callable[[BaseException], None]) -> None:
    """`commands` sent by `execute_many` from a task kept in `posting` until it ends."""
    task = asyncio.get_running_loop().create_task(_send_posted(line, commands, failed))
    posting.add(task)
    task.add_done_callback(posting.discard)


async def _send_posted(line: Line, commands: Sequence[Sequence[str | bytes | int]],
                       failed: Callable[[BaseException], None]) -> None:
    try:
        replies = await line.execute_many(commands)
    except Exception as exc:  # noqa: BLE001 -- reported to the poster, as `post` promises
        failed(exc)
        return
    if error := next((r for r in replies if isinstance(r, Exception)), None):
        failed(error)


def line_for_url(url: str, timeout_seconds: float) -> RedisLine | None:
    """A `RedisLine` for `url`, or None when the URL holds options it does not honour."""
    options = parse_url(url)
    if not options.keys() <= _URL_OPTIONS:
        return None
    kind = options.get("connection_class")
    if kind is not None and kind not in (SSLConnection, UnixDomainSocketConnection):
        return None
    return RedisLine(host=options.get("host", "localhost"), port=int(options.get("port", 6379)),
                     path=options.get("path"), tls=kind is SSLConnection,
                     db=int(options.get("db") or 0), username=options.get("username"),
                     password=options.get("password"), timeout_seconds=timeout_seconds)


def _reply_error(error: ResponseError) -> ResponseError:
    message = str(error)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return error


class _LineProtocol(asyncio.Protocol):
    """Replies matched, in order, to the commands written; losing the socket fails them all."""

    def __init__(self, line: RedisLine) -> None:
        self._line = line
        self._reader = hiredis.Reader(replyError=ResponseError)

    def data_received(self, data: bytes) -> None:
        if self._line.protocol is not self:
            return  # a connection the line has already given up (its commands failed)
        reader = self._reader
        reader.feed(data)
        waiting = self._line.waiting
        while (reply := reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self._line.abort(RedisConnectionError("Redis answered more than was asked"))
                return
            future = waiting.popleft()[0]
            if future.done():
                continue  # its caller stopped waiting (cancelled or timed out)
            if isinstance(reply, ResponseError):
                future.set_exception(_reply_error(reply))
            else:
                future.set_result(reply)
        if not waiting and self._line.draining:
            self._line.drained()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._line.protocol is self:  # not one given up already, whose successor may run
            self._line.lost(RedisConnectionError("connection to Redis lost"))


class RedisLine:
    """One connection, commands of a loop turn in one send, each answered within the deadline."""

    def __init__(self, *, host: str = "localhost", port: int = 6379, path: str | None = None,
                 tls: bool = False, db: int = 0, username: str | None = None,
                 password: str | None = None, timeout_seconds: float) -> None:
        self._host, self._port, self._path, self._tls = host, port, path, tls
        self._handshake: list[tuple[str | bytes | int, ...]] = []
        if password is not None:
            self._handshake.append(("AUTH", password) if username is None
                                   else ("AUTH", username, password))
        if db:
            self._handshake.append(("SELECT", db))
        self._timeout = timeout_seconds
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        """Each command sent or queued, in order, with the time its reply is due by."""
        self._transport: asyncio.Transport | None = None
        self.protocol: _LineProtocol | None = None
        """The current connection's protocol: only it may answer or fail `waiting`."""
        self._connecting: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._later: asyncio.TimerHandle | None = None
        """Armed while posted commands wait in `_out` with no send scheduled."""
        self._posting: set[asyncio.Task[None]] = set()
        self.draining: list[asyncio.Future[None]] = []
        """`drain` callers waiting for the last reply (or the connection's failure)."""
        self._closed = False

    async def execute_command(self, *args: str | bytes | int) -> Any:  # noqa: ANN401
        if self._transport is None:
            await self._connect()
        return await self._queue(_pack(args))

    async def execute_many(self, commands: Sequence[Sequence[str | bytes | int]]) -> list[Any]:
        if self._transport is None:
            await self._connect()
        futures = [self._queue(_pack(tuple(c))) for c in commands]
        replies: list[Any] = []
        failure: Exception | None = None
        for future in futures:
            try:
                replies.append(await future)
            except ResponseError as exc:
                replies.append(exc)
            except Exception as exc:  # noqa: BLE001 -- the connection's: each future is read
                failure = failure or exc
        if failure is not None:
            raise failure
        return replies

    def post(self, commands: Sequence[Sequence[str | bytes | int]],
             failed: Callable[[BaseException], None]) -> None:
        if self._transport is None:  # connecting (or closed) takes awaiting: a task does it
            _post_from_task(self, self._posting, commands, failed)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + self._timeout
        done = _Posted(failed).done
        for command in commands:
            future: asyncio.Future[Any] = loop.create_future()
            future.add_done_callback(done)
            self.waiting.append((future, due))
            self._out.append(_pack(tuple(command)))
        if not self._flush_scheduled and self._later is None:
            self._later = loop.call_later(POST_DELAY_SECONDS, self._flush)

    def _queue(self, packed: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.waiting.append((future, loop.time() + self._timeout))
        self._out.append(packed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._later is not None:  # posted commands leave with this send
            self._later.cancel()
            self._later = None
        out, self._out = self._out, []
        if self._transport is None or not out:  # lost between queueing and sending: failed
            return
        self._transport.write(b"".join(out))
        REDIS_ROUND_TRIPS.inc()
        if self._timer is None and self.waiting:
            self._arm(self.waiting[0][1])

    def _arm(self, when: float) -> None:
        self._timer = asyncio.get_running_loop().call_at(when, self._check)

    def _check(self) -> None:
        self._timer = None
        if not self.waiting:
            return
        oldest = self.waiting[0][1]  # a cancelled caller's command still holds its place
        if oldest <= asyncio.get_running_loop().time():
            self.abort(RedisTimeoutError("Redis did not answer in time"))
        else:
            self._arm(oldest)

    async def _connect(self) -> None:
        if self._closed:
            raise RedisConnectionError("the Redis line is closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                if self._path is not None:
                    transport, protocol = await loop.create_unix_connection(
                        lambda: _LineProtocol(self), self._path)
                else:
                    transport, protocol = await loop.create_connection(
                        lambda: _LineProtocol(self), self._host, self._port,
                        ssl=ssl.create_default_context() if self._tls else None)
        except TimeoutError as exc:
            raise RedisTimeoutError("connecting to Redis timed out") from exc
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}") from exc
        self._transport, self.protocol = transport, protocol
        try:
            for command in self._handshake:
                await self._queue(_pack(command))  # an error reply raises
        except BaseException:
            self.abort(RedisConnectionError("Redis refused the connection's AUTH or SELECT"))
            raise

    def abort(self, error: Exception) -> None:
        """Close the connection now; every waiting command fails with `error`."""
        transport, self._transport, self.protocol = self._transport, None, None
        self._fail(error)
        if transport is not None:
            transport.abort()

    def lost(self, error: Exception) -> None:
        self._transport, self.protocol = None, None
        self._fail(error)

    def _fail(self, error: Exception) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._later is not None:
            self._later.cancel()
            self._later = None
        self._out = []
        waiting, self.waiting = self.waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)
        self.drained()

    def drained(self) -> None:
        """Nothing is waiting any more (answered or failed): `drain` callers return."""
        draining, self.draining = self.draining, []
        for future in draining:
            if not future.done():
                future.set_result(None)

    async def drain(self) -> None:
        # Sent now if only posted, then the last reply awaited: no command of its own, so
        # settling costs no round trip. Failures went to their posters.
        await asyncio.gather(*self._posting, return_exceptions=True)
        if self._transport is None:
            return
        if self._out:
            self._flush()
        if self.waiting:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.draining.append(done)
            await done

    async def aclose(self) -> None:
        """Posted commands are sent and answered first (within the deadline), then it closes."""
        await self.drain()
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        self.abort(RedisConnectionError("the Redis line is closed"))
