"""`connectors.wire`: the pooled HTTP/1.1 transport, against a scripted server on loopback.

The server answers each request with the next scripted reply (raw bytes, so malformed and
hostile answers can be sent) and records what arrived on which connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from dataclasses import dataclass, field

import pytest

from connectors import wire
from connectors.wire import AnswerTooLargeError, Wire, WireProtocolError
from tests.connectors.certs import make_pki

JSON = b'{"ok": true}'


def reply(body: bytes = JSON, *, status: str = "200 OK", headers: str = "",
          length: bool = True) -> bytes:
    sized = f"Content-Length: {len(body)}\r\n" if length else ""
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"{sized}{headers}\r\n").encode() + body


CLOSE = object()
"""A script step: close the connection without answering."""

HANG = object()
"""A script step: never answer."""


@dataclass
class Scripted:
    replies: list[object] = field(default_factory=list)
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    """(connection number, request bytes) in arrival order."""
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    closed_by_client: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append((number, head + body))
                step = self.replies.pop(0) if self.replies else reply()
                if step is CLOSE:
                    return
                if step is HANG:
                    await asyncio.sleep(3600)
                if callable(step):
                    await step(reader, writer)
                else:
                    assert isinstance(step, bytes)
                    writer.write(step)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.open_now -= 1
            writer.close()


async def closed_by_client(server: Scripted, count: int) -> None:
    for _ in range(100):
        if server.closed_by_client >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the client closed {server.closed_by_client} connections, not {count}")


@pytest.fixture
async def server():
    scripted = Scripted()
    listening = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    scripted.url = f"http://127.0.0.1:{port}/base"
    yield scripted
    listening.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(listening.wait_closed(), 1)


@pytest.fixture
async def client(server):
    pool = Wire(server.url, max_connections=4, max_body_bytes=1_000,
                headers={"Accept": "application/json", "User-Agent": "test"})
    yield pool
    await pool.close()


async def test_an_answer_is_read_and_the_connection_kept(server, client):
    for _ in range(5):
        answer = await client.request("GET", "/base/x?a=1")
        assert answer == (200, "application/json", JSON)
    assert server.connections == 1
    assert [number for number, _ in server.requests] == [1] * 5


async def test_the_request_carries_its_target_headers_and_body(server, client):
    await client.request("POST", "/base/y", {"Authorization": "Bearer t"}, b'{"a": 1}')
    _, sent = server.requests[0]
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /base/y HTTP/1.1"
    assert set(lines[1:]) == {b"Authorization: Bearer t", b"Content-Length: 8",
                              b"Host: " + server.url.split("/")[2].encode(),
                              b"Accept: application/json", b"User-Agent: test",
                              b"Accept-Encoding: identity"}
    assert body == b'{"a": 1}'


@pytest.mark.parametrize("value", ["t\r\nX-Evil: 1", "t\nX", "t\0"])
async def test_a_header_that_would_start_another_is_refused_unsent(server, client, value):
    with pytest.raises(ValueError, match="forbidden"):
        await client.request("GET", "/base/x", {"Authorization": value})
    assert server.requests == []


async def test_connection_close_is_honoured(server, client):
    server.replies = [reply(headers="Connection: close\r\n"), reply()]
    await client.request("GET", "/x")
    await client.request("GET", "/x")
    assert server.connections == 2


async def test_an_answer_without_a_length_ends_with_the_connection(server, client):
    async def close_after(_, writer):  # the body is delimited by the close (RFC 9112 §6.3)
        writer.write(reply(JSON, length=False, headers="Connection: close\r\n"))
        await writer.drain()
        writer.close()

    server.replies = [close_after]
    assert await client.request("GET", "/x") == (200, "application/json", JSON)
    assert (await client.request("GET", "/x")).status == 200
    assert server.connections == 2


async def test_an_answer_without_a_length_cut_by_a_reset_is_a_connection_error(server, client):
    async def reset_after(_, writer):
        writer.write(reply(JSON, length=False, headers="Connection: close\r\n"))
        await writer.drain()
        await asyncio.sleep(0.05)
        # RST, not FIN (lingering 0 s): the end of the body is not known.
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server.replies = [reset_after]
    with pytest.raises(ConnectionError):
        await client.request("GET", "/x")


async def test_a_get_on_a_connection_closed_while_idle_is_sent_again(server, client):
    await client.request("GET", "/x")
    server.replies = [CLOSE]  # the server drops the kept connection at the next request
    assert (await client.request("GET", "/x")).body == JSON
    assert server.connections == 2
    assert len(server.requests) == 3


async def test_a_post_is_never_sent_twice(server, client):
    await client.request("GET", "/x")
    server.replies = [CLOSE]
    with pytest.raises(ConnectionError):
        await client.request("POST", "/x", None, b"{}")
    assert [sent.split(b" ")[0] for _, sent in server.requests] == [b"GET", b"POST"]


async def test_a_get_on_a_new_connection_that_closes_is_not_retried(server, client):
    server.replies = [CLOSE]
    with pytest.raises(ConnectionError):
        await client.request("GET", "/x")
    assert len(server.requests) == 1


async def test_an_answer_cut_short_is_a_connection_error(server, client):
    async def cut(_, writer):
        writer.write(reply(JSON)[:-3])
        await writer.drain()
        writer.close()

    server.replies = [cut]
    with pytest.raises(ConnectionError):
        await client.request("GET", "/x")


async def test_chunked_answers_are_read(server, client):
    server.replies = [reply(b"", length=False, headers="Transfer-Encoding: chunked\r\n")
                      + b"4\r\n{\"ok\r\n8\r\n\": true}\r\n0\r\n\r\n"]
    assert (await client.request("GET", "/x")).body == JSON
    assert (await client.request("GET", "/x")).body == JSON
    assert server.connections == 1


async def test_an_announced_oversized_answer_is_refused_unread(server, client):
    server.replies = [reply(b"x" * 1_001)]
    with pytest.raises(AnswerTooLargeError):
        await client.request("GET", "/x")
    assert (await client.request("GET", "/x")).body == JSON
    assert server.connections == 2  # the refused one was closed, not reused


async def test_an_oversized_chunked_answer_is_cut_off(server, client):
    chunk = b"x" * 600
    server.replies = [reply(b"", length=False, headers="Transfer-Encoding: chunked\r\n")
                      + (b"258\r\n" + chunk + b"\r\n") * 2 + b"0\r\n\r\n"]
    with pytest.raises(AnswerTooLargeError):
        await client.request("GET", "/x")


@pytest.mark.parametrize("headers", ["Content-Encoding: gzip\r\n",
                                     "Transfer-Encoding: gzip, chunked\r\n"])
async def test_encoded_answers_are_refused(server, client, headers):
    server.replies = [reply(JSON, length="Transfer" not in headers, headers=headers)]
    with pytest.raises(WireProtocolError, match="encoded"):
        await client.request("GET", "/x")


async def test_headers_past_the_limit_are_refused(server, client):
    huge = "".join(f"X-Pad-{i}: {'y' * 1000}\r\n" for i in range(70))
    server.replies = [reply(headers=huge)]
    with pytest.raises(WireProtocolError, match="too large"):
        await client.request("GET", "/x")


async def test_an_endless_header_line_is_refused_before_it_ends(server, client):
    async def endless(_, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        for _ in range(100):  # 100 KiB of one header that never ends
            writer.write(b"y" * 1024)
            await writer.drain()
        await asyncio.sleep(3600)

    server.replies = [endless]
    with pytest.raises(WireProtocolError, match="too large"):
        async with asyncio.timeout(5):
            await client.request("GET", "/x")


async def test_too_many_headers_are_refused(server, client):
    server.replies = [reply(headers="".join(f"X-{i}: 1\r\n" for i in range(200)))]
    with pytest.raises(WireProtocolError, match="too many"):
        await client.request("GET", "/x")


@pytest.mark.parametrize("garbage", [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n",
                                     b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2"
                                     b"\r\n\r\nab"])
async def test_unparsable_answers_are_protocol_errors_and_close(server, client, garbage):
    server.replies = [garbage]
    with pytest.raises(WireProtocolError):
        await client.request("GET", "/x")
    assert (await client.request("GET", "/x")).body == JSON
    assert server.connections == 2


async def test_a_second_answer_to_one_request_is_never_read_as_the_next(server, client):
    server.replies = [reply(b'{"n": 1}') + reply(b'{"n": 2}'), reply(b'{"n": 3}')]
    assert (await client.request("GET", "/x")).body == b'{"n": 1}'
    await asyncio.sleep(0.05)
    assert (await client.request("GET", "/x")).body == b'{"n": 3}'
    assert server.connections == 2


async def test_informational_answers_are_skipped(server, client):
    server.replies = [b"HTTP/1.1 100 Continue\r\n\r\n" + reply()]
    assert (await client.request("GET", "/x")).status == 200


async def test_a_cancelled_request_closes_its_connection(server, client):
    seen = asyncio.Event()

    async def late(reader, writer):  # answers only if the client does not hang up first
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(1.0):
                if await reader.read(1) == b"":
                    seen.set()
                    return
        writer.write(reply(b'{"late": 1}'))
        await writer.drain()

    server.replies = [late]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.request("GET", "/x")
    async with asyncio.timeout(0.5):
        await seen.wait()  # closed at once, not left open unused
    assert (await client.request("GET", "/x")).body == JSON
    assert server.connections == 2


async def test_at_most_max_connections_are_open(server, client):
    async def slow(_, writer):
        await asyncio.sleep(0.05)
        writer.write(reply())
        await writer.drain()

    server.replies = [slow] * 12
    answers = await asyncio.gather(*(client.request("GET", "/x") for _ in range(12)))
    assert all(answer.status == 200 for answer in answers)
    assert server.most_open == 4


async def test_a_long_idle_connection_is_not_reused(server, client, monkeypatch):
    await client.request("GET", "/x")
    monkeypatch.setattr(wire, "IDLE_SECONDS", 0.0)
    await client.request("GET", "/x")
    assert server.connections == 2


async def test_closing_closes_kept_connections_and_refuses_more(server, client):
    await client.request("GET", "/x")
    await client.close()
    await closed_by_client(server, 1)
    with pytest.raises(ConnectionError):
        await client.request("GET", "/x")


async def test_closing_fails_a_request_in_flight(server, client):
    server.replies = [HANG]
    pending = asyncio.ensure_future(client.request("GET", "/x"))
    await asyncio.sleep(0.05)
    await client.close()
    with pytest.raises(ConnectionError):
        await pending


async def test_a_refused_connection_is_a_connection_error():
    pool = Wire("http://127.0.0.1:9", max_connections=1, max_body_bytes=10, headers={})
    with pytest.raises(ConnectionRefusedError):
        await pool.request("GET", "/")


@pytest.mark.parametrize("url", ["ftp://h/", "http:///x", "unix:/tmp/s"])
def test_only_http_urls_with_a_host_are_taken(url):
    with pytest.raises(ValueError, match="base URL"):
        Wire(url, max_connections=1, max_body_bytes=10, headers={})


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("wire-pki"))


async def tls_server(pki, host: str) -> tuple[Scripted, asyncio.Server]:
    """A scripted system over TLS, its certificate for 127.0.0.1 and localhost only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    scripted = Scripted()
    listening = await asyncio.start_server(scripted.handle, host, 0, ssl=context)
    scripted.url = f"https://{host}:{listening.sockets[0].getsockname()[1]}"
    return scripted, listening


def trusting(pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


async def test_tls_with_the_system_s_ca_is_answered_and_kept(pki):
    scripted, listening = await tls_server(pki, "127.0.0.1")
    pool = Wire(scripted.url, max_connections=2, max_body_bytes=1_000, headers={},
                ssl_context=trusting(pki))
    try:
        for _ in range(3):
            assert (await pool.request("GET", "/x")).body == JSON
        assert scripted.connections == 1
    finally:
        await pool.close()
        listening.close()


async def test_tls_by_default_trusts_only_the_system_s_store(pki):
    scripted, listening = await tls_server(pki, "127.0.0.1")
    pool = Wire(scripted.url, max_connections=1, max_body_bytes=1_000, headers={})
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await pool.request("GET", "/x")
        assert scripted.requests == []
    finally:
        await pool.close()
        listening.close()


async def test_tls_checks_the_certificate_names_the_host(pki):
    scripted, listening = await tls_server(pki, "127.0.0.2")  # not a name it holds
    pool = Wire(scripted.url, max_connections=1, max_body_bytes=1_000, headers={},
                ssl_context=trusting(pki))
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)mismatch|match"):
            await pool.request("GET", "/x")
        assert scripted.requests == []
    finally:
        await pool.close()
        listening.close()
