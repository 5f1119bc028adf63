"""HTTP/1.1 requests to one upstream system over pooled keep-alive connections.

`Wire` is the transport under `connectors.http.HttpClient`: asyncio's own transports (and
its TLS, from the `ssl.SSLContext` given), llhttp's parser (`httptools`, the one uvicorn
serves with), and one request at a time on each connection. It exists because a call
through aiohttp's client cost ~90 µs of CPU here and one through this ~27 µs, four times
per cache miss (`bench.upstream_calls`); it does only what the connectors need:

- ``GET`` and ``POST`` with the headers given, ``Accept-Encoding: identity``; no redirects
  followed, no cookies, no proxies; an encoded answer (``Content-Encoding`` other than
  ``identity``) is refused, as is a header block past `MAX_HEAD_BYTES` or a body past the
  limit (announced or read);
- at most `max_connections` connections, each reused while the server keeps it alive and
  closed after `IDLE_SECONDS` unused; a request on a reused connection that the server had
  closed meanwhile (no byte of an answer) is sent once more on a new one if it is a ``GET``;
- a request cancelled or failed midway closes its connection: nothing of one answer can
  be read as another's.

Failures raise `ConnectionError`/`OSError` (connect, TLS, a lost connection), `TimeoutError`
from the caller's deadline, or `WireProtocolError` (an answer that is not usable HTTP).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import SplitResult, urlsplit

import httptools

from connectors.slots import Slots

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["IDLE_SECONDS", "MAX_HEAD_BYTES", "Answer", "AnswerTooLargeError", "Wire",
           "WireProtocolError"]

IDLE_SECONDS = 15.0
"""An unused connection is closed after this long (aiohttp's keep-alive default): before
most servers close theirs, so a request seldom meets one closing."""

MAX_HEAD_BYTES = 64 * 1024
"""The status line and headers of one answer, at most."""

_MAX_HEADERS = 128


class WireProtocolError(Exception):
    """The answer is not usable HTTP/1.1 (unparsable, encoded, headers too large)."""


class AnswerTooLargeError(WireProtocolError):
    """The answer's body is (or announced itself) larger than the limit."""


class Answer(NamedTuple):
    status: int
    content_type: str
    """The media type alone, lower-cased (``application/octet-stream`` when none is given)."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; llhttp's callbacks fill in the answer."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self.open = True
        self.answered = False
        """Whether any byte of an answer to the current request arrived."""
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self._head = 0
        self._received = 0
        self._headers = 0
        self._content_type = "application/octet-stream"
        self._length: int | None = None
        self._chunked = False
        self._body = bytearray()
        self._headers_done = False
        self._keep_alive = False
        self._complete = False

    def send(self, data: bytes, waiter: asyncio.Future[Answer]) -> None:
        assert self._transport is not None  # noqa: S101 -- only a connected one is handed out
        self._reset()
        self.answered = False
        self._waiter = waiter
        self._transport.write(data)

    def keep(self) -> bool:
        """Whether this connection may carry another request (answer read whole, kept alive)."""
        return self.open and self._complete and self._keep_alive

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():  # unasked-for bytes: unusable
            self.close()
            return
        self.answered = True
        try:
            self._parser.feed_data(data)
            if not self._headers_done:
                # llhttp hands over a header only once it is whole, buffering it until then:
                # bound what the head may take before any callback could count it.
                self._received += len(data)
                if self._received > MAX_HEAD_BYTES:
                    self._fail(WireProtocolError("answer headers too large"))
        except httptools.HttpParserCallbackError as exc:
            self._fail(exc.__context__ if isinstance(exc.__context__, WireProtocolError)
                       else WireProtocolError("unusable answer"))
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(WireProtocolError(f"unusable answer ({type(exc).__name__})"))

    def eof_received(self) -> bool:
        return False  # close the transport; `connection_lost` follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if exc is None and self._headers_done and self._length is None and not self._chunked:
            # An answer delimited by the connection's end (RFC 9112 §6.3): a clean end only;
            # a reset (or TLS cut without close_notify) may have truncated it.
            self._finish()
        else:
            waiter.set_exception(ConnectionError("connection closed before the answer ended"))

    # llhttp callbacks (httptools)

    def on_message_begin(self) -> None:
        if self._complete:  # a second answer to one request
            raise WireProtocolError("unasked-for answer")

    def on_status(self, status: bytes) -> None:
        self._count(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head += len(name) + len(value) + 4  # `_count`, written out: a call a header
        if self._head > MAX_HEAD_BYTES:
            raise WireProtocolError("answer headers too large")
        self._headers += 1
        if self._headers > _MAX_HEADERS:
            raise WireProtocolError("too many headers")
        name = name.lower()
        if name == b"content-type":
            media = value.partition(b";")[0].strip().lower()
            self._content_type = media.decode("latin-1") or self._content_type
        elif name == b"content-length":
            self._length = int(value)  # llhttp has checked it is digits, and only one
            if self._length > self._max_body:
                raise AnswerTooLargeError("answer too large")
        elif name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise WireProtocolError("encoded answer")
            self._chunked = True
        elif name == b"content-encoding" and value.strip().lower() != b"identity":
            raise WireProtocolError("encoded answer")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        # Read here, as uvicorn does: once the message is complete, llhttp's flags are reset.
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self._max_body:
            raise AnswerTooLargeError("answer too large")

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:  # informational (100 Continue): read on
            self._reset()
            return
        self._finish()

    def _count(self, size: int) -> None:
        self._head += size
        if self._head > MAX_HEAD_BYTES:
            raise WireProtocolError("answer headers too large")

    def _finish(self) -> None:
        self._complete = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            status = self._parser.get_status_code()
            waiter.set_result(Answer(status, self._content_type, bytes(self._body)))
        self._body = bytearray()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Wire:
    """Requests to the system at `base_url` (``http`` or ``https``), pooled and bounded."""

    def __init__(self, base_url: str, *, max_connections: int, max_body_bytes: int,
                 headers: Mapping[str, str], ssl_context: ssl.SSLContext | None = None) -> None:
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https") or not base.hostname:
            raise ValueError("base URL must be http:// or https:// with a host")
        self._host = base.hostname
        self._port = base.port or (443 if base.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if base.scheme == "https" \
            else None
        self._max_body = max_body_bytes
        self._fixed = (f"Host: {_authority(base)}\r\n" + "".join(
            f"{_header(name, value)}\r\n" for name, value in
            {**headers, "Accept-Encoding": "identity"}.items())).encode("latin-1")
        self._slots = Slots(max_connections)
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._closed = False

    async def request(self, method: str, target: str, headers: Mapping[str, str] | None = None,
                      body: bytes | None = None) -> Answer:
        """Send ``{method} {target}`` (an encoded path and query) and read the whole answer."""
        head = f"{method} {target} HTTP/1.1\r\n"
        if headers:
            head += "".join(f"{_header(name, value)}\r\n" for name, value in headers.items())
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        data = head.encode("latin-1") + self._fixed + b"\r\n"
        if body:
            data += body
        slots = self._slots
        await slots.take()
        try:
            connection, reused = await self._connection()
            try:
                return await self._exchange(connection, data)
            except ConnectionError:
                if not (reused and method == "GET" and not connection.answered):
                    raise
            # The server closed it while it lay idle: once more, on a new connection.
            return await self._exchange(await self._connect(), data)
        finally:
            slots.give()

    async def close(self) -> None:
        """Close every connection; requests after this raise `ConnectionError`."""
        self._closed = True
        for connection in (*self._idle, *self._busy):
            connection.close()
        self._idle.clear()
        self._busy.clear()

    async def _exchange(self, connection: _Connection, data: bytes) -> Answer:
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        try:
            connection.send(data, waiter)
            answer = await waiter
        except BaseException:
            self._busy.discard(connection)
            connection.close()  # cancelled or failed midway: its next bytes are nobody's
            raise
        self._busy.discard(connection)
        if connection.keep() and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    async def _connection(self) -> tuple[_Connection, bool]:
        """An idle connection still open (most recently used first), else a new one."""
        if self._closed:
            raise ConnectionError("connection pool is closed")
        idle = self._idle
        if idle:
            oldest_kept = time.monotonic() - IDLE_SECONDS
            while idle:
                connection = idle.pop()
                if connection.open and connection.idle_since > oldest_kept:
                    self._busy.add(connection)
                    return connection, True
                connection.close()
        return await self._connect(), False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        max_body = self._max_body
        _, connection = await loop.create_connection(
            lambda: _Connection(max_body), self._host, self._port, ssl=self._ssl,
            server_hostname=self._host if self._ssl is not None else None)
        if self._closed:
            connection.close()
            raise ConnectionError("connection pool is closed")
        self._busy.add(connection)
        return connection


def _authority(url: SplitResult) -> str:
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if url.port is None else f"{host}:{url.port}"


def _header(name: str, value: str) -> str:
    """``name: value``, refusing a line break (or NUL) that would start another header."""
    if any(c in name or c in value for c in "\r\n\0") or ":" in name:
        raise ValueError(f"header {name!r} holds a forbidden character")
    return f"{name}: {value}"
