"""`deadline_protocol` with timers fired by hand: which clock runs when, and what expiry does.

The protocol is fed bytes directly through a fake transport; its loop is the running loop
except that `call_later` only records, so each deadline passes when the test says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from gateway.web.deadlines import deadline_protocol

HEAD, BODY = 1.5, 2.5  # distinct from uvicorn's keep-alive (5 s) so each timer is known


@dataclass
class Timer:
    delay: float
    callback: Any
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """The running loop, but timers only fire when `fire` is called."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.timers: list[Timer] = []

    def call_later(self, delay: float, callback: Any, *args: Any) -> Timer:
        timer = Timer(delay, lambda: callback(*args))
        self.timers.append(timer)
        return timer

    def live(self, delay: float) -> list[Timer]:
        return [t for t in self.timers if t.delay == delay and not t.cancelled]

    def fire(self, delay: float) -> None:
        [timer] = self.live(delay)
        timer.cancelled = True
        timer.callback()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loop, name)


@dataclass
class Transport:
    written: bytearray = field(default_factory=bytearray)
    closed: bool = False
    reading: bool = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class App:
    """Reads the whole body, waits for `release`, answers 200; notes what it received."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.received: list[str] = []
        self.answered = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            self.received.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        self.answered.set()


@pytest.fixture
async def wired():
    app, loop, transport = App(), ManualLoop(), Transport()
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    protocol_class = deadline_protocol(HEAD, BODY)
    protocol: Any = protocol_class(config=config, server_state=ServerState(),  # type: ignore[call-arg]
                                   app_state={}, _loop=loop)
    protocol.connection_made(transport)
    yield protocol, app, loop, transport
    protocol.connection_lost(None)
    await asyncio.sleep(0)


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def post(body: bytes, length: int) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (length, body)


async def test_a_request_read_in_one_go_costs_one_timer_and_leaves_none(wired):
    protocol, app, loop, transport = wired
    assert len(loop.live(HEAD)) == 1
    protocol.data_received(post(b"{}", 2))
    await asyncio.wait_for(app.answered.wait(), 5)
    assert [t.delay for t in loop.timers] == [HEAD, 5]  # the head clock; uvicorn's keep-alive
    assert loop.live(HEAD) == []
    assert transport.written.startswith(b"HTTP/1.1 200 ")


async def test_the_head_clock_restarts_at_the_first_byte_after_a_response(wired):
    protocol, app, loop, transport = wired
    protocol.data_received(GET)
    await asyncio.wait_for(app.answered.wait(), 5)
    assert loop.live(HEAD) == []
    protocol.data_received(b"\r\n")  # even a stray line ending: keep-alive stops counting
    loop.fire(HEAD)
    assert transport.written.endswith(b"The request did not arrive in time.\n")
    assert transport.written.count(b"HTTP/1.1 408 ") == 1
    assert transport.closed


async def test_a_connection_that_sent_nothing_is_closed_without_an_answer(wired):
    _, _, loop, transport = wired
    loop.fire(HEAD)
    assert (transport.written, transport.closed) == (b"", True)


async def test_a_late_body_gets_408_and_the_app_a_disconnect(wired):
    protocol, app, loop, transport = wired
    protocol.data_received(post(b"{", 2))
    assert loop.live(HEAD) == []
    loop.fire(BODY)
    await asyncio.wait_for(app.answered.wait(), 5)
    assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close\r\n" in transport.written
    assert b"HTTP/1.1 200" not in transport.written  # the app's late answer went nowhere
    assert app.received[-1] == "http.disconnect"
    assert transport.closed


async def test_a_late_pipelined_head_lets_the_answer_in_flight_finish(wired):
    protocol, app, loop, transport = wired
    app.release.clear()
    protocol.data_received(GET + b"GET /next HTTP/1.1\r\n")
    loop.fire(HEAD)  # the second request's head clock, started with its first byte
    assert (transport.written, transport.closed) == (b"", False)
    app.release.set()
    await asyncio.wait_for(app.answered.wait(), 5)
    assert transport.written.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close\r\n" in transport.written
    assert b" 408 " not in transport.written
    assert transport.closed


async def test_no_deadline_passes_while_the_server_is_not_reading(wired):
    protocol, app, loop, transport = wired
    app.release.clear()
    # The second request is queued behind the first, so uvicorn stops reading.
    protocol.data_received(GET + post(b"{", 2))
    assert not transport.reading
    loop.fire(BODY)
    assert (transport.written, transport.closed) == (b"", False)
    assert len(loop.live(BODY)) == 1  # started again
    app.release.set()
    await asyncio.wait_for(app.answered.wait(), 5)
    assert transport.reading
    loop.fire(BODY)
    assert b"HTTP/1.1 408 " in transport.written
    assert transport.closed
