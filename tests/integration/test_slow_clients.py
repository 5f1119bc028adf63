"""Slow clients are cut off: the head and body read deadlines, over a real uvicorn socket.

The gateway runs under uvicorn with `deadline_protocol` and one-second deadlines; the
clients are raw sockets that trickle their requests. Every bound on the slow side is
generous (a busy machine only makes things later); the fast side is held to one second.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.settings import build_settings
from gateway.web.app import create_app
from gateway.web.deadlines import deadline_protocol
from tests.integration.harness import FIND_QUERY, Gateway, settings_tree

HEAD = BODY = 1.0      # the deadlines under test
SLACK = 2.0            # how late a cut-off may come on a loaded machine
TRICKLE = 0.3          # seconds between a slow client's writes
SLOW_CLIENTS = 300
EARLY = 0.1            # timers may fire this much before the client's own clock says


@dataclass
class Call:
    """What one HTTP request that reached the app did there."""

    path: str
    whole_body: bool = False
    status: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Recorder:
    """The app, wrapped to note what reached it: whole bodies, and the status it answered."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[Call] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        call = Call(scope["path"])
        self.calls.append(call)

        async def noting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                call.whole_body = True
            return message

        async def noting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
            await send(message)

        try:
            await self.app(scope, noting_receive, noting_send)
        finally:
            call.done.set()


@dataclass
class Served:
    port: int
    recorder: Recorder
    helper: Gateway
    server: uvicorn.Server

    def open_connections(self) -> int:
        return len(self.server.server_state.connections)


@pytest.fixture(autouse=True)
def _frozen_heap():
    """The test session's heap out of the collector's sight while a deadline is timed.

    The server here shares the pytest process, whose heap (some 900,000 objects by the
    end of the suite, most of them the bounded parse caches the property tests fill) took
    a full collection of up to 1.5 s on a slow machine: longer than the one second the
    fast side is held to. `contactpoint serve` freezes its own heap after start-up
    (`gateway.web.gctuning`); this does the same for the test's duration.
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture
async def served(sims, jwks, signing_key, tmp_path):
    settings = build_settings(settings_tree(
        sims.urls(), jwks.url,
        limits={"header_read_seconds": HEAD, "body_read_seconds": BODY},
        audit={"sqlite_path": str(tmp_path / "audit.db"),
               "checkpoint_file": str(tmp_path / "checkpoints.jsonl")},
        alerts={"path": str(tmp_path / "alerts.jsonl")},
        outbox={"sqlite_path": str(tmp_path / "outbox.db")}))
    app = create_app(settings)
    recorder = Recorder(app)
    limits = settings.limits
    server = uvicorn.Server(uvicorn.Config(
        recorder, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
        http=deadline_protocol(limits.header_read_seconds, limits.body_read_seconds)))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield Served(port, recorder, Gateway(client, app, sims, signing_key,
                                                 sims.population.fixtures(), settings),
                         server)
    finally:
        server.should_exit = True
        await serving


async def _read_until_closed(reader: asyncio.StreamReader, within: float) -> bytes | None:
    """Everything the server sends until it closes; None if still open after `within`."""
    received = b""
    try:
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


async def _trickle(writer: asyncio.StreamWriter, pieces: list[bytes]) -> None:
    for piece in pieces:
        await asyncio.sleep(TRICKLE)
        writer.write(piece)


@contextlib.asynccontextmanager
async def _connection(port: int) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _slow(port: int, first: bytes, rest: list[bytes], within: float,
                sent: asyncio.Event | None = None) -> tuple[float, bytes | None]:
    """Send `first`, then `rest` a piece at a time; (seconds until closed, what came back).

    `sent`, if given, is set once `first` is written.
    """
    async with _connection(port) as (reader, writer):
        begun = time.monotonic()
        writer.write(first)
        if sent is not None:
            sent.set()
        trickling = asyncio.create_task(_trickle(writer, rest))
        try:
            answer = await _read_until_closed(reader, within)
        finally:
            trickling.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await trickling
        return time.monotonic() - begun, answer


def _slow_head(port: int, sent: asyncio.Event) -> Any:
    lines = [b"X-Slow-%d: 1\r\n" % i for i in range(100)]  # never finishes in time
    return _slow(port, b"GET /healthz HTTP/1.1\r\nHost: gateway.test\r\n", lines,
                 HEAD + SLACK + 3, sent)


async def _all_connected(served: Served, sent: list[asyncio.Event],
                         slow: list[asyncio.Task[Any]]) -> None:
    """Wait until every slow client has sent its first line and the server holds them all.

    The server shares this test's event loop, so a probe sent while 300 connections are
    still being opened waits behind them all: that measures the set-up, not the serving.
    Once any slow client has been cut off, the server cannot hold them all; stop there.
    """
    async with asyncio.timeout(10):
        await asyncio.gather(*(event.wait() for event in sent))
        while served.open_connections() < len(slow) and not any(t.done() for t in slow):
            await asyncio.sleep(0.01)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, dict[str, str]]:
    """One whole request and response on a kept-alive connection; (status, headers)."""
    writer.write(request)
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers


def _assert_timed_out(answer: bytes | None) -> None:
    assert answer is not None, "still open"
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"\r\nconnection: close\r\n" in answer.lower()


async def test_300_slow_heads_are_cut_off_while_others_are_served(served):
    sent = [asyncio.Event() for _ in range(SLOW_CLIENTS)]
    slow = [asyncio.create_task(_slow_head(served.port, event)) for event in sent]
    await _all_connected(served, sent, slow)
    timings = []
    # A fresh connection for every probe: the server must still accept, not only answer.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}",
                                 limits=httpx.Limits(max_keepalive_connections=0)) as client:
        pending = set(slow)
        while pending:
            started = time.monotonic()
            response = await client.get("/healthz", timeout=5)
            timings.append((response.status_code, time.monotonic() - started))
            _, pending = await asyncio.wait(pending, timeout=0.1)
    results = [task.result() for task in slow]

    assert all(answer is not None for _, answer in results), "some slow clients still open"
    seconds = sorted(elapsed for elapsed, _ in results)
    assert seconds[0] >= HEAD - EARLY, seconds[:5]
    assert seconds[-1] < HEAD + SLACK, seconds[-5:]
    assert all(answer == b"" or answer.startswith(b"HTTP/1.1 408 ") for _, answer in results)
    assert len(timings) >= 5, timings
    assert all(status == 200 and elapsed < 1.0 for status, elapsed in timings), timings
    assert all(call.status == 200 for call in served.recorder.calls), "a slow head reached the app"


async def test_a_silent_connection_is_closed_and_a_stalled_head_gets_408(served):
    silent = _slow(served.port, b"", [], HEAD + SLACK + 3)
    stalled = _slow(served.port, b"GET /healthz HTTP/1.1\r\nHost: gateway.test\r\n", [],
                    HEAD + SLACK + 3)
    (quiet_seconds, quiet), (stalled_seconds, answer) = await asyncio.gather(silent, stalled)

    assert quiet == b"", "a connection that sent nothing is closed without an answer"
    assert HEAD - EARLY <= quiet_seconds < HEAD + SLACK
    _assert_timed_out(answer)
    assert HEAD - EARLY <= stalled_seconds < HEAD + SLACK
    assert served.recorder.calls == []


async def test_a_trickled_body_is_cut_off_and_never_completes_at_the_app(served, caplog):
    body = json.dumps({"query": "{ __typename }"}).encode()
    head = (b"POST /graphql HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
            % (served.helper.token().encode(), len(body)))
    assert len(body) * TRICKLE > BODY + SLACK  # the body could not arrive in time
    seconds, answer = await _slow(served.port, head + body[:1],
                                  [body[i:i + 1] for i in range(1, len(body))], BODY + SLACK + 3)

    _assert_timed_out(answer)
    assert BODY - EARLY <= seconds < BODY + SLACK
    [call] = served.recorder.calls
    async with asyncio.timeout(5):
        await call.done.wait()
    assert not call.whole_body
    assert call.status == 408, "the endpoint treats the cut-off as a late body, not a failure"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_head_deadline_rearms_for_each_kept_alive_request(served):
    healthz = b"GET /healthz HTTP/1.1\r\nHost: gateway.test\r\n\r\n"
    async with _connection(served.port) as (reader, writer):
        assert (await _exchange(reader, writer, healthz))[0] == 200
        # Idle past the head deadline but within keep-alive: idle time is not head time.
        await asyncio.sleep(HEAD + 0.5)
        status, headers = await _exchange(reader, writer, healthz)
        assert (status, headers.get("connection")) == (200, None)
        await asyncio.sleep(HEAD / 2)
        # A third request, stalled after its first line, is timed from its first byte.
        begun = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        answer = await _read_until_closed(reader, HEAD + SLACK + 3)
        seconds = time.monotonic() - begun
    _assert_timed_out(answer)
    assert HEAD - EARLY <= seconds < HEAD + SLACK
    assert [call.status for call in served.recorder.calls] == [200, 200]


async def test_requests_at_normal_speed_are_unaffected(served):
    helper = served.helper
    body = await helper.gql(FIND_QUERY, {"s": {"nhsNumber": helper.fixtures["ordinary"]}})
    assert len(body["data"]["findChildren"]) == 1

    # Headers and body in separate reads: the body clock starts and stops in time.
    payload = json.dumps({"query": "{ __typename }"}).encode()
    head = (b"POST /graphql HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
            % (helper.token().encode(), len(payload)))
    async with _connection(served.port) as (reader, writer):
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(BODY / 4)
        status, _ = await _exchange(reader, writer, payload)
        assert status == 200
        # ...and the connection is still good for another request after the body deadline.
        await asyncio.sleep(BODY + 0.2)
        status, _ = await _exchange(reader, writer, head + payload)
        assert status == 200
